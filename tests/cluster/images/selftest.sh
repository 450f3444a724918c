#!/usr/bin/env bash
# tests/cluster/images/selftest.sh [build.sh options]
#
# Checks the images without a cluster: runs build.sh (warm when its cache is),
# starts a throwaway containerd of its own (root, state and socket under
# /tmp/cellar-images-selftest.*, CRI disabled; the machine's /run/containerd is
# never touched), imports the images with `build.sh --import`, then checks that
# `ctr -n k8s.io images ls` names all four and that the cellar image runs
# `cellar --version`. Stops that containerd and removes its directories, mounts
# included, whatever the outcome. Ends with "selftest: N passed, N failed".
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[[ $EUID -eq 0 ]] || { echo "selftest: needs root" >&2; exit 1; }
for tool in containerd ctr runc; do
  command -v "$tool" >/dev/null || { echo "selftest: missing $tool (tests/cluster/packages.txt)" >&2; exit 1; }
done

dir="$(mktemp -d /tmp/cellar-images-selftest.XXXXXX)"
sock="$dir/containerd.sock"
containerd_pid=""
passed=0
failed=0

cleanup() {
  local rc=$?
  if [[ -S "$sock" ]]; then
    ctr --address "$sock" -n k8s.io tasks kill -s KILL t1 >/dev/null 2>&1 || true
    ctr --address "$sock" -n k8s.io containers rm t1 >/dev/null 2>&1 || true
  fi
  if [[ -n "$containerd_pid" ]] && kill -0 "$containerd_pid" 2>/dev/null; then
    kill "$containerd_pid"
    for _ in $(seq 50); do kill -0 "$containerd_pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$containerd_pid" 2>/dev/null || true
  fi
  # Shims outlive containerd; ours are the ones started with our socket.
  local pid
  for pid in $(grep -l -a -F -- "$sock" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
    [[ "$pid" != "$$" ]] && kill -9 "$pid" 2>/dev/null || true
  done
  findmnt -rn -o TARGET | awk -v d="$dir" 'index($0, d) == 1' | sort -r |
    while read -r target; do umount -l "$target" 2>/dev/null || true; done
  rm -rf "$dir"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

check() {
  local what="$1"; shift
  if "$@"; then
    echo "selftest: PASS $what"; passed=$((passed + 1))
  else
    echo "selftest: FAIL $what"; failed=$((failed + 1))
  fi
}

cat >"$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
EOF
containerd -c "$dir/config.toml" >"$dir/containerd.log" 2>&1 &
containerd_pid=$!
for _ in $(seq 100); do
  ctr --address "$sock" version >/dev/null 2>&1 && break
  kill -0 "$containerd_pid" 2>/dev/null || { cat "$dir/containerd.log" >&2; exit 1; }
  sleep 0.2
done
echo "selftest: throwaway containerd $(containerd --version | awk '{print $3}') at $sock (pid $containerd_pid)"

"$here/build.sh" --import "$sock" "$@"

listed="$(ctr --address "$sock" -n k8s.io images ls -q)"
echo "$listed" | sed 's/^/selftest: image /'
for ref in docker.io/library/cellar:0.1.0 docker.io/library/cellar-examples:0.1.0 \
  registry.k8s.io/sig-storage/csi-provisioner:v6.4.0 registry.k8s.io/pause:3.10; do
  check "ctr images ls shows $ref" grep -qx "$ref" <<<"$listed"
done

version_output() {
  # The image's ENTRYPOINT is /usr/local/bin/cellar; ctr run replaces it with the
  # arguments given, so name the binary as a user of ctr would.
  ctr --address "$sock" -n k8s.io run --rm docker.io/library/cellar:0.1.0 t1 cellar --version \
    >"$dir/version.out" 2>&1
  sed 's/^/selftest: cellar --version: /' "$dir/version.out"
}
check "ctr run cellar:0.1.0 cellar --version" version_output
check "ctr run cellar-examples:0.1.0 imports numpy and pandas" \
  ctr --address "$sock" -n k8s.io run --rm docker.io/library/cellar-examples:0.1.0 t1 \
  python3 -c 'import numpy, pandas, steps'
check "ctr run csi-provisioner --version" \
  ctr --address "$sock" -n k8s.io run --rm registry.k8s.io/sig-storage/csi-provisioner:v6.4.0 t1 \
  /csi-provisioner --version
check "ctr run pause -v" \
  ctr --address "$sock" -n k8s.io run --rm registry.k8s.io/pause:3.10 t1 /pause -v

echo "selftest: $passed passed, $failed failed"
((failed == 0))
