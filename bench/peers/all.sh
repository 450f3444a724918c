#!/usr/bin/env bash
# Every table of bench/peers/RESULTS.md and bench/README.md "Peers", one command (as root,
# after building build/cellar; about 40 minutes on 2 cores):
#
#   bash bench/peers/all.sh
#
# 1 GiB for every method, three rounds; then 4 and 8 GiB one round each, appended, split
# into invocations by memory: vineyardd keeps the memory of deleted objects in its arena,
# so the Vineyard methods come last in each; MinIO's reader holds ~3 bytes per byte read,
# so it runs alone, on the array only; 8 GiB is arrays only (bench/README.md says why).
set -euo pipefail
run=$(cd "$(dirname "$0")" && pwd)/run.sh
big="--rounds 1 --skip-files --append"
bash "$run" --sizes 1G --rounds 3
bash "$run" --sizes 4G $big --workloads array --methods \
  cellar-dump,cellar-dump-huge,cellar-compat,cellar-npy,cellar-pickle,tmpfs-dump,tmpfs-pickle,disk-pickle,vineyard-putget,vineyard-csi
bash "$run" --sizes 4G $big --workloads array --methods minio-pickle
bash "$run" --sizes 4G $big --workloads frame --methods \
  cellar-dump,cellar-dump-huge,cellar-compat,cellar-pickle,cellar-feather,tmpfs-dump,tmpfs-pickle,vineyard-putget,vineyard-csi
bash "$run" --sizes 4G $big --workloads frame --methods cellar-parquet
bash "$run" --sizes 8G $big --workloads array --methods cellar-dump,cellar-dump-huge,tmpfs-dump,vineyard-putget
