#!/usr/bin/env bash
# The real-cluster suite: brings a single-node Kubernetes up (cluster.sh), builds and
# imports the images (images/build.sh), installs Cellar with `kubectl apply -k deploy/`
# and checks it through the API (cluster_test.py), then tears it all down, whatever
# happened. Ends with "N passed, N failed".
#
#   bash tests/cluster/run.sh [--keep]     # --keep: leave the cluster up afterwards
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
keep=0
[ "${1:-}" = --keep ] && keep=1

bash "$here/install-deps.sh" || { echo "0 passed, 1 failed"; exit 1; }
if ip netns list 2>/dev/null | grep -qw cellar-k8s; then
  echo "run: a cluster from an earlier run is still up; taking it down first"
  bash "$here/cluster.sh" down
fi
((keep)) || trap 'bash "$here/cluster.sh" down' EXIT

started=$SECONDS
if ! CELLAR_CLUSTER_IMAGES="$here/images/build.sh" bash "$here/cluster.sh" up; then
  echo "run: the cluster did not come up (logs in /var/lib/cellar-cluster/logs)"
  for f in /var/lib/cellar-cluster/logs/*.log; do
    [ -s "$f" ] && { echo "--- $f"; tail -15 "$f"; }
  done
  echo "0 passed, 1 failed"
  exit 1
fi
echo "run: cluster up in $((SECONDS - started)) s"
eval "export $(bash "$here/cluster.sh" env)"
source "$here/versions.env"
export CELLAR_KUBECTL=${CELLAR_CLUSTER_CACHE:-/var/cache/cellar-cluster}/bin-$KUBERNETES_VERSION/kubectl
# From the repo root, as a module: the checks import tests.lib as a package.
cd "$here/../.." && /usr/bin/python3 -m tests.cluster.cluster_test
