#!/bin/bash
# Issue 20's goals, measured: a Cellar volume served by a real `cellar node` in the
# given io modes (default: direct, the mode a kernel without FUSE passthrough gets, and
# fuse, the daemon-served mode it got before) against a tmpfs of the same run.
#   bench/io_mode/run.sh [BUILD_DIR]        (root; MODES="direct fuse" SIZE_MIB=4096 LOAD=4Gi)
# Prints, per target: page cache added by mmap-reading the whole file (Cached in
# /proc/meminfo before/after; tmpfs pages already count there, a second copy adds),
# sequential write and read with 1 MiB requests (dd), ROUNDS times alternating the two
# targets (the first write of a run also pays for reclaiming the machine's page
# cache, whichever target it goes to), and, with LOAD set,
# bench/python/bench_load.py (cellar.load of a LOAD frame, and load + full scan).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD=${1:-$REPO/build}
MODES=${MODES:-direct fuse}
SIZE_MIB=${SIZE_MIB:-4096}
LOAD=${LOAD-4Gi}
ROUNDS=${ROUNDS:-3}
[[ -x $BUILD/cellar ]] || { echo "build cellar first ($BUILD/cellar)"; exit 1; }
W=$(mktemp -d /tmp/cellar-iomode-XXXXXX)
cleanup() { set +e; mountpoint -q "$W/tmpfs" && umount "$W/tmpfs"; rm -rf "$W"; }
trap cleanup EXIT
g++ -O2 -std=c++20 -o "$W/fsbench" "$REPO/bench/fuse/fsbench.cc" || exit 1

# One target directory: prints "name mmap_cache_MiB write_MB/s read_MB/s".
measure() {  # name dir
  local name=$1 d=$2 f=$2/seq
  cached() { awk '/^Cached:/ {print $2}' /proc/meminfo; }
  local w r before after
  w=$(dd if=/dev/zero of="$f" bs=1M count="$SIZE_MIB" conv=fsync 2>&1 | awk '/copied/ {print $(NF-1), $NF}')
  r=$(dd if="$f" of=/dev/null bs=1M 2>&1 | awk '/copied/ {print $(NF-1), $NF}')
  before=$(cached)
  "$W/fsbench" mmapread "$f" > /dev/null 2>&1
  after=$(cached)
  echo "$name mmap+cache=$(( (after - before) / 1024 ))MiB write=$w read=$r"
  rm -f "$f"
}
export -f measure
export W SIZE_MIB ROUNDS

mkdir -p "$W/tmpfs"
mount -t tmpfs -o size=$((SIZE_MIB * 2 + 1024))m tmpfs "$W/tmpfs"
for mode in $MODES; do
  # The node's own volume, provisioned and published through CSI.
  (cd "$REPO" && /usr/bin/python3 -m tests.support.with_volume --size "$((SIZE_MIB * 2 + 1024))Mi" \
    --io-mode "$mode" -- bash -c "
      for round in \$(seq \$ROUNDS); do
        measure cellar-$mode \"\$CELLAR_VOLUME_DIR\"
        measure tmpfs \"$W/tmpfs\"
      done
      if [[ -n '$LOAD' ]]; then
        PYTHONPATH='$REPO/python' /usr/bin/python3 -m bench.python.bench_load --sizes '$LOAD' \
          --repeat 3 --dirs cellar-$mode=\"\$CELLAR_VOLUME_DIR\" tmpfs='$W/tmpfs'
      fi")
done
