#!/usr/bin/env bash
# End-to-end test, for .ci/run: the pipeline at 64 MiB on a real `cellar node`, in
# each io mode (passthrough, fallback, direct), driven as Kubernetes drives it. Asserts
# checksums across steps, the topology pin, volume stats, EROFS on a read-only publish
# and a clean tear-down. Prints `N passed, N failed`; exits non-zero on a failure.
#
#   bash tests/e2e/run.sh [--size 64Mi] [--modes passthrough,fallback,direct] [-v]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if ((EUID != 0)); then
  echo "tests/e2e/run.sh: needs root (mounts, namespaces, FUSE)" >&2
  exit 1
fi
if [ ! -x "$repo/build/cellar" ]; then
  echo "tests/e2e/run.sh: $repo/build/cellar is missing; build the cellar target first" >&2
  exit 1
fi
# Debian's python3 (numpy, pandas, grpcio), whatever python3 comes first on PATH; from
# the repo root, as a module, so the harness imports tests.lib as a package.
cd "$repo"
exec timeout --signal=TERM 600 /usr/bin/python3 -m tests.e2e.e2e_test "$@"
