#!/usr/bin/env bash
# Makes what the placement webhook (deploy/kubernetes/components/placement) needs beside
# its Deployment, and prints it for `kubectl apply -f -`:
#   - a CA and a serving certificate for <name>-webhook.<namespace>.svc, the name the API
#     server dials, written to DIR (ca.crt, tls.crt, tls.key);
#   - the Secret <name>-webhook-tls holding the certificate, which the webhook mounts;
#   - the MutatingWebhookConfiguration <namespace>.<name>.placement, which has the API
#     server call the webhook's Service at /mutate for every pod created, trusting the CA
#     (caBundle). failurePolicy Ignore: a webhook that is down or slow only costs the
#     placement preference, never a pod. Pods of kube-system and of the deployment's own
#     namespace are left out (the webhook's own pod must not wait for itself).
#
#   bash deploy/webhook-certs.sh DIR --namespace NS [--name NAME] [--days N]
#
# NAME is the deployment's name in its settings (deploy/settings.yaml), default cellar.
# Run it again to rotate: a new CA and certificate, and the configuration that trusts it.
set -euo pipefail

usage() { echo "usage: $0 DIR --namespace NS [--name NAME] [--days N]" >&2; exit 2; }
die() { echo "webhook-certs: $*" >&2; exit 2; }
[ $# -ge 1 ] || usage
dir=$1; shift
namespace=""
name=cellar
days=825
while [ $# -gt 0 ]; do
  case $1 in
    --namespace) namespace=${2:?--namespace needs a value}; shift 2 ;;
    --namespace=*) namespace=${1#*=}; shift ;;
    --name) name=${2:?--name needs a value}; shift 2 ;;
    --name=*) name=${1#*=}; shift ;;
    --days) days=${2:?--days needs a value}; shift 2 ;;
    --days=*) days=${1#*=}; shift ;;
    *) usage ;;
  esac
done
[ -n "$namespace" ] || usage
label_re='^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'
[[ "$namespace" =~ $label_re && ${#namespace} -le 63 ]] || die "namespace '$namespace' is not a DNS-1123 label"
[[ "$name" =~ $label_re && ${#name} -le 52 ]] || die "name '$name' must be a DNS-1123 label of at most 52 characters"
[[ "$days" =~ ^[1-9][0-9]*$ ]] || die "--days '$days' is not a positive number"
source "$(dirname "${BASH_SOURCE[0]}")/certs.lib.sh"

service="$name-webhook"
host="$service.$namespace.svc"
# Rotating makes a new CA and a new configuration that trusts it.
make_ca_and_cert "$dir" "$days" "$namespace.$name.placement-ca" "$host" \
  "subjectAltName=DNS:$host,DNS:$service.$namespace,DNS:$host.cluster.local
extendedKeyUsage=serverAuth"

b64() { base64 -w0 < "$1"; }
cat <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: $service-tls
  namespace: $namespace
  labels:
    app.kubernetes.io/name: cellar
    app.kubernetes.io/instance: $name
    app.kubernetes.io/part-of: cellar
    app.kubernetes.io/component: placement-webhook
type: kubernetes.io/tls
data:
  tls.crt: $(b64 "$dir/tls.crt")
  tls.key: $(b64 "$dir/tls.key")
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: $namespace.$name.placement
  labels:
    app.kubernetes.io/name: cellar
    app.kubernetes.io/instance: $name
    app.kubernetes.io/part-of: cellar
    app.kubernetes.io/component: placement-webhook
webhooks:
  - name: placement.cellar.dev
    clientConfig:
      service:
        name: $service
        namespace: $namespace
        path: /mutate
        port: 443
      caBundle: $(b64 "$dir/ca.crt")
    rules:
      - operations: [CREATE]
        apiGroups: [""]
        apiVersions: [v1]
        resources: [pods]
        scope: Namespaced
    failurePolicy: Ignore
    sideEffects: None
    admissionReviewVersions: [v1]
    timeoutSeconds: 2
    reinvocationPolicy: Never
    matchPolicy: Equivalent
    namespaceSelector:
      matchExpressions:
        - key: kubernetes.io/metadata.name
          operator: NotIn
          values: [kube-system, $namespace]
YAML
