#!/usr/bin/env bash
# Multi-node test of cross-node reads (issue 15), for tests/run-all.sh: three `cellar node`s,
# each in a network namespace of its own on this machine, joined by a bridge in another
# namespace, with mutual-TLS peer certificates made for the run. A fan-in pipeline across
# the nodes, the owner killed and the network cut mid-transfer, readers racing writers,
# and the peer port's security. Prints `N passed, N failed`; exits non-zero on a failure.
#
#   bash tests/multinode/run.sh [--size 32Mi] [--big-size 256Mi] [-v]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if ((EUID != 0)); then
  echo "tests/multinode/run.sh: needs root (network namespaces, mounts, FUSE)" >&2
  exit 1
fi
if [ ! -x "$repo/build/cellar" ]; then
  echo "tests/multinode/run.sh: $repo/build/cellar is missing; build the cellar target first" >&2
  exit 1
fi
for tool in ip tc nsenter iptables openssl; do
  if ! command -v "$tool" >/dev/null; then
    echo "tests/multinode/run.sh: $tool is missing (bash .ci/install-deps)" >&2
    exit 1
  fi
done
# What kube-scheduler and csi-provisioner decide from a claim's topology, asked of their
# own code (tests/multinode/scheduling.py): built from the pinned module, outside the
# timeout below (the first build compiles client-go).
command -v go >/dev/null || { echo "tests/multinode/run.sh: go is missing" >&2; exit 1; }
(cd "$repo/tests/cluster/components/csi-provisioner" &&
  GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$repo/build/topologycheck" ./topologycheck)
# Debian's python3 (grpcio), from the repo root as a module so that tests.lib imports as a
# package. The test bounds each wait itself; this bounds the whole run (SIGTERM unwinds
# through the clean-up: nodes stopped, namespaces deleted, nothing mounted).
cd "$repo"
exec timeout --signal=TERM --kill-after=30 600 \
  /usr/bin/python3 -m tests.multinode.multinode_test "$@"
