#!/usr/bin/env bash
# Cellar's main demo: a data-science pipeline (prepare data -> train -> test) whose
# steps run as pods and pass their intermediate data as plain files under /vineyard,
# on a Cellar volume in this machine's shared memory, against the same pipeline on
# plain tmpfs (the limit) and on the local disk with fsync (what pipelines use today).
#
#   bash examples/demo.sh [--size 256Mi] [--runs 1] [--fallback] [--keep-going]
#
# It installs what is missing (.ci/install-deps), builds `cellar` if needed, starts
# `cellar node` with its state in /var/tmp/cellar-demo, provisions and publishes the
# volume through the CSI calls Kubernetes makes (tests/e2e), runs the three steps as
# pods, prints the table and cleans up: volume deleted, memory returned, nothing left
# mounted. Ctrl-C cleans up too; a run that was killed outright is cleaned by the next.
set -euo pipefail

size=256Mi
runs=1
force_fallback=0
root=/var/tmp/cellar-demo
while (($#)); do
  case "$1" in
    --size) size="$2"; shift 2 ;;
    --size=*) size="${1#*=}"; shift ;;
    --runs) runs="$2"; shift 2 ;;
    --fallback) force_fallback=1; shift ;;
    --root) root="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

if ((EUID != 0)); then
  command -v sudo >/dev/null || { echo "demo.sh: run it as root (it mounts tmpfs and FUSE)" >&2; exit 2; }
  exec sudo bash "$0" --size "$size" --runs "$runs" --root "$root" \
    $( ((force_fallback)) && echo --fallback)
fi

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
py=/usr/bin/python3   # Debian's, with numpy, pandas and grpcio
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# --- clean what an interrupted earlier run left (daemon by pid file, mounts, files)
cleanup() {
  if [ -x "$py" ] && [ -f tests/e2e/run_pipeline.py ]; then
    "$py" -m tests.e2e.run_pipeline --cleanup --root "$root" 2>/dev/null || true
  fi
}
runner=""
on_signal() {
  trap '' INT TERM
  echo >&2
  say "interrupted: tearing down"
  if [ -n "$runner" ] && kill -0 "$runner" 2>/dev/null; then
    kill -TERM "$runner" 2>/dev/null || true   # it unpublishes, deletes, stops the node
    wait "$runner" 2>/dev/null || true
  fi
  cleanup
  exit 130
}
trap on_signal INT TERM
trap cleanup EXIT

# --- dependencies
if [ -x .ci/install-deps ] || [ -f .ci/install-deps ]; then
  say "checking dependencies (.ci/install-deps)"
  bash .ci/install-deps || echo "demo.sh: install-deps reported a problem (above); going on" >&2
fi
missing=()
for tool in cmake protoc grpc_python_plugin unshare mount; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
"$py" -c 'import numpy, pandas, grpc' 2>/dev/null || missing+=("python3-numpy/pandas/grpcio")
if ((${#missing[@]})); then
  echo "demo.sh: missing ${missing[*]}; run .ci/install-deps (Debian 12) first" >&2
  exit 1
fi
[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true

# --- build `cellar` only if it is missing or older than its sources
binary=build/cellar
if [ ! -x "$binary" ] || [ -n "$(find CMakeLists.txt common csi store mount proto \
      -newer "$binary" \( -name '*.cc' -o -name '*.h' -o -name '*.proto' -o -name CMakeLists.txt \) \
      -print -quit 2>/dev/null)" ]; then
  say "building cellar"
  [ -f build/CMakeCache.txt ] || cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j"$(nproc)" --target cellar
else
  say "cellar is built ($binary)"
fi

# --- passthrough needs Linux >= 6.9; elsewhere the daemon serves reads and writes
mode=passthrough
read -r kmaj kmin _ <<<"$(uname -r | tr '.-' '  ')"
if ((force_fallback)) || ((kmaj < 6 || (kmaj == 6 && kmin < 9))); then mode=fallback; fi

# --- memory: the Cellar volume and the tmpfs baseline exist one at a time; the
# steps' processes hold about as much again while they read.
bytes=$("$py" -c "from tests.lib.sizes import parse_size; print(parse_size('$size'))")
avail=$(( $(awk '/^MemAvailable:/ {print $2}' /proc/meminfo) * 1024 ))
if ((bytes * 3 > avail)); then
  echo "demo.sh: $size of data needs about $((bytes * 3 >> 20)) MiB of free memory;" \
       "$((avail >> 20)) MiB available. Try --size $(( avail / 4 >> 20 ))Mi" >&2
  exit 1
fi

say "cleaning what an earlier run left in $root"
cleanup

say "running the pipeline ($size) on Cellar ($mode), tmpfs and the local disk"
echo "    cellar node --state-dir $root/$mode/node/state --capacity <volume + 64Mi>;" \
     "each step is a pod with the volume at /vineyard"
"$py" -m tests.e2e.run_pipeline --size "$size" --runs "$runs" --root "$root" \
  --mode "$mode,tmpfs,disk" --verify-pod --cellar "$binary" &
runner=$!
set +e
wait "$runner"
rc=$?
set -e
runner=""
trap - INT TERM
if ((rc != 0)); then
  echo "demo.sh: the pipeline failed (exit $rc)" >&2
  exit "$rc"
fi
left=$(awk -v r="$root" 'index($5, r) == 1' /proc/self/mountinfo | wc -l)
say "done: volume deleted, cellar node stopped, $left mounts left under $root"
