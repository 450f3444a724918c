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
command -v openssl >/dev/null || { echo "peer-certs: openssl is missing (apt-get install openssl)" >&2; exit 1; }

mkdir -p "$dir"
chmod 700 "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days "$days" -subj "/CN=cellar-peer-ca" \
  -keyout "$work/ca.key" -out "$dir/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=cellar-peer" \
  -keyout "$dir/tls.key" -out "$work/tls.csr" 2>/dev/null
printf 'subjectAltName=DNS:cellar-peer\nextendedKeyUsage=serverAuth,clientAuth\n' > "$work/ext"
openssl x509 -req -in "$work/tls.csr" -CA "$dir/ca.crt" -CAkey "$work/ca.key" \
  -CAcreateserial -CAserial "$work/ca.srl" -days "$days" -extfile "$work/ext" -out "$dir/tls.crt" 2>/dev/null
chmod 600 "$dir/tls.key"
# The CA's key is not kept: a new node needs the same Secret, not a new certificate.

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
