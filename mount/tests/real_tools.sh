#!/bin/bash
# Real tools on a Cellar volume: cp -a + diff -r, a tar round trip, and numpy/pandas from
# a "pod" (a process in its own mount namespace that sees only the volume, bind-mounted
# at a stand-in path, as NodePublishVolume does).
#   real_tools.sh CELLAR_FUSE_MOUNT_BIN [--no-passthrough]
set -euo pipefail
BIN=$1
shift
MODE_ARGS=("$@")
WORK=$(mktemp -d /tmp/cellar-tools-XXXXXX)
chmod 755 "$WORK"
PID=
cleanup() {
  set +e
  [[ -n $PID ]] && kill -TERM "$PID" 2>/dev/null && wait "$PID"
  umount -l "$WORK/mnt" 2>/dev/null
  umount -l "$WORK/arena" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/arena" "$WORK/mnt" "$WORK/pod"
mount -t tmpfs -o size=1g,inode32,mode=0755 tmpfs "$WORK/arena"
coproc DAEMON { exec "$BIN" --mountpoint "$WORK/mnt" "${MODE_ARGS[@]}" "vol-t:7:$WORK/arena" 2>"$WORK/daemon.log"; }
PID=$DAEMON_PID
read -r ready <&"${DAEMON[0]}"
[[ $ready == READY* ]] || { echo "daemon did not start: $ready"; cat "$WORK/daemon.log"; exit 1; }
VOL="$WORK/mnt/vol-t"
echo "daemon up: $ready"

# cp -a of a real tree (modes, times, symlinks, hard links) and diff -r.
SRC=/usr/share/doc
cp -a "$SRC" "$VOL/doc"
diff -r --no-dereference "$SRC" "$VOL/doc"
[[ $(cd "$SRC" && find . | sort | md5sum) == $(cd "$VOL/doc" && find . | sort | md5sum) ]]
echo "cp -a + diff -r: ok ($(find "$VOL/doc" -type f | wc -l) files)"

# tar round trip: pack from Cellar, unpack into Cellar, compare with the source.
tar -C "$VOL" -cf "$VOL/doc.tar" doc
mkdir "$VOL/untar"
tar -C "$VOL/untar" -xf "$VOL/doc.tar"
diff -r --no-dereference "$SRC" "$VOL/untar/doc"
tar -C "$VOL" -df "$VOL/doc.tar" doc
rm -rf "$VOL/doc.tar" "$VOL/untar"
echo "tar round trip: ok"

# A pod: its own mount namespace, the volume bound at a stand-in for /vineyard.
unshare -m --propagation private /bin/bash -euo pipefail -c "
  mount --bind '$VOL' '$WORK/pod'
  cd '$WORK/pod'
  /usr/bin/python3 - <<'PY'
import numpy as np, pandas as pd, os
a = np.arange(10_000_000, dtype=np.float64).reshape(1000, 10000)
np.save('arr.npy', a)
b = np.load('arr.npy', mmap_mode='r')
assert isinstance(b, np.memmap) and np.array_equal(a, b), 'numpy mmap load differs'
df = pd.DataFrame({'x': np.arange(100_000), 'y': np.random.rand(100_000), 's': ['v%d' % i for i in range(100_000)]})
df.to_pickle('df.pkl')
assert pd.read_pickle('df.pkl').equals(df), 'pandas pickle differs'
print('numpy save/load(mmap_mode=r), pandas to_pickle/read_pickle: ok', os.getcwd())
PY
"
# What the pod wrote is in the volume, and in the arena (the shared memory).
cmp "$VOL/arr.npy" "$WORK/arena/arr.npy"
echo "ALL OK"
