#!/usr/bin/env bash
# The peers benchmark, one command, from a clean checkout (as root: it provisions a real
# Cellar volume through CSI and mounts it, as tests/run-all.sh does):
#
#   bash bench/peers/run.sh [--sizes 1G,4G] [--rounds 3] [--methods a,b] [--skip-files]
#
# Makes the venv of requirements.txt (vineyard + vineyard-bdist's vineyardd, s3fs, numpy,
# pandas, pyarrow) and builds the MinIO server from its Go module
# (tests/cluster/components/minio), both cached under $CELLAR_BENCH_CACHE keyed on their
# pins; needs the build of build/cellar. Writes results.json, RESULTS.md and peers.png here.
# PEERS_VOLUME_SIZE (default 10Gi) caps the Cellar volume: it must hold a frame and its
# four pieces at the largest size (about 2x the size); tests.support.with_volume asks the node for
# twice that, which must stay below the machine's memory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${CELLAR_BENCH_CACHE:-/var/cache/cellar-bench}
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3)
[ -x "$root/build/cellar" ] || { echo "run.sh: build/cellar is missing: build first" >&2; exit 2; }
mkdir -p "$cache"

key() { cat "$@" | sha256sum | cut -c1-16; }

venv=$cache/peers-venv-$(key "$here/requirements.txt")
if [ ! -f "$venv/.installed" ]; then   # written last: a venv cut off halfway is redone
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    -r "$here/requirements.txt"
  touch "$venv/.installed"
fi

minio_module=$root/tests/cluster/components/minio
minio=$cache/minio-$(key "$minio_module/go.mod" "$minio_module/go.sum")
if [ ! -x "$minio" ]; then
  (cd "$minio_module" && go build -trimpath -o "$minio.tmp" github.com/minio/minio)
  mv "$minio.tmp" "$minio"
fi

(cd "$root" && "$python" -m tests.support.with_volume --size "${PEERS_VOLUME_SIZE:-10Gi}" \
  --env CELLAR_VOLUME_DIR -- "$venv/bin/python" "$here/run.py" --minio "$minio" "$@")
# Debian's python3 has matplotlib for the chart.
"$python" "$here/run.py" --report-only
echo "peers: wrote $here/RESULTS.md, $here/peers.png and $here/results.json"
