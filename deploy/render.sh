#!/usr/bin/env bash
# Render the Cellar deployment for another namespace and name.
#
#   deploy/render.sh [options] NAMESPACE NAME
#
# writes a kustomize overlay (default: deploy/overlays/NAMESPACE.NAME/) whose
# settings object carries the identity of the deployment, then prints the
# rendered manifests. Apply either of:
#
#   deploy/render.sh vineyard-system vineyardd-sample | kubectl apply -f -
#   kubectl apply -k deploy/overlays/vineyard-system.vineyardd-sample
#
# What follows NAMESPACE and NAME (see deploy/README.md):
#   StorageClass          NAMESPACE.NAME.csi
#   CSI driver name       NAME.NAMESPACE.csi.cellar.dev  (csi.cellar.dev for
#                         cellar-system/cellar, the default deployment)
#   ClusterRole(Binding)  NAMESPACE.NAME.csi-provisioner
#   namespaced objects    in NAMESPACE, named NAME-node, NAME-csi-provisioner
#   host paths            /var/lib/cellar/NAMESPACE/NAME,
#                         /var/lib/kubelet/plugins/<driver name>/
# so two renderings with different NAMESPACE/NAME never share an object, a
# socket or a state directory.
#
# Options:
#   --capacity SIZE        memory per node for volumes (default 4Gi; 512Mi,
#                          8Gi or plain bytes)
#   --image REF            cellar image, e.g. registry.example.com/cellar:0.1.0
#   --log-level LEVEL      trace|debug|info|warn|error (default info)
#   --driver-name NAME     override the derived CSI driver name
#   --existing-namespace   leave the Namespace object out (the namespace is
#                          shared, e.g. with Vineyard, and must survive
#                          `kubectl delete` of this rendering)
#   --output-dir DIR       where to write the overlay
#   --no-print             write the overlay, print nothing
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
default_namespace=cellar-system
default_name=cellar
default_driver=csi.cellar.dev

die() { echo "render.sh: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit "${1:-0}"; }

capacity=4Gi
image=
log_level=info
driver_name=
existing_namespace=0
output_dir=
print=1
positional=()
while (($#)); do
  case "$1" in
    --capacity) capacity="${2:?--capacity needs a value}"; shift 2 ;;
    --capacity=*) capacity="${1#*=}"; shift ;;
    --image) image="${2:?--image needs a value}"; shift 2 ;;
    --image=*) image="${1#*=}"; shift ;;
    --log-level) log_level="${2:?--log-level needs a value}"; shift 2 ;;
    --log-level=*) log_level="${1#*=}"; shift ;;
    --driver-name) driver_name="${2:?--driver-name needs a value}"; shift 2 ;;
    --driver-name=*) driver_name="${1#*=}"; shift ;;
    --existing-namespace) existing_namespace=1; shift ;;
    --output-dir) output_dir="${2:?--output-dir needs a value}"; shift 2 ;;
    --output-dir=*) output_dir="${1#*=}"; shift ;;
    --no-print) print=0; shift ;;
    -h|--help) usage 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) positional+=("$1"); shift ;;
  esac
done
((${#positional[@]} == 2)) || usage 2
namespace="${positional[0]}"
name="${positional[1]}"

# A DNS-1123 label: what Kubernetes accepts as a namespace, and what keeps
# the composite names below well-formed (no dots, no slashes).
label_re='^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'
[[ "$namespace" =~ $label_re && ${#namespace} -le 63 ]] ||
  die "namespace '$namespace' is not a DNS-1123 label (lower-case letters, digits, '-', at most 63)"
# NAME-node and NAME-mem are the DaemonSets; their pods add 6 characters and
# must stay <= 63.
[[ "$name" =~ $label_re && ${#name} -le 52 ]] ||
  die "name '$name' must be a DNS-1123 label of at most 52 characters"

if [[ -z "$driver_name" ]]; then
  if [[ "$namespace" == "$default_namespace" && "$name" == "$default_name" ]]; then
    driver_name="$default_driver"
  else
    driver_name="$name.$namespace.$default_driver"
  fi
fi
# The CSI spec and the CSIDriver object: a DNS-1123 subdomain of at most 63.
subdomain_re='^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'
[[ "$driver_name" =~ $subdomain_re ]] || die "driver name '$driver_name' is not a DNS-1123 subdomain"
((${#driver_name} <= 63)) ||
  die "driver name '$driver_name' is longer than 63 characters; choose one with --driver-name"

# Sizes as `cellar node --capacity` takes them, which are also valid
# Kubernetes quantities for the memory request.
[[ "$capacity" =~ ^[1-9][0-9]*(Ki|Mi|Gi|Ti)?$ ]] ||
  die "capacity '$capacity' must be a number of bytes or end in Ki, Mi, Gi or Ti"
case "$log_level" in
  trace|debug|info|warn|error) ;;
  *) die "log level '$log_level' is not one of trace, debug, info, warn, error" ;;
esac

output_dir="${output_dir:-$here/overlays/$namespace.$name}"
mkdir -p "$output_dir"
output_dir="$(cd "$output_dir" && pwd)"
# kustomize only accepts relative references to bases and components.
base_ref="$(realpath --relative-to="$output_dir" "$here/kubernetes/base")"
component_ref="$(realpath --relative-to="$output_dir" "$here/kubernetes/components/identity")"

{
  echo "# Written by deploy/render.sh; regenerate rather than edit:"
  printf '#   deploy/render.sh'
  [[ "$capacity" != 4Gi ]] && printf ' --capacity %s' "$capacity"
  [[ -n "$image" ]] && printf ' --image %s' "$image"
  [[ "$log_level" != info ]] && printf ' --log-level %s' "$log_level"
  ((existing_namespace)) && printf ' --existing-namespace'
  printf ' %s %s\n' "$namespace" "$name"
  cat <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization

resources:
  - $base_ref
  - settings.yaml

components:
  - $component_ref
EOF
  if [[ -n "$image" ]]; then
    echo
    echo "images:"
    echo "  - name: cellar"
    if [[ "$image" == *@* ]]; then
      echo "    newName: ${image%%@*}"
      echo "    digest: ${image#*@}"
    elif [[ "${image##*/}" == *:* ]]; then
      echo "    newName: ${image%:*}"
      echo "    newTag: \"${image##*:}\""
    else
      echo "    newName: $image"
    fi
  fi
  if ((existing_namespace)); then
    cat <<EOF

# The namespace exists already and is not Cellar's to create or delete.
patches:
  - patch: |-
      \$patch: delete
      apiVersion: v1
      kind: Namespace
      metadata:
        name: $namespace
EOF
  fi
} > "$output_dir/kustomization.yaml"

cat > "$output_dir/settings.yaml" <<EOF
# Written by deploy/render.sh. See deploy/settings.yaml for what each value
# controls.
apiVersion: v1
kind: ConfigMap
metadata:
  name: cellar-settings
  annotations:
    config.kubernetes.io/local-config: "true"
data:
  namespace: $namespace
  name: $name
  driverName: $driver_name
  capacity: "$capacity"
  logLevel: $log_level
EOF

echo "render.sh: wrote $output_dir (StorageClass $namespace.$name.csi, driver $driver_name)" >&2
if ((print)); then
  kubectl kustomize "$output_dir"
fi
