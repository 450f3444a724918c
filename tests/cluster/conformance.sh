#!/usr/bin/env bash
# The two public suites CSI drivers are judged by, against Cellar:
#
#   1. kubernetes-csi's csi-sanity against `cellar node` (tests/conformance/csi-sanity.sh);
#   2. Kubernetes' external storage e2e tests (test/e2e/storage/external: e2e.test with
#      the test-driver file cellar-driver.yaml) against the single-node cluster of
#      tests/cluster, as csi-driver-host-path's CI runs them: focus `External.Storage`,
#      without [Disruptive], [Feature:...] and [Serial] specs.
#
#   bash tests/cluster/conformance.sh [--serial] [--keep] [--procs N] [--focus RE]
#
# --serial     afterwards run the External.Storage [Serial] specs too, one at a time.
# --keep       leave a cluster this script brought up running (one it found is always left).
# --procs N    parallel ginkgo processes for the e2e tests (default 4: the specs mostly
#              wait on the cluster).
# --focus RE   narrow the e2e run further (added to External.Storage), e.g. 'provisioning'.
#
# A cluster that is up (tests/cluster/run.sh --keep, or cluster.sh up) is reused; else one
# is brought up as run.sh does and taken down at the end. Either way the images are built
# and imported (images/build.sh, images/e2e-images.sh; both are no-ops when current),
# Cellar is installed with `kubectl apply -k deploy/` and, when its image changed, its
# plugin pods are restarted so the tests run the code of this checkout. e2e.test and
# ginkgo come from build-components.sh --e2e. Reports go to $CELLAR_CONFORMANCE_REPORTS
# (default: a new /tmp/cellar-conformance.XXXXXX): csi-sanity's, ginkgo's JSON and JUnit
# reports and its full output. Ends with "N passed, N failed", summed over both suites.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
serial=0 keep=0 procs=4 focus=""
while (($#)); do
  case "$1" in
    --serial) serial=1; shift ;;
    --keep) keep=1; shift ;;
    --procs) procs=${2:?}; shift 2 ;;
    --focus) focus=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "conformance: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "conformance: needs root (as cluster.sh and csi-sanity.sh)" >&2; exit 2; }
source "$here/versions.env"
reports=${CELLAR_CONFORMANCE_REPORTS:-$(mktemp -d /tmp/cellar-conformance.XXXXXX)}
mkdir -p "$reports"
cellar=${CELLAR_BINARY:-$repo/build/cellar}
log() { printf '[conformance %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
total_passed=0 total_failed=0

# counts LINE: adds "N passed, N failed" at the end of LINE to the totals.
counts() {
  local p f
  read -r p f < <(sed -nE 's/.*\b([0-9]+) passed, ([0-9]+) failed.*/\1 \2/p' <<< "$1")
  if [ -z "${p:-}" ]; then total_failed=$((total_failed + 1)); return; fi
  total_passed=$((total_passed + p))
  total_failed=$((total_failed + f))
}

# ------------------------------------------------------------------ csi-sanity
log "csi-sanity against $cellar"
if [ -x "$cellar" ]; then
  CELLAR_SANITY_REPORTS="$reports/csi-sanity" bash "$repo/tests/conformance/csi-sanity.sh" "$cellar" \
    2>&1 | tee "$reports/csi-sanity.log"
  counts "$(tail -1 "$reports/csi-sanity.log")"
else
  echo "conformance: no cellar binary at $cellar (build it, or set CELLAR_BINARY)"
  total_failed=$((total_failed + 1))
fi

# ------------------------------------------------------------------ the cluster
bin=$(bash "$here/build-components.sh" --e2e | tail -1)
[ -x "$bin/e2e.test" ] && [ -x "$bin/ginkgo" ] || {
  echo "conformance: no e2e.test/ginkgo in $bin"; echo "$total_passed passed, $((total_failed + 1)) failed"; exit 1; }
eval "export $(bash "$here/cluster.sh" env)"
kubectl() { "$bin/kubectl" "$@"; }
sock=/run/cellar-cluster/containerd.sock
brought_up=0
if ip netns list 2>/dev/null | grep -qw cellar-k8s && kubectl get nodes >/dev/null 2>&1; then
  log "reusing the cluster that is up"
else
  log "bringing a cluster up (cluster.sh up)"
  if ! bash "$here/cluster.sh" up; then
    echo "conformance: the cluster did not come up (logs in /var/lib/cellar-cluster/logs)"
    bash "$here/cluster.sh" down
    echo "$total_passed passed, $((total_failed + 1)) failed"
    exit 1
  fi
  brought_up=1
fi
((brought_up && !keep)) && trap 'log "taking the cluster down"; bash "$here/cluster.sh" down' EXIT

# The digest the runtime holds for Cellar's image: a change means new code to restart on.
image_id() {
  ctr --address "$sock" -n k8s.io images ls "name==docker.io/library/cellar:0.1.0" 2>/dev/null |
    awk 'NR == 2 { print $3 }'
}
before=$(image_id)
kubectl -n cellar-system get daemonset cellar-node >/dev/null 2>&1 && installed=1 || installed=0
setup_failed=0
bash "$here/images/build.sh" --import "$sock" || setup_failed=1
bash "$here/images/e2e-images.sh" --import "$sock" || setup_failed=1
after=$(image_id)
kubectl apply -k "$repo/deploy" >/dev/null || setup_failed=1
if ((installed)) && [ "$before" != "$after" ]; then
  log "the cellar image changed ($before -> $after): restarting the plugin"
  kubectl -n cellar-system rollout restart daemonset/cellar-node >/dev/null || setup_failed=1
fi
kubectl -n cellar-system rollout status daemonset/cellar-node --timeout=300s || setup_failed=1
if ((setup_failed)); then
  echo "conformance: installing Cellar or its images failed; no e2e tests run"
  echo "$total_passed passed, $((total_failed + 1)) failed"
  exit 1
fi

# ------------------------------------------------------------------ e2e tests
# run_e2e NAME PROCS FOCUS SKIP: one ginkgo run; its summary (e2e_summary.py) and counts.
run_e2e() {
  local name=$1 n=$2 run_focus=$3 skip=$4 out="$reports/$1"
  mkdir -p "$out"
  log "e2e [$name]: ginkgo --procs=$n --focus='$run_focus' --skip='$skip'"
  local started=$SECONDS
  "$bin/ginkgo" --procs="$n" --focus="$run_focus" --skip="$skip" --no-color --timeout=3h \
    --output-dir="$out" --json-report=report.json --junit-report=junit.xml \
    "$bin/e2e.test" -- --kubeconfig="$KUBECONFIG" \
    --storage.testdriver="$here/cellar-driver.yaml" --report-dir="$out" \
    > "$out/ginkgo.log" 2>&1
  local rc=$?
  log "e2e [$name]: ginkgo exited $rc after $((SECONDS - started)) s; $(grep -E '^Ran [0-9]+ of' "$out/ginkgo.log" | tail -1)"
  if [ ! -s "$out/report.json" ]; then
    tail -40 "$out/ginkgo.log"
    total_failed=$((total_failed + 1))
    return
  fi
  python3 "$here/e2e_summary.py" "$out/report.json" | tee "$out/summary.txt" | sed "s/^/e2e [$name]: /"
  counts "$(tail -1 "$out/summary.txt")"
  # A run that failed without a failed spec (BeforeSuite, a crash) is one failure.
  if [ "$rc" != 0 ] && ! grep -q ' [1-9][0-9]* failed' <(tail -1 "$out/summary.txt"); then
    tail -40 "$out/ginkgo.log"
    total_failed=$((total_failed + 1))
  fi
}

base_focus='External.Storage'
[ -n "$focus" ] && base_focus="External.Storage.*($focus)"
skip='\[Disruptive\]|\[Feature:'
# The framework's host-exec pods enter the node's mount namespace with `nsenter
# --mount=/rootfs/proc/1/ns/mnt`. Where PID 1 is a sandbox's init whose namespaces even
# root may not open (readlink /proc/1/ns/mnt: Permission denied), every spec that needs
# one fails whatever the driver does; those are left out, and said so.
if ! readlink /proc/1/ns/mnt >/dev/null 2>&1; then
  skip+='|should not mount / map unused volumes in a pod'
  log "this machine's /proc/1/ns/mnt cannot be opened (even by root): not running" \
    "'should not mount / map unused volumes in a pod', whose host-exec pod needs it"
fi
run_e2e parallel "$procs" "$base_focus" "$skip|\[Serial\]"
((serial)) && run_e2e serial 1 "$base_focus.*\[Serial\]" "$skip"

log "reports in $reports"
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" = 0 ] && [ "$total_passed" -gt 0 ]
