#!/usr/bin/env bash
# Runs kubernetes-csi's csi-sanity (the conformance suite CSI drivers are judged by)
# against a real `cellar node`, once with FUSE passthrough, once with
# --no-passthrough and once with --io-mode=direct (what kernels without passthrough get):
#
#   bash tests/conformance/csi-sanity.sh build/cellar
#
# csi-sanity is built from the wrapper module in csi-sanity/ (its go.mod pins the
# csi-test release) into a cache, and rebuilt only when go.mod or go.sum change.
# Prints each mode's passed/failed/skipped counts and ends with "N passed, N failed",
# summed over the modes. The JUnit reports and both logs (csi-sanity's, the daemon's)
# go to $CELLAR_SANITY_REPORTS if set.
# Everything it starts or mounts (the daemon, its arenas and FUSE mount, the temp
# dirs) is gone when it exits, also on failure or Ctrl-C.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# = 1 ] || { echo "usage: $0 <path-to-cellar-binary>" >&2; exit 2; }
cellar=$(realpath "$1")
[ -x "$cellar" ] || { echo "csi-sanity: $1 is not an executable" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "csi-sanity: needs root (cellar node mounts tmpfs and FUSE)" >&2; exit 2; }

# Volume sizes: whole pages, above Cellar's 1 MiB minimum, and small enough that the
# node capacity below holds every volume csi-sanity has at once (tmpfs arenas take
# memory only as they are written, so the capacity is bookkeeping, not RAM).
volume_size=$((64 << 20))
expand_size=$((128 << 20))
node_capacity=4Gi

tools=${CELLAR_CLUSTER_CACHE:-/var/cache/cellar-cluster}/bin-tools
sanity=$tools/csi-sanity
stamp=$tools/.csi-sanity.stamp
module=$here/csi-sanity

# build_sanity: builds csi-sanity unless the stamp (a hash of the wrapper's go.mod and
# go.sum) says the cached binary is the pinned version.
build_sanity() {
  local want
  want=$(cat "$module/go.mod" "$module/go.sum" | sha256sum | cut -c1-16)
  if [ -x "$sanity" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
  command -v go >/dev/null || { echo "csi-sanity: go is not on PATH (builds csi-sanity)" >&2; return 1; }
  echo "csi-sanity: building $(grep -E '^require github.com/kubernetes-csi/csi-test' "$module/go.mod" | cut -d' ' -f2-)"
  mkdir -p "$tools"
  (cd "$module" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -o "$sanity" \
    github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity) || return 1
  echo "$want" > "$stamp"
}

work=$(mktemp -d /tmp/cellar-sanity-XXXXXX)
node_pid=

# mounts_below DIR: mount points at or below DIR, deepest first.
mounts_below() {
  awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
    awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-
}

# stop_node: SIGTERM, SIGKILL after 10 s; node_rc is its exit status (0 when a
# SIGTERM stopped it cleanly).
node_rc=0
stop_node() {
  [ -n "$node_pid" ] || return 0
  if kill -0 "$node_pid" 2>/dev/null; then
    kill -TERM "$node_pid"
    for _ in $(seq 100); do kill -0 "$node_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$node_pid" 2>/dev/null && kill -KILL "$node_pid"
  fi
  wait "$node_pid" 2>/dev/null
  node_rc=$?
  node_pid=
}

# cleanup: the daemon, then every mount it made (arenas, the FUSE mount, publications
# a failed spec left), then the files.
cleanup() {
  stop_node
  local m
  for _ in 1 2 3 4 5 6 7 8; do
    m=$(mounts_below "$work")
    [ -n "$m" ] || break
    while read -r p; do umount -l "$p" 2>/dev/null; done <<< "$m"
  done
  [ -z "$(mounts_below "$work")" ] || echo "csi-sanity: mounts left below $work" >&2
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build_sanity || exit 1

total_passed=0
total_failed=0

# csi-sanity's reasons for skipping a spec, and the optional capability whose absence
# each reason stands for. Cellar advertises none of these (no snapshots, clones,
# attach, staging, volume modification, group snapshots; no health RPCs, which its
# CSI v1.12 does not have). A spec skipped for any other reason counts as failed: a
# skip must never hide a spec that Cellar should pass.
declare -A not_advertised=(
  ["ListSnapshots not supported"]="controller LIST_SNAPSHOTS"
  ["GetSnapshot not supported"]="controller GET_SNAPSHOT"
  ["CreateSnapshot not supported"]="controller CREATE_DELETE_SNAPSHOT"
  ["DeleteSnapshot not supported"]="controller CREATE_DELETE_SNAPSHOT"
  ["Snapshot not supported"]="controller CREATE_DELETE_SNAPSHOT"
  ["Volume Cloning not supported"]="controller CLONE_VOLUME"
  ["ControllerModifyVolume not supported"]="controller MODIFY_VOLUME"
  ["Modify volume not supported"]="controller MODIFY_VOLUME"
  ["Modify Volume not supported"]="controller MODIFY_VOLUME"
  ["ControllerPublishVolume not supported"]="controller PUBLISH_UNPUBLISH_VOLUME"
  ["ControllerUnpublishVolume not supported"]="controller PUBLISH_UNPUBLISH_VOLUME"
  ["Controller Publish, UnpublishVolume not supported"]="controller PUBLISH_UNPUBLISH_VOLUME"
  ["ControllerGetVolumeHealth not supported"]="controller GET_VOLUME_HEALTH"
  ["ControllerListVolumeHealth not supported"]="controller LIST_VOLUME_HEALTH"
  ["NodeStageVolume not supported"]="node STAGE_UNSTAGE_VOLUME"
  ["NodeUnstageVolume not supported"]="node STAGE_UNSTAGE_VOLUME"
  ["NodeGetVolumeHealth not supported"]="node GET_VOLUME_HEALTH"
  ["NodeGetStorageHealth not supported"]="node GET_STORAGE_HEALTH"
  ["GroupControllerService not supported"]="plugin GROUP_CONTROLLER_SERVICE"
)

# check_skips REPORT: prints the capabilities behind the skipped specs of a JUnit
# report; returns the number of specs skipped for a reason not in not_advertised.
check_skips() {
  local n reason cap unexpected=0
  local -A per_cap=()
  while read -r n reason; do
    cap=${not_advertised[$reason]:-}
    if [ -n "$cap" ]; then
      per_cap[$cap]=$(( ${per_cap[$cap]:-0} + n ))
    else
      echo "csi-sanity: $n spec(s) skipped for a reason that is not a missing capability: $reason" >&2
      unexpected=$((unexpected + n))
    fi
  done < <(grep -o '<skipped message="skipped - [^"]*"' "$1" |
             sed -e 's/^<skipped message="skipped - //' -e 's/"$//' | sort | uniq -c)
  local list=()
  for cap in "${!per_cap[@]}"; do list+=("$cap (${per_cap[$cap]})"); done
  echo "skipped as not advertised: $(printf '%s\n' "${list[@]}" | sort | paste -sd, | sed 's/,/, /g')"
  return "$unexpected"
}

# run_mode NAME [cellar flags...]: one cellar node, one csi-sanity run against it.
run_mode() {
  local name=$1; shift
  local home=$work/$name
  mkdir -p "$home"
  local socket=$home/csi.sock
  setsid "$cellar" node --endpoint "unix://$socket" --node-id csi-sanity-node \
    --state-dir "$home/state" --capacity "$node_capacity" --log-level debug "$@" \
    > "$home/cellar.log" 2>&1 < /dev/null &
  node_pid=$!
  # The socket appears once the store is open and the FUSE mount is up.
  for _ in $(seq 300); do
    [ -S "$socket" ] && break
    kill -0 "$node_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ ! -S "$socket" ]; then
    echo "csi-sanity [$name]: cellar node did not start:" >&2
    tail -20 "$home/cellar.log" >&2
    stop_node
    total_failed=$((total_failed + 1))
    return
  fi

  local report=$home/junit.xml
  "$sanity" --csi.endpoint "unix://$socket" \
    --csi.mountdir "$home/target" --csi.stagingdir "$home/staging" \
    --csi.testvolumesize "$volume_size" --csi.testvolumeexpandsize "$expand_size" \
    --ginkgo.junit-report "$report" --ginkgo.no-color --ginkgo.timeout 20m \
    > "$home/sanity.log" 2>&1
  local rc=$?
  stop_node
  if [ "$node_rc" != 0 ]; then
    # A daemon that crashed during the run, or did not stop cleanly, fails the mode
    # whatever csi-sanity saw.
    echo "csi-sanity [$name]: cellar node exited with $node_rc; its log:" >&2
    tail -60 "$home/cellar.log" >&2
    total_failed=$((total_failed + 1))
  fi

  # Ginkgo's summary: "Ran X of Y Specs in ..." then "... N Passed | N Failed |
  # N Pending | N Skipped".
  local counts passed failed pending skipped
  counts=$(grep -E '[0-9]+ Passed \| [0-9]+ Failed \| [0-9]+ Pending \| [0-9]+ Skipped' \
    "$home/sanity.log" | tail -1)
  if [ -z "$counts" ]; then
    echo "csi-sanity [$name]: no summary (exit $rc); its output:" >&2
    tail -40 "$home/sanity.log" >&2
    total_failed=$((total_failed + 1))
    return
  fi
  read -r passed failed pending skipped < <(sed -E \
    's/.* ([0-9]+) Passed \| ([0-9]+) Failed \| ([0-9]+) Pending \| ([0-9]+) Skipped.*/\1 \2 \3 \4/' \
    <<< "$counts")
  if [ "$failed" != 0 ] || [ "$rc" != 0 ]; then
    # Every failure with its reason, and the daemon's log for the calls behind them.
    cat "$home/sanity.log" >&2
    echo "--- cellar node log (last 60 lines)" >&2
    tail -60 "$home/cellar.log" >&2
    [ "$failed" != 0 ] || failed=1  # a run that failed without a failed spec
  fi
  local skips
  skips=$(check_skips "$report")
  local unexpected=$?
  failed=$((failed + unexpected))
  echo "csi-sanity [$name]: $(grep -E '^Ran [0-9]+ of [0-9]+ Specs' "$home/sanity.log" | tail -1)"
  echo "csi-sanity [$name]: $skips"
  # Pending specs are the ones csi-sanity itself disables (XIt); they never run.
  echo "csi-sanity [$name]: $passed passed, $failed failed, $skipped skipped, $pending pending"
  if [ -n "${CELLAR_SANITY_REPORTS:-}" ]; then
    mkdir -p "$CELLAR_SANITY_REPORTS"
    cp "$report" "$CELLAR_SANITY_REPORTS/csi-sanity-$name.xml"
    cp "$home/sanity.log" "$CELLAR_SANITY_REPORTS/csi-sanity-$name.log"
    cp "$home/cellar.log" "$CELLAR_SANITY_REPORTS/cellar-$name.log"
  fi
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
}

run_mode passthrough
run_mode no-passthrough --no-passthrough
run_mode direct --io-mode=direct

echo "$total_passed passed, $total_failed failed"
[ "$total_failed" = 0 ] && [ "$total_passed" -gt 0 ]
