#!/usr/bin/env bash
# Builds the images Kubernetes' storage e2e tests (tests/cluster/conformance.sh) run, under
# the names e2e.test expects, without a registry:
#
#   tests/cluster/images/e2e-images.sh [--import SOCKET] [--force]
#
# The names and tags come from test/utils/image/manifest.go of k8s.io/kubernetes at the
# release tests/cluster/versions.env pins (v1.34.4: busybox 1.37.0-1, agnhost 2.56, ...):
#
#   registry.k8s.io/e2e-test-images/busybox:TAG   Debian 12's busybox-static (1.35.0), one
#                     binary with a link per applet in the directory it names, /etc/passwd
#                     and /etc/group like the docker-library image's, /tmp 1777. Upstream
#                     mirrors docker.io/library/busybox 1.37.0 unchanged.
#   registry.k8s.io/e2e-test-images/agnhost:TAG   agnhost compiled from test/images/agnhost
#                     of that release (as its Makefile: CGO off, main.Version=TAG) on the
#                     busybox layer above, with what test/images/agnhost/Dockerfile adds
#                     (/agnhost-2, /uploads, the porter certificates, user 1000
#                     user-defined-in-image in group 50000 group-defined-in-image);
#                     ENTRYPOINT /agnhost, CMD pause. Upstream's base is Alpine with curl,
#                     dig, bash, iproute2 and iperf, which the network tests use and the
#                     storage tests do not; busybox gives sh, nsenter, nc and wget.
#   registry.k8s.io/e2e-test-images/nginx:TAG, jessie-dnsutils:TAG   stand-ins: the
#                     busybox image under those names. The storage suites use them only
#                     to run shell commands (the exec test's script, multivolume's
#                     concurrent readers), never nginx or dig.
#
# --import SOCKET   import them into the containerd at SOCKET, namespace k8s.io.
# --force           rebuild even when an image's key matches.
#
# Cache (CELLAR_IMAGES_CACHE, default /var/cache/cellar-cluster/images, shared with
# build.sh): archives/e2e-NAME.oci.tar and .key (key: the busybox package's version,
# the release, this script and oci_archive.py), bin/ (the .deb, agnhost). Needs root
# (apt-get download, dpkg-deb), go, python3, tar; ctr for --import. build.sh's
# default run does not build these.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../versions.env"
cache="${CELLAR_IMAGES_CACHE:-/var/cache/cellar-cluster/images}"
module="$here/../components/kubernetes-e2e"
oci="$here/oci_archive.py"
import_socket=""
force=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
log() { printf '[e2e-images %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { printf '[e2e-images] error: %s\n' "$*" >&2; exit 1; }

while (($#)); do
  case "$1" in
    --import) import_socket="${2:?--import needs a socket path}"; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ $EUID -eq 0 ]] || die "needs root (apt-get download, root-owned image files)"
for tool in go python3 tar dpkg-deb apt-get; do
  command -v "$tool" >/dev/null || die "missing tool: $tool"
done
[[ -z "$import_socket" ]] || command -v ctr >/dev/null || die "missing tool: ctr"
[[ -z "$import_socket" || -S "$import_socket" ]] || die "--import: no socket at $import_socket"

mkdir -p "$cache"/{bin,archives,logs}
exec 9>"$cache/.e2e-lock"
flock -n 9 || { log "another e2e-images.sh holds $cache/.e2e-lock; waiting"; flock 9; }
work="$(mktemp -d "$cache/e2e-work.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# The release's source: where the tags, agnhost and its certificates come from.
k8s_dir="$(cd "$module" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
manifest="$k8s_dir/test/utils/image/manifest.go"
# tag NAME: the tag manifest.go gives the e2e-test-images image NAME.
tag() {
  local t
  t="$(sed -nE "s/.*Config\{list\.PromoterE2eRegistry, \"$1\", \"([^\"]+)\"\}.*/\1/p" "$manifest" | head -1)"
  [[ -n "$t" ]] || die "no tag for $1 in $manifest"
  printf '%s' "$t"
}
registry=registry.k8s.io/e2e-test-images
declare -A refs=(
  [busybox]="$registry/busybox:$(tag busybox)"
  [agnhost]="$registry/agnhost:$(tag agnhost)"
  [nginx]="$registry/nginx:$(tag nginx)"
  [jessie-dnsutils]="$registry/jessie-dnsutils:$(tag jessie-dnsutils)"
)
names=(busybox agnhost nginx jessie-dnsutils)
agnhost_version="$(cat "$k8s_dir/test/images/agnhost/VERSION")"
[[ "${refs[agnhost]}" == *":$agnhost_version" ]] ||
  die "agnhost: manifest.go says ${refs[agnhost]}, test/images/agnhost/VERSION says $agnhost_version"

# ------------------------------------------------------------------ busybox layer
bb_version="$(apt-cache policy busybox-static | sed -n 's/^ *Candidate: //p')"
[[ -n "$bb_version" && "$bb_version" != "(none)" ]] ||
  die "apt knows no busybox-static (apt-get update?)"
deb="$cache/bin/busybox-static_${bb_version//:/%3a}_amd64.deb"
key="$KUBERNETES_VERSION-$bb_version-$(cat "$0" "$oci" | sha256sum | cut -c1-16)-$(go env GOVERSION)"

current() { [[ $force -eq 0 && -f "$cache/archives/e2e-$1.oci.tar" && "$(cat "$cache/archives/e2e-$1.key" 2>/dev/null)" == "$key" ]]; }
stale=()
for n in "${names[@]}"; do current "$n" || stale+=("$n"); done

# rootfs_tar DIR OUT: a layer of DIR's contents, root-owned, mtime 0, sorted.
rootfs_tar() {
  tar --numeric-owner --owner=0 --group=0 --mtime=@0 --sort=name -C "$1" -cf "$2" .
}

if ((${#stale[@]})); then
  if [[ ! -f "$deb" ]]; then
    log "busybox-static $bb_version: apt-get download"
    (cd "$work" && apt-get download -q "busybox-static=$bb_version" >"$cache/logs/e2e-busybox.log" 2>&1) ||
      { cat "$cache/logs/e2e-busybox.log" >&2; die "apt-get download busybox-static failed"; }
    mv "$work"/busybox-static_*.deb "$deb"
  fi
  dpkg-deb -x "$deb" "$work/deb"
  root="$work/busybox"
  mkdir -p "$root"/{bin,etc,home,root,tmp,var/spool/mail,usr/bin,usr/sbin,sbin}
  chmod 700 "$root/root"
  chmod 1777 "$root/tmp"
  install -m 0755 "$work/deb/bin/busybox" "$root/bin/busybox"
  # Every applet at the path busybox names for it (bin/sh, usr/bin/sha256sum, ...).
  "$root/bin/busybox" --list-full | while read -r path; do
    [[ "$path" == bin/busybox || -e "$root/$path" ]] || ln -s /bin/busybox "$root/$path"
  done
  cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
EOF
  cat >"$root/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:
www-data:x:33:
operator:x:37:
users:x:100:
nogroup:x:65533:
nobody:x:65534:
EOF
  rootfs_tar "$root" "$work/busybox.tar"
  log "busybox layer: busybox-static $bb_version, $("$root/bin/busybox" --list | wc -l) applets"
fi

# write NAME LAYER-TAR... -- OCI-ARGS...: archives/e2e-NAME.oci.tar and its key.
write() {
  local name="$1" layers=(); shift
  while [[ "$1" != -- ]]; do layers+=(--layer-tar "$1"); shift; done
  shift
  python3 "$oci" write --out "$work/$name.oci.tar" --name "${refs[$name]}" "${layers[@]}" "$@" >/dev/null
  mv "$work/$name.oci.tar" "$cache/archives/e2e-$name.oci.tar"
  printf '%s\n' "$key" >"$cache/archives/e2e-$name.key"
  log "${refs[$name]}: written"
}

for n in "${names[@]}"; do
  if current "$n"; then
    log "${refs[$n]}: up to date"
    continue
  fi
  case "$n" in
    busybox|nginx|jessie-dnsutils) write "$n" "$work/busybox.tar" -- --cmd '["sh"]' ;;
    agnhost)
      bin="$cache/bin/agnhost-$agnhost_version-$(go env GOVERSION)-$(cat "$module/go.sum" | sha256sum | cut -c1-12)"
      if [[ ! -x "$bin" ]]; then
        log "agnhost $agnhost_version: go build (log: $cache/logs/e2e-agnhost.log)"
        start=$SECONDS
        (cd "$module" && CGO_ENABLED=0 GOFLAGS=-mod=mod nice -n 19 go build -trimpath \
          -ldflags "-s -w -X main.Version=$agnhost_version" -o "$bin.tmp" \
          k8s.io/kubernetes/test/images/agnhost) >"$cache/logs/e2e-agnhost.log" 2>&1 ||
          { tail -20 "$cache/logs/e2e-agnhost.log" >&2; die "agnhost build failed"; }
        mv "$bin.tmp" "$bin"
        log "agnhost: built in $((SECONDS - start))s"
      fi
      top="$work/agnhost"
      mkdir -p "$top/etc" "$top/uploads"
      install -m 0755 "$bin" "$top/agnhost"
      ln -s agnhost "$top/agnhost-2"
      install -m 0644 "$k8s_dir/test/images/agnhost/porter/localhost.crt" "$top/localhost.crt"
      install -m 0644 "$k8s_dir/test/images/agnhost/porter/localhost.key" "$top/localhost.key"
      # As the Dockerfile's adduser/addgroup: the SupplementalGroups tests read them.
      { cat "$work/busybox/etc/passwd"
        echo "user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh"; } >"$top/etc/passwd"
      { cat "$work/busybox/etc/group"
        echo "user-defined-in-image:x:1000:"
        echo "group-defined-in-image:x:50000:user-defined-in-image"; } >"$top/etc/group"
      mkdir -p "$top/home/user-defined-in-image"
      rootfs_tar "$top" "$work/agnhost.tar"
      write agnhost "$work/busybox.tar" "$work/agnhost.tar" -- \
        --entrypoint '["/agnhost"]' --cmd '["pause"]' ;;
  esac
done

if [[ -n "$import_socket" ]]; then
  for n in "${names[@]}"; do
    ctr --address "$import_socket" -n k8s.io images import "$cache/archives/e2e-$n.oci.tar" >/dev/null
    # The list first: `grep -q` would stop reading early, and pipefail fail the check.
    listed="$(ctr --address "$import_socket" -n k8s.io images ls -q)"
    grep -qx "${refs[$n]}" <<<"$listed" || die "${refs[$n]} is not in $import_socket after the import"
    log "${refs[$n]}: imported into $import_socket"
  done
fi
