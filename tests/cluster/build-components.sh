#!/usr/bin/env bash
# Builds the upstream cluster components at the versions in versions.env, through the
# Go module proxy, into a cache that later runs reuse:
#
#   tests/cluster/build-components.sh        # prints the bin directory on its last line
#   tests/cluster/build-components.sh --e2e  # also e2e.test and ginkgo (conformance.sh)
#
# The wrapper modules under components/ pin what `go install mod@version` cannot (see
# their go.mod). A component is rebuilt only when its go.mod or go.sum changed; Go's
# own build cache makes a rebuild after such a change incremental.
set -euo pipefail
e2e=0
case "${1:-}" in
  --e2e) e2e=1 ;;
  "") ;;
  *) echo "usage: build-components.sh [--e2e]" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
source "$here/versions.env"
cache=${CELLAR_CLUSTER_CACHE:-/var/cache/cellar-cluster}
bin="$cache/bin-$KUBERNETES_VERSION"
mkdir -p "$bin"
export GOFLAGS=-mod=mod CGO_ENABLED=0
command -v go >/dev/null || { echo "build-components: go is not on PATH (Go >= 1.24 needed)" >&2; exit 1; }

# build NAME MODULE_DIR OUTPUT LDFLAGS PACKAGE...: builds the packages to OUTPUT (a
# directory ending in / for several) unless the stamp, a hash of the wrapper module's
# go.mod and go.sum and the flags, says they are current. With go_cmd="test -c" it
# compiles a package's test binary instead.
go_cmd=build
build() {
  local name=$1 dir=$2 out=$3 ldflags="-s $4"; shift 4
  local stamp="$bin/.$name.stamp" want
  want=$( (cat "$dir/go.mod" "$dir/go.sum"; echo "$ldflags") | sha256sum | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "build-components: $name is current"
    return
  fi
  echo "build-components: building $name"
  local started=$SECONDS
  # shellcheck disable=SC2086 # go_cmd is one or two words
  (cd "$dir" && go $go_cmd -trimpath -ldflags="$ldflags" -o "$out" "$@")
  echo "$want" > "$stamp"
  echo "build-components: $name built in $((SECONDS - started)) s"
}

# What `kubectl version` and the Node object report; Kubernetes' own build stamps these
# from git (hack/lib/version.sh), which a module zip does not have.
minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
version_flags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  version_flags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1"
  version_flags+=" -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
build kubernetes "$here/components/kubernetes" "$bin/" "$version_flags" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
  k8s.io/kubernetes/cmd/kubectl k8s.io/kubernetes/cmd/kube-proxy
# etcd's main package is its server module's root.
build etcd "$here/components/etcd" "$bin/etcd" "" go.etcd.io/etcd/server/v3
# crictl, for the tear-down (stops every pod through the CRI).
build cri-tools "$here/components/cri-tools" "$bin/crictl" \
  "-X sigs.k8s.io/cri-tools/pkg/version.Version=v1.34.0" sigs.k8s.io/cri-tools/cmd/crictl
if [ "$e2e" = 1 ]; then
  # Kubernetes' end-to-end tests (the storage suite conformance.sh runs) and the ginkgo
  # CLI, at the same release; about 20 min of two cores cold, so not built by default.
  build ginkgo "$here/components/kubernetes-e2e" "$bin/ginkgo" "" github.com/onsi/ginkgo/v2/ginkgo
  go_cmd="test -c" build e2e.test "$here/components/kubernetes-e2e" "$bin/e2e.test" \
    "$version_flags" k8s.io/kubernetes/test/e2e
fi
echo "$bin"
