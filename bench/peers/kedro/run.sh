#!/usr/bin/env bash
# Kedro end to end, one command, from a clean checkout (as root: it provisions a real
# Cellar volume through CSI and mounts it, as tests/run-all.sh does):
#
#   bash bench/peers/kedro/run.sh [--multipliers 100,500,1000,2000] [--rounds 3]
#                                 [--base-rows 10000] [--systems cellar,minio,vineyard]
#
# examples/kedro's pipeline with its catalog on a Cellar volume, on MinIO through s3fs
# (both the current Kedro, requirements.txt) and in vineyard-kedro's VineyardDataSet
# (Kedro 0.18, requirements-vineyard.txt) with a local vineyardd; the venvs and the MinIO
# server (built from tests/cluster/components/minio) are cached under $CELLAR_BENCH_CACHE
# keyed on their pins. Needs the build of build/cellar. Writes results.json and
# RESULTS.md here. KEDRO_VOLUME_SIZE (default 2Gi) caps the Cellar volume: it holds the
# train and test pickles of the largest multiplier (40 bytes a row).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
. "$here/../lib.sh"

kedro_venv=$(venv kedro "$here/requirements.txt")
vineyard_venv=$(venv kedro-vineyard "$here/requirements-vineyard.txt")

cd "$root"
"$python" -m tests.support.with_volume --size "${KEDRO_VOLUME_SIZE:-2Gi}" \
  --env CELLAR_VOLUME_DIR -- "$kedro_venv/bin/python" "$here/bench.py" --minio "$minio" \
  --kedro-python "$kedro_venv/bin/python" --vineyard-python "$vineyard_venv/bin/python" "$@"
echo "kedro: wrote $here/RESULTS.md and $here/results.json"
