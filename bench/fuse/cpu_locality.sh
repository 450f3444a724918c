#!/bin/bash
# Why Cellar's fallback mode (--no-passthrough: every read and write is a round trip to
# the daemon) stays below its targets on some machines: where a vCPU woken from idle is
# slow (a VM halting idle vCPUs in the hypervisor), a request that wakes a daemon thread
# on another CPU, and a reply that wakes the caller back, cost more than the copy.
# Runs fio (psync, one job) on tmpfs and on a fallback-mode Cellar mount with the daemon
# and fio unpinned, pinned to one shared CPU, and pinned to two different CPUs, and
# prints MB/s and the ratio against tmpfs under the same pinning. Writes LOCALITY.md.
# On a guest with the haltpoll cpuidle driver, HALT_POLL_NS="0 200000" repeats it all
# with each guest_halt_poll_ns (how long an idle vCPU polls before it halts), and puts
# the machine's own value back at the end.
#   bench/fuse/cpu_locality.sh [BUILD_DIR]      (root; needs fio, taskset, 2+ CPUs)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-$HERE/../../build}
BIN=$BUILD/mount/cellar_fuse_mount
SIZE=${SIZE:-2g}
REPS=${REPS:-3}
[[ -x $BIN ]] || { echo "build cellar_fuse_mount first ($BIN)"; exit 1; }
(( $(nproc) >= 2 )) || { echo "needs 2 CPUs"; exit 1; }
W=$(mktemp -d /tmp/cellar-locality-XXXXXX)
DAEMON=
POLL_PARAM=/sys/module/haltpoll/parameters/guest_halt_poll_ns
POLL_SAVED=$(cat "$POLL_PARAM" 2>/dev/null || echo)
POLLS=${HALT_POLL_NS:-${POLL_SAVED:-n/a}}
if [[ -n ${HALT_POLL_NS:-} && ! -w $POLL_PARAM ]]; then
  echo "HALT_POLL_NS needs $POLL_PARAM (the haltpoll cpuidle driver)"; exit 1
fi
cleanup() {
  set +e
  [[ -n $POLL_SAVED && -w $POLL_PARAM ]] && echo "$POLL_SAVED" > "$POLL_PARAM"
  [[ -n $DAEMON ]] && { kill -TERM "$DAEMON"; wait "$DAEMON"; } 2>/dev/null
  for m in "$W"/mnt "$W"/arena "$W"/tmpfs; do mountpoint -q "$m" && umount -l "$m"; done
  rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W"/{tmpfs,arena,mnt}
mount -t tmpfs -o size=3g tmpfs "$W/tmpfs"
mount -t tmpfs -o size=3g,inode32 tmpfs "$W/arena"

start_daemon() {  # [taskset prefix...]
  coproc CELLAR { exec "$@" "$BIN" --mountpoint "$W/mnt" --no-passthrough "vol:1:$W/arena" 2>>"$W/daemon.log"; }
  DAEMON=$CELLAR_PID
  local line
  read -r line <&"${CELLAR[0]}"
  [[ $line == READY* ]] || { echo "cellar did not start"; cat "$W/daemon.log"; exit 1; }
}
stop_daemon() { kill -TERM "$DAEMON"; wait "$DAEMON" 2>/dev/null; DAEMON=; }

fio_once() {  # pin dir rw bs -> MB/s
  local pin=$1; shift
  $pin fio --name=b --directory="$1" --filename=bench.dat --rw="$2" --bs="$3" --size="$SIZE" \
    --ioengine=psync --fallocate=none --output-format=json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]
side = j["read"] if j["read"]["io_bytes"] else j["write"]
print(round(side["bw_bytes"] / 1e6))' 2>/dev/null || echo 0
}

declare -A R
# placement: name, daemon pinning, fio pinning
PLACES=("unpinned||" "same CPU|taskset -c 0|taskset -c 0" "different CPUs|taskset -c 0|taskset -c 1")
TESTS=("write-1m write 1M" "read-1m read 1M" "read-128k read 128k")
for poll in $POLLS; do
[[ -n ${HALT_POLL_NS:-} ]] && echo "$poll" > "$POLL_PARAM"
for place in "${PLACES[@]}"; do
  IFS='|' read -r pname dpin fpin <<< "$place"
  name="$poll|$pname"
  # shellcheck disable=SC2086
  start_daemon $dpin
  for t in tmpfs cellar-fb; do
    dir=$W/tmpfs; [[ $t == cellar-fb ]] && dir=$W/mnt/vol
    fio_once "$fpin" "$dir" write 1M > /dev/null  # lay the file down once
  done
  for test in "${TESTS[@]}"; do
    read -r key rw bs <<< "$test"
    for t in tmpfs cellar-fb; do R[$name,$key,$t]=0; done
    for ((i = 0; i < REPS; i++)); do
      [[ $rw == read ]] && { sync; echo 3 > /proc/sys/vm/drop_caches; }
      for t in tmpfs cellar-fb; do
        dir=$W/tmpfs; [[ $t == cellar-fb ]] && dir=$W/mnt/vol
        v=$(fio_once "$fpin" "$dir" "$rw" "$bs")
        (( v > R[$name,$key,$t] )) && R[$name,$key,$t]=$v
      done
    done
    echo "   $name $key tmpfs ${R[$name,$key,tmpfs]} cellar-fb ${R[$name,$key,cellar-fb]}" >&2
  done
  rm -f "$W/tmpfs/bench.dat" "$W/mnt/vol/bench.dat"
  stop_daemon
done
done

ratio() { /usr/bin/python3 -c "print(f'{$1/$2:.2f}x' if $2 else '-')"; }
{
  echo "# Fallback mode and CPU placement"
  echo
  echo "Run: $(date -u +%FT%TZ) on $(uname -r), $(nproc) CPUs, idle driver"
  echo "$(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo unknown); fio psync, one job, $SIZE file, best of $REPS;"
  echo "page cache dropped before reads. MB/s of tmpfs and of Cellar --no-passthrough (ratio"
  echo "against tmpfs with the same pinning). Targets for fallback mode: read >= 0.45x, write >= 0.4x."
  echo
  echo "| guest_halt_poll_ns | placement (daemon / fio) | test | tmpfs | cellar-fb |"
  echo "|---|---|---|---:|---:|"
  for poll in $POLLS; do
    for place in "${PLACES[@]}"; do
      IFS='|' read -r pname dpin fpin <<< "$place"
      name="$poll|$pname"
      for test in "${TESTS[@]}"; do
        read -r key _ <<< "$test"
        tm=${R[$name,$key,tmpfs]}; fb=${R[$name,$key,cellar-fb]}
        echo "| $poll | $pname | $key | $tm | $fb ($(ratio "$fb" "$tm")) |"
      done
    done
  done
} | tee "$HERE/LOCALITY.md"
