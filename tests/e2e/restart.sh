#!/usr/bin/env bash
# Crash and upgrade survival under load, for tests/run-all.sh: pods keep writing and
# verifying files while `cellar node` is SIGKILLed, restarted and taken over (with an
# fd-holder), then the holder itself dies; in each io mode (passthrough, fallback,
# direct). Asserts no I/O error, no corruption, healthy volume stats, working
# (un)publish; prints the longest stall and `N passed, N failed`; exits non-zero on a
# failure.
#
#   bash tests/e2e/restart.sh [--modes passthrough,fallback,direct] [--pods 3] [-v]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if ((EUID != 0)); then
  echo "tests/e2e/restart.sh: needs root (mounts, namespaces, FUSE)" >&2
  exit 1
fi
if [ ! -x "$repo/build/cellar" ]; then
  echo "tests/e2e/restart.sh: $repo/build/cellar is missing; build the cellar target first" >&2
  exit 1
fi
# Debian's python3 (grpcio), whatever python3 comes first on PATH; from the repo root,
# as a module, so the harness imports tests.lib as a package. The test bounds each
# wait itself; this bounds the whole run.
cd "$repo"
exec timeout --signal=TERM --kill-after=30 480 /usr/bin/python3 -m tests.e2e.restart_test "$@"
