#!/usr/bin/env bash
# Installs the Debian 12 packages of packages.txt that are missing. Idempotent. Go (for
# build-components.sh) comes with the machine image; the script says so if it does not.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mapfile -t packages < <(sed -e 's/#.*//' -e '/^\s*$/d' "$here/packages.txt" | awk '{print $1}')
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "cluster install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || {
  echo "cluster install-deps: go is missing (Go >= 1.24 builds the cluster's components)" >&2
  exit 1
}
