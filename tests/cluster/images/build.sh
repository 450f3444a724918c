#!/usr/bin/env bash
# tests/cluster/images/build.sh [--import SOCKET] [--only NAME]... [--force] [--base-stamp STAMP]
#
# Builds, without a registry or a Docker engine, the images the real-cluster
# suite runs, and writes each as an OCI archive that `ctr images import` reads:
#
#   docker.io/library/cellar:0.1.0           deploy/Dockerfile, with buildah
#   docker.io/library/cellar-examples:0.1.0  examples/Dockerfile, with buildah
#   docker.io/library/cellar-examples-kedro:0.1.0
#                                            examples/kedro/Dockerfile, with buildah
#   registry.k8s.io/sig-storage/csi-provisioner:v6.4.0
#                                            the Go module in ../components/csi-provisioner
#   registry.k8s.io/pause:3.10               build/pause/linux/pause.c of k8s.io/kubernetes
#   quay.io/argoproj/workflow-controller:v3.7.18, quay.io/argoproj/argoexec:v3.7.18
#                                            the Go module in ../components/argo
#   gcr.io/cloud-builders/kubectl:latest     the kubectl of build-components.sh: the
#                                            image KFP v1 pipelines delete claims with
#   docker.io/library/minio:bench            the Go module in ../components/minio, for
#                                            bench/kfp only (not built by default)
#
# NAME for --only: cellar, cellar-examples, cellar-examples-kedro, csi-provisioner,
# pause, argo, kubectl, minio (repeatable; default all but minio). The Dockerfiles start FROM debian:12 and debian:12-slim; with no
# registry those come from debootstrap (Debian's archive) and are put in buildah's
# own storage under those names, so `buildah bud --pull=never` runs the Dockerfiles
# exactly as written.
#
# --import SOCKET   then import every built image into the containerd listening on
#                   SOCKET, namespace k8s.io (`ctr --address SOCKET -n k8s.io images
#                   import`), where the kubelet's CRI finds them.
# --force           redo every image even when its key matches (buildah's layer cache,
#                   the base images and the compiled binaries still serve).
# --base-stamp S    the cache key of the base images (default: the UTC month, so the
#                   bases pick up Debian's security updates once a month).
#
# Idempotent: each result is keyed on its inputs and rebuilt only when they change.
# Cache layout, under $CELLAR_IMAGES_CACHE (default /var/cache/cellar-cluster/images):
#
#   base/debian-12[-slim]-STAMP-RECIPE.oci.tar   the debootstrapped bases (RECIPE: a
#                                    hash of make_base below), with .packages beside
#   buildah/storage/                 buildah's image store and --layers cache (named
#                                    stages kept as localhost/cellar-build-cache/*, so
#                                    a source change recompiles without redoing
#                                    apt-get); its run root is a temporary directory
#                                    under /run
#   bin/                             csi-provisioner and pause binaries, keyed
#   archives/NAME.oci.tar, NAME.key  the images, and the key they were built from:
#                                    cellar(-examples): a hash of the build context
#                                    after the .dockerignore, the Dockerfile and the
#                                    base keys; csi-provisioner: go.mod, go.sum, the
#                                    tag, Go's version; pause: pause.c, gcc's version
#   logs/NAME[-STAGE].log            the last build's full output
#
# Needs root, and: buildah debootstrap go gcc python3 (and ctr for --import); see
# tests/cluster/packages.txt. Leaves no mounts and no processes behind. One run at a
# time (a second waits on $cache/.lock). selftest.sh checks the results in a
# throwaway containerd.
#
# Measured on 2 cores (2026-12-03, a Kubernetes Go build running beside it): cold
# 32 min (bases 5.6, cellar 14.6, examples 0.7, csi-provisioner's go build 10.4);
# a change in the cellar context 4.8-5 min (the apt-get layer cached, the compile
# redone); warm, nothing changed, under 1 s; importing all four into a containerd 9 s.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cache="${CELLAR_IMAGES_CACHE:-/var/cache/cellar-cluster/images}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security_mirror="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
base_stamp="$(date -u +%Y-%m)"
source "$here/../versions.env"  # KUBERNETES_VERSION, CSI_PROVISIONER_VERSION, ARGO_VERSION
kubernetes_version="$KUBERNETES_VERSION"         # pause.c comes from this release
provisioner_version="$CSI_PROVISIONER_VERSION"   # components/csi-provisioner/go.mod pins it too
pause_tag="3.10"   # the tag deploy/kubernetes/base/memory-reservation.yaml names
oci="$here/oci_archive.py"
# The CA bundle the host's pip uses, if it was told one (PIP_CERT or pip's config).
host_pip_ca="${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null || true)}"
[[ -f "$host_pip_ca" ]] || host_pip_ca=""

default_names=(cellar cellar-examples cellar-examples-kedro csi-provisioner pause argo kubectl)
all_names=("${default_names[@]}" minio)
names=()
import_socket=""
force=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
log() { printf '[images %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { printf '[images] error: %s\n' "$*" >&2; exit 1; }

while (($#)); do
  case "$1" in
    --import) import_socket="${2:?--import needs a socket path}"; shift 2 ;;
    --only) names+=("${2:?--only needs a name}"); shift 2 ;;
    --force) force=1; shift ;;
    --base-stamp) base_stamp="${2:?--base-stamp needs a value}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
((${#names[@]})) || names=("${default_names[@]}")
for n in "${names[@]}"; do
  [[ " ${all_names[*]} " == *" $n "* ]] || die "unknown image '$n' (one of: ${all_names[*]})"
done

[[ $EUID -eq 0 ]] || die "needs root (buildah's chroot isolation, debootstrap)"
missing=()
for tool in buildah debootstrap go gcc python3 tar; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
[[ -z "$import_socket" ]] || command -v ctr >/dev/null || missing+=(ctr)
((${#missing[@]} == 0)) || die "missing tools: ${missing[*]} (Debian packages in tests/cluster/packages.txt; Go from go.dev)"
[[ -z "$import_socket" || -S "$import_socket" ]] || die "--import: no socket at $import_socket"

mkdir -p "$cache"/{base,buildah/storage,bin,archives,logs}
exec 9>"$cache/.lock"
flock -n 9 || { log "another build.sh holds $cache/.lock; waiting"; flock 9; }

work="$(mktemp -d "$cache/work.XXXXXX")"
runroot="$(mktemp -d /run/cellar-images-buildah.XXXXXX)"
storage="$cache/buildah/storage"

# Everything buildah or make_base may leave mounted lives under these directories.
unmount_under() {
  local dir
  for dir in "$@"; do
    findmnt -rn -o TARGET | awk -v d="$dir" 'index($0, d) == 1' | sort -r |
      while read -r target; do umount -l "$target" 2>/dev/null || true; done
  done
}
cleanup() {
  local rc=$?
  if [[ -d "$runroot" ]]; then
    buildah --root "$storage" --runroot "$runroot" --storage-driver overlay rm --all \
      >/dev/null 2>&1 || true
  fi
  unmount_under "$work" "$storage" "$runroot"
  rm -rf "$work" "$runroot"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bah() { buildah --root "$storage" --runroot "$runroot" --storage-driver overlay "$@"; }

# Runs a step with its output in logs/NAME.log; on failure shows the log's tail.
# The subshell is not part of a condition, so `set -e` holds inside functions it runs.
logged() {
  local name="$1" rc=0; shift
  set +e
  (set -e; "$@") >"$cache/logs/$name.log" 2>&1
  rc=$?
  set -e
  if ((rc != 0)); then
    tail -n 40 "$cache/logs/$name.log" >&2
    die "$name failed (exit $rc); full log: $cache/logs/$name.log"
  fi
}

key_matches() { [[ $force -eq 0 && -f "$cache/archives/$1.oci.tar" && -f "$cache/archives/$1.key" && "$(cat "$cache/archives/$1.key")" == "$2" ]]; }
store_key() { printf '%s\n' "$2" >"$cache/archives/$1.key"; }

# ------------------------------------------------------------------ base images
# make_base VARIANT ROOT: a Debian 12 root filesystem like the official images'
# (docker-library/debian builds them with debuerreotype): debootstrap's minbase
# variant for both tags, Debian's security updates applied, deb822 sources, and
# the apt/dpkg settings debuerreotype adds for containers. The slim variant also
# excludes documentation, man pages and translations from dpkg, as
# debuerreotype-slimify does. Neither has ca-certificates; deploy/Dockerfile
# installs them where it needs them. Its text is part of the cache key.
make_base() {
  local variant="$1" root="$2"
  debootstrap --variant=minbase --arch=amd64 --components=main bookworm "$root" "$mirror"
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  local d="$root/etc/apt/apt.conf.d"
  printf 'Apt::AutoRemove::SuggestsImportant "false";\n' >"$d/docker-autoremove-suggests"
  cat >"$d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  printf 'Acquire::GzipIndexes "true";\nAcquire::CompressionTypes::Order:: "gz";\n' >"$d/docker-gzip-indexes"
  printf 'Acquire::Languages "none";\n' >"$d/docker-no-languages"
  printf 'force-unsafe-io\n' >"$root/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  if [[ "$variant" == slim ]]; then
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
EOF
    find "$root/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$root"/usr/share/{info,linda,groff,man}/* "$root/usr/share/lintian/overrides"
    find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias \
      -exec rm -rf {} +
  fi
  # Security updates (debootstrap installs from bookworm alone). The host's
  # resolv.conf, which debootstrap copied in, serves these calls.
  chroot "$root" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get -qq -y upgrade
  chroot "$root" apt-get clean
  chroot "$root" dpkg-query -W -f '${Package} ${Version}\n' >"$root.packages"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/debconf/*-old \
    "$root"/var/lib/dpkg/*-old "$root"/var/log/{apt,bootstrap.log,dpkg.log,alternatives.log} \
    "$root"/dev/* "$root"/tmp/* "$root"/run/* "$root"/etc/hostname
  : >"$root/etc/resolv.conf"
  mkdir -p "$root/var/log/apt"
}

base_key="$base_stamp-$(declare -f make_base | sha256sum | cut -c1-12)"

# ensure_base VARIANT TAG: builds (or finds in the cache) the base archive and
# makes sure buildah's storage holds it under docker.io/library/debian:TAG.
ensure_base() {
  local variant="$1" tag="$2"
  local file="$cache/base/debian-$tag-$base_key.oci.tar" ref="docker.io/library/debian:$tag"
  if [[ ! -f "$file" ]]; then
    log "debian:$tag: debootstrap --variant=minbase bookworm ($variant) from $mirror (key $base_key)"
    local root="$work/rootfs-$variant"
    logged "debian-$tag" make_base "$variant" "$root"
    log "debian:$tag: writing $file"
    tar --numeric-owner --sort=name -C "$root" -cf "$work/rootfs-$variant.tar" .
    python3 "$oci" write --out "$file.tmp" --name "$ref" \
      --layer-tar "$work/rootfs-$variant.tar" --cmd '["bash"]' >/dev/null
    mv "$root.packages" "${file%.oci.tar}.packages"
    mv "$file.tmp" "$file"
    rm -rf "$root" "$work/rootfs-$variant.tar"
    find "$cache/base" -name "debian-$tag-*" -not -name "debian-$tag-$base_key.*" -delete
  fi
  local marker="$cache/buildah/debian-$tag.key"
  if [[ -f "$marker" && "$(cat "$marker")" == "$base_key" ]] && bah inspect --type image "$ref" >/dev/null 2>&1; then
    log "debian:$tag: in buildah's storage (key $base_key)"
    return
  fi
  log "debian:$tag: loading into buildah's storage"
  bah pull --quiet --policy always "oci-archive:$file" >"$work/id"
  bah tag "$(cat "$work/id")" "$ref"
  printf '%s\n' "$base_key" >"$marker"
}

# ------------------------------------------------------------------ Dockerfiles
# build_dockerfile NAME REF CONTEXT DOCKERFILE [IGNOREFILE]
build_dockerfile() {
  local name="$1" ref="$2" context="$3" dockerfile="$4" ignorefile="${5:-}"
  local hash_args=(--context "$context" --extra "$dockerfile")
  local bud_args=()
  if [[ -n "$ignorefile" ]]; then
    hash_args+=(--ignorefile "$ignorefile")
    bud_args+=(--ignorefile "$ignorefile")
  fi
  local key
  key="$(python3 "$oci" context-hash "${hash_args[@]}" 2>/dev/null)-$base_key"
  if key_matches "$name" "$key"; then
    log "$ref: up to date (context ${key:0:12})"
    return
  fi
  ensure_base full 12
  ensure_base slim 12-slim
  log "$ref: buildah bud -f ${dockerfile#"$repo"/} (log: $cache/logs/$name.log)"
  local start=$SECONDS stage
  bud_args+=(--layers --pull=never --isolation chroot --network host -f "$dockerfile")
  # A host whose pip trusts an extra CA (a TLS-inspecting proxy) lends that trust to
  # the RUN steps that call pip, through mounts that do not enter the image.
  if grep -q 'pip install' "$dockerfile" && [[ -n "$host_pip_ca" ]]; then
    printf '[global]\ncert = /tmp/cellar-host-ca.crt\n' >"$work/pip.conf"
    bud_args+=(--volume "$host_pip_ca:/tmp/cellar-host-ca.crt:ro"
               --volume "$work/pip.conf:/etc/pip.conf:ro")
  fi
  # Each named stage (deploy/Dockerfile's builder) is tagged too: the layers of
  # an untagged stage are dangling once the build ends, and the prune below would
  # take buildah's cache of them (its apt-get layer above all) with them.
  for stage in $(sed -nE 's/^FROM[[:space:]]+[^[:space:]]+[[:space:]]+AS[[:space:]]+([^[:space:]]+).*/\1/ip' "$dockerfile"); do
    logged "$name-$stage" bah bud "${bud_args[@]}" --target "$stage" \
      -t "localhost/cellar-build-cache/$name-$stage:latest" "$context"
  done
  logged "$name" bah bud "${bud_args[@]}" -t "$ref" "$context"
  log "$ref: built in $((SECONDS - start))s; writing archives/$name.oci.tar"
  rm -f "$work/$name.oci.tar"
  bah push --quiet "$ref" "oci-archive:$work/$name.oci.tar" >/dev/null
  python3 "$oci" name --archive "$work/$name.oci.tar" --name "$ref"
  mv "$work/$name.oci.tar" "$cache/archives/$name.oci.tar"
  store_key "$name" "$key"
  # Unreferenced layers of earlier builds; the --layers cache of this one stays.
  bah rmi --prune >/dev/null 2>&1 || true
}

# ------------------------------------------------------------------ csi-provisioner
build_provisioner() {
  local ref="registry.k8s.io/sig-storage/csi-provisioner:$provisioner_version"
  local module="$here/../components/csi-provisioner"
  local key
  key="$( (cat "$module"/go.mod "$module"/go.sum "$module"/tools.go "$oci"; echo "$provisioner_version") |
    sha256sum | cut -c1-16)-$(go env GOVERSION)"
  if key_matches csi-provisioner "$key"; then
    log "$ref: up to date"
    return
  fi
  local bin="$cache/bin/csi-provisioner-$key"
  if [[ ! -x "$bin" ]]; then
    log "$ref: go build (external-provisioner $provisioner_version; log: $cache/logs/csi-provisioner.log)"
    local start=$SECONDS
    # As upstream's release-tools build it: static, the version in main.version.
    (cd "$module" && logged csi-provisioner env CGO_ENABLED=0 go build -trimpath \
      -ldflags "-X main.version=$provisioner_version" -o "$bin.tmp" \
      "github.com/kubernetes-csi/external-provisioner/v6/cmd/csi-provisioner")
    mv "$bin.tmp" "$bin"
    find "$cache/bin" -name 'csi-provisioner-*' -not -name "csi-provisioner-$key" -delete
    log "$ref: go build took $((SECONDS - start))s"
  fi
  # Upstream's image is distroless/static with the binary at /csi-provisioner.
  python3 "$oci" write --out "$work/csi-provisioner.oci.tar" --name "$ref" \
    --dir /tmp:1777 --add "$bin:/csi-provisioner:0755" \
    --entrypoint '["/csi-provisioner"]' >/dev/null
  mv "$work/csi-provisioner.oci.tar" "$cache/archives/csi-provisioner.oci.tar"
  store_key csi-provisioner "$key"
  log "$ref: written"
}

# ------------------------------------------------------------------ pause
build_pause() {
  local ref="registry.k8s.io/pause:$pause_tag"
  local dir
  dir="$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$kubernetes_version" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
  local src="$dir/build/pause/linux/pause.c"
  [[ -f "$src" ]] || die "no $src in k8s.io/kubernetes@$kubernetes_version"
  local key
  key="$(cat "$src" "$oci" | sha256sum | cut -c1-16)-$(gcc -dumpfullversion)"
  if key_matches pause "$key"; then
    log "$ref: up to date"
    return
  fi
  log "$ref: gcc -static $src"
  local bin="$cache/bin/pause-$key"
  # As build/pause/Makefile compiles it; VERSION is what `pause -v` prints. The
  # module says 3.10.1, which differs from 3.10 only in the Windows image.
  gcc -Os -Wall -Werror -static -DVERSION="v$pause_tag-kubernetes-$kubernetes_version" \
    -o "$bin" "$src"
  strip "$bin"
  find "$cache/bin" -name 'pause-*' -not -name "pause-$key" -delete
  # As build/pause/Dockerfile: FROM scratch, /pause, USER 65535:65535.
  python3 "$oci" write --out "$work/pause.oci.tar" --name "$ref" \
    --add "$bin:/pause:0755" --user 65535:65535 --entrypoint '["/pause"]' >/dev/null
  mv "$work/pause.oci.tar" "$cache/archives/pause.oci.tar"
  store_key pause "$key"
  log "$ref: written"
}

# ------------------------------------------------------------------ argo
# The controller and the executor of Argo Workflows, as upstream's Dockerfile ships
# them (distroless static: the binary in /bin; the controller as user 8737).
build_argo() {
  local module="$here/../components/argo"
  local key
  key="$( (cat "$module"/go.mod "$module"/go.sum "$module"/tools.go "$oci"; echo "$ARGO_VERSION") |
    sha256sum | cut -c1-16)-$(go env GOVERSION)"
  if key_matches argoexec "$key" && key_matches workflow-controller "$key"; then
    log "argo $ARGO_VERSION: up to date"
    return
  fi
  local bin="$cache/bin/argo-$key"
  if [[ ! -x "$bin/argoexec" || ! -x "$bin/workflow-controller" ]]; then
    log "argo $ARGO_VERSION: go build (log: $cache/logs/argo.log)"
    local start=$SECONDS
    logged argo go_build_argo "$module" "$bin.tmp"
    rm -rf "$bin" && mv "$bin.tmp" "$bin"
    find "$cache/bin" -maxdepth 1 -name 'argo-*' -not -name "argo-$key" -exec rm -rf {} +
    log "argo $ARGO_VERSION: go build took $((SECONDS - start))s"
  fi
  local name
  for name in workflow-controller argoexec; do
    local user=()
    [[ $name == workflow-controller ]] && user=(--user 8737)
    python3 "$oci" write --out "$work/$name.oci.tar" --name "${refs[$name]}" \
      --dir /tmp:1777 --add "$bin/$name:/bin/$name:0755" "${user[@]}" \
      --env PATH=/bin --entrypoint "[\"$name\"]" >/dev/null
    mv "$work/$name.oci.tar" "$cache/archives/$name.oci.tar"
    store_key "$name" "$key"
  done
  log "argo $ARGO_VERSION: written"
}

# go_build_argo MODULE OUT: the module zip lacks one file of upstream's tree, the
# symlink workflow/executor/osspecific/signal_linux.go -> signal_darwin.go (zips
# drop symlinks), so the build uses a copy of the module with the link restored.
go_build_argo() {
  local module="$1" out="$2" src="$work/argo-src"
  local dir
  # `go list -m` names no directory for a module not yet in the module cache (a fresh
  # machine): download it first.
  (cd "$module" && GOFLAGS=-mod=mod go mod download github.com/argoproj/argo-workflows/v3) || return 1
  dir="$(cd "$module" && GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' github.com/argoproj/argo-workflows/v3)"
  [ -d "$dir" ] || { echo "argo: the module github.com/argoproj/argo-workflows/v3 has no directory in the module cache" >&2; return 1; }
  cp -r "$dir" "$src"
  chmod -R u+w "$src"
  ln -s signal_darwin.go "$src/workflow/executor/osspecific/signal_linux.go"
  cp "$module/go.mod" "$work/argo.mod"
  cp "$module/go.sum" "$work/argo.sum"
  echo "replace github.com/argoproj/argo-workflows/v3 => $src" >>"$work/argo.mod"
  local v=github.com/argoproj/argo-workflows/v3
  # As upstream's Makefile: static, the version stamped into the root package.
  (cd "$module" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -modfile "$work/argo.mod" -trimpath \
    -ldflags "-s -X $v.version=$ARGO_VERSION -X $v.gitTag=$ARGO_VERSION -X $v.gitTreeState=clean" \
    -o "$out/" "$v/cmd/argoexec" "$v/cmd/workflow-controller")
}

# ------------------------------------------------------------------ kubectl
# KFP v1 compiles a claim's deletion to a step running `kubectl delete` in
# gcr.io/cloud-builders/kubectl; this image is the cluster's own kubectl.
build_kubectl() {
  local bin="${CELLAR_CLUSTER_CACHE:-/var/cache/cellar-cluster}/bin-$kubernetes_version/kubectl"
  [[ -x "$bin" ]] || die "no $bin: tests/cluster/build-components.sh builds it"
  local key
  key="$( (cat "$bin" "$oci") | sha256sum | cut -c1-16)"
  if key_matches kubectl "$key"; then
    log "${refs[kubectl]}: up to date"
    return
  fi
  python3 "$oci" write --out "$work/kubectl.oci.tar" --name "${refs[kubectl]}" \
    --dir /tmp:1777 --add "$bin:/usr/local/bin/kubectl:0755" \
    --env PATH=/usr/local/bin:/usr/bin:/bin --entrypoint '["kubectl"]' >/dev/null
  mv "$work/kubectl.oci.tar" "$cache/archives/kubectl.oci.tar"
  store_key kubectl "$key"
  log "${refs[kubectl]}: written"
}

# ------------------------------------------------------------------ minio
build_minio() {
  local module="$here/../components/minio"
  local key
  key="$( (cat "$module"/go.mod "$module"/go.sum "$oci") | sha256sum | cut -c1-16)-$(go env GOVERSION)"
  if key_matches minio "$key"; then
    log "${refs[minio]}: up to date"
    return
  fi
  local bin="$cache/bin/minio-$key"
  if [[ ! -x "$bin" ]]; then
    log "${refs[minio]}: go build (log: $cache/logs/minio.log)"
    local start=$SECONDS
    (cd "$module" && logged minio env CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath \
      -o "$bin.tmp" github.com/minio/minio)
    mv "$bin.tmp" "$bin"
    find "$cache/bin" -name 'minio-*' -not -name "minio-$key" -delete
    log "${refs[minio]}: go build took $((SECONDS - start))s"
  fi
  python3 "$oci" write --out "$work/minio.oci.tar" --name "${refs[minio]}" \
    --dir /tmp:1777 --dir /data:0755 --add "$bin:/usr/bin/minio:0755" \
    --env PATH=/usr/bin --entrypoint '["minio"]' >/dev/null
  mv "$work/minio.oci.tar" "$cache/archives/minio.oci.tar"
  store_key minio "$key"
  log "${refs[minio]}: written"
}

# ------------------------------------------------------------------ main
declare -A refs=(
  [cellar]=docker.io/library/cellar:0.1.0
  [cellar-examples]=docker.io/library/cellar-examples:0.1.0
  [csi-provisioner]=registry.k8s.io/sig-storage/csi-provisioner:$provisioner_version
  [pause]=registry.k8s.io/pause:$pause_tag
  [cellar-examples-kedro]=docker.io/library/cellar-examples-kedro:0.1.0
  [workflow-controller]=quay.io/argoproj/workflow-controller:$ARGO_VERSION
  [argoexec]=quay.io/argoproj/argoexec:$ARGO_VERSION
  [kubectl]=gcr.io/cloud-builders/kubectl:latest
  [minio]=docker.io/library/minio:bench
)
total_start=$SECONDS
for n in "${names[@]}"; do
  case "$n" in
    cellar) build_dockerfile cellar "${refs[cellar]}" "$repo" "$repo/deploy/Dockerfile" \
              "$repo/deploy/Dockerfile.dockerignore" ;;
    cellar-examples) build_dockerfile cellar-examples "${refs[cellar-examples]}" \
              "$repo/examples" "$repo/examples/Dockerfile" ;;
    cellar-examples-kedro) build_dockerfile cellar-examples-kedro "${refs[cellar-examples-kedro]}" \
              "$repo/examples" "$repo/examples/kedro/Dockerfile" ;;
    csi-provisioner) build_provisioner ;;
    pause) build_pause ;;
    argo) build_argo ;;
    kubectl) build_kubectl ;;
    minio) build_minio ;;
  esac
done

# What each --only name puts in the archives (argo is two images).
archives=()
for n in "${names[@]}"; do
  if [[ $n == argo ]]; then archives+=(workflow-controller argoexec); else archives+=("$n"); fi
done
if [[ -n "$import_socket" ]]; then
  for n in "${archives[@]}"; do
    log "importing ${refs[$n]} into $import_socket (namespace k8s.io)"
    ctr --address "$import_socket" -n k8s.io images import "$cache/archives/$n.oci.tar" >/dev/null
    # Listed first, then searched: `ctr ... | grep -q` fails under pipefail when
    # grep exits before ctr has written everything (SIGPIPE).
    listed="$(ctr --address "$import_socket" -n k8s.io images ls -q)"
    grep -qx -- "${refs[$n]}" <<<"$listed" ||
      die "${refs[$n]} is not in $import_socket after the import"
  done
fi
log "done in $((SECONDS - total_start))s: ${names[*]} (archives in $cache/archives)"
