#!/usr/bin/env bash
# Makes the credentials of Cellar's node-to-node protocol (cross-node reads): a CA and
# one certificate signed by it with the name every node presents and checks
# (DNS:cellar-peer). Writes ca.crt, tls.crt, tls.key into DIR (the --peer-tls-dir of
# `cellar node`); with --secret NAMESPACE it also prints a Kubernetes Secret holding
# them, <name>-peer-tls (--name, default cellar: the deployment's name in
# deploy/settings.yaml), which the peering component mounts, for `kubectl apply -f -`.
# Only the node plugin may mount that Secret: whoever holds it can read every volume of
# the cluster.
#
#   bash deploy/peer-certs.sh DIR [--days N] [--secret NAMESPACE [--name NAME]]
set -euo pipefail

usage() { echo "usage: $0 DIR [--days N] [--secret NAMESPACE [--name NAME]]" >&2; exit 2; }
[ $# -ge 1 ] || usage
dir=$1; shift
days=825
secret_ns=""
name=cellar
while [ $# -gt 0 ]; do
  case $1 in
    --days) days=${2:?}; shift 2 ;;
    --secret) secret_ns=${2:?}; shift 2 ;;
    --name) name=${2:?}; shift 2 ;;
    *) usage ;;
  esac
done
source "$(dirname "${BASH_SOURCE[0]}")/certs.lib.sh"
# One certificate for every node: a new node needs the same Secret, not a new certificate.
make_ca_and_cert "$dir" "$days" cellar-peer-ca cellar-peer \
  $'subjectAltName=DNS:cellar-peer\nextendedKeyUsage=serverAuth,clientAuth'

if [ -n "$secret_ns" ]; then
  b64() { base64 -w0 < "$1"; }
  cat <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: $name-peer-tls
  namespace: $secret_ns
type: kubernetes.io/tls
data:
  ca.crt: $(b64 "$dir/ca.crt")
  tls.crt: $(b64 "$dir/tls.crt")
  tls.key: $(b64 "$dir/tls.key")
YAML
fi
