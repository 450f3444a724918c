#!/usr/bin/env bash
# Cellar's whole test suite: installs what is missing, builds, and runs every test
# (C++ unit and integration tests through ctest, csi-sanity, the Python package, the
# deployment checks, the end-to-end pipeline harness, cross-node reads on three nodes in
# network namespaces, and a real single-node Kubernetes with Cellar installed from deploy/). Needs root: tests mount tmpfs and FUSE,
# bind-mount volumes and enter mount namespaces, as the node plugin does.
#
#   bash tests/run-all.sh
#
# Prints one line per suite and a closing "total: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
[ "$(id -u)" = 0 ] || { echo "run-all: needs root (mounts, FUSE, namespaces)" >&2; exit 2; }

bash .ci/install-deps || exit 1
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
cmake --build build -j"$(nproc)" || exit 1

logs=$(mktemp -d /tmp/cellar-tests-XXXXXX)
total_passed=0
total_failed=0
failed_suites=()

# run_suite NAME COMMAND...: runs it, echoing output to a log, and adds its counts.
run_suite() {
  local name=$1; shift
  echo "=== $name: $*"
  local started=$SECONDS
  "$@" 2>&1 | tee "$logs/$name.log"
  local rc=${PIPESTATUS[0]}
  local passed=0 failed=0 line
  if line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$logs/$name.log" | tail -1) && [ -n "$line" ]; then
    failed=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<< "$line")
    passed=$(( $(sed -E 's/.* out of ([0-9]+).*/\1/' <<< "$line") - failed ))
  elif line=$(grep -E '(^|: )[0-9]+ passed, [0-9]+ failed' "$logs/$name.log" | tail -1) && [ -n "$line" ]; then
    passed=$(sed -E 's/.*(^|[^0-9])([0-9]+) passed.*/\2/' <<< "$line")
    failed=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<< "$line")
  fi
  # A suite that failed without counting its failures still counts as one failure.
  if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  [ "$rc" = 0 ] || failed_suites+=("$name")
  echo "=== $name: $passed passed, $failed failed (exit $rc, $((SECONDS - started)) s)"
}

run_suite cpp ctest --test-dir build --output-on-failure -j2 --timeout 600
# The Python package's zero-copy test and the example pipeline steps run on a real
# Cellar volume, provisioned and published as Kubernetes would.
with_volume=(/usr/bin/python3 -m tests.support.with_volume)
run_suite python "${with_volume[@]}" --size 1Gi --env CELLAR_TEST_VOLUME -- bash python/tests/run.sh
# Again in the mode kernels without FUSE passthrough get (the arena, bind-mounted).
run_suite python-direct "${with_volume[@]}" --size 1Gi --io-mode direct --env CELLAR_TEST_VOLUME \
  -- bash python/tests/run.sh
# Again on the current PyPI releases of numpy, pandas and pyarrow (python/requirements-pypi.txt),
# in a venv the script makes: what users who pip-install their stack have.
run_suite python-pypi "${with_volume[@]}" --size 1Gi --env CELLAR_TEST_VOLUME \
  -- bash python/tests/run-pypi.sh
run_suite deploy "${with_volume[@]}" --size 512Mi --env CELLAR_VOLUME_DIR -- \
  bash tests/deploy/run.sh "$root/build/cellar"
[ -f tests/e2e/run.sh ] && run_suite e2e bash tests/e2e/run.sh
[ -f tests/e2e/restart.sh ] && run_suite restart bash tests/e2e/restart.sh
# Cross-node reads: three nodes, each `cellar node` in a network namespace of its own.
[ -f tests/multinode/run.sh ] && run_suite multinode bash tests/multinode/run.sh
# A real single-node Kubernetes: Cellar installed with `kubectl apply -k deploy/`.
run_suite cluster bash tests/cluster/run.sh
# The public suites CSI drivers are judged by: csi-sanity against `cellar node` (every I/O
# mode), then Kubernetes' external storage e2e tests against a fresh cluster.
run_suite conformance bash tests/cluster/conformance.sh

echo
if ((${#failed_suites[@]})); then echo "failed suites: ${failed_suites[*]} (logs in $logs)"; fi
echo "total: $total_passed passed, $total_failed failed"
[ "$total_failed" = 0 ] && [ "$total_passed" -gt 0 ]
