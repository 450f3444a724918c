#!/bin/sh
# check-runtime-packages.sh BINARY PACKAGE_LIST
#
# Fails unless PACKAGE_LIST (deploy/runtime-packages.txt) names the Debian
# package of every shared library BINARY links directly (its NEEDED entries;
# apt brings what those packages depend on). libc6, libgcc-s1 and libstdc++6
# are in every Debian image. Used by the builder stage of deploy/Dockerfile
# and by tests/deploy, so a new dependency fails the build and the tests
# instead of the node plugin at start-up. POSIX sh: runs in debian:12 as is.
set -eu
binary="$1"
list="$2"
missing=0
readelf -h "$binary" >/dev/null 2>&1 || { echo "$binary is not an ELF executable" >&2; exit 1; }
sonames="$(readelf -d "$binary" | awk '/NEEDED/ {gsub(/[][]/, "", $5); print $5}')"
for soname in $sonames; do
  lib="$(ldd "$binary" | awk -v s="$soname" '$1 == s {print $3}')"
  if [ -z "$lib" ] || [ ! -e "$lib" ]; then
    echo "$binary needs $soname, which is not installed here" >&2
    missing=1
    continue
  fi
  real="$(readlink -f "$lib")"
  # Debian 12 is merged-/usr, but dpkg records some libraries under /lib.
  pkg="$(dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null || true)"
  pkg="${pkg%%:*}"
  case "$pkg" in libc6|libgcc-s1|libstdc++6) continue ;; esac
  if [ -z "$pkg" ] || ! grep -qx "$pkg" "$list"; then
    echo "$binary needs $soname ($real) from package '${pkg:-unknown}', which $list lacks" >&2
    missing=1
  else
    echo "$soname: $pkg"
  fi
done
exit "$missing"
