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
# twice that, which must stay below the machine's memory. A second volume, of a class with
# cellar.dev/huge-pages: within_size, serves the cellar-dump-huge method.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

venv=$(venv peers "$here/requirements.txt")

size=${PEERS_VOLUME_SIZE:-10Gi}
(cd "$root" && "$python" -m tests.support.with_volume --size "$size" --env CELLAR_VOLUME_DIR -- \
  "$python" -m tests.support.with_volume --size "$size" --env CELLAR_HUGE_VOLUME_DIR \
  --parameter cellar.dev/huge-pages=within_size -- \
  "$venv/bin/python" "$here/run.py" --minio "$minio" "$@")
# Debian's python3 has matplotlib for the chart.
"$python" "$here/run.py" --report-only
echo "peers: wrote $here/RESULTS.md, $here/peers.png and $here/results.json"
