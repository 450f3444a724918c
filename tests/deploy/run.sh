#!/usr/bin/env bash
# Offline checks of deploy/ and examples/ (no cluster, no Docker engine):
#
#   tests/deploy/run.sh [CELLAR_BINARY]
#
# - renders deploy/ and the vineyard-system/vineyardd-sample rendering with
#   `kubectl kustomize`, validates every object against the Kubernetes
#   OpenAPI schemas (tests/deploy/node, installed here with `npm ci`), and
#   checks the contracts between the objects;
# - checks deploy/Dockerfile without building it;
# - with CELLAR_BINARY (e.g. build/cellar): checks the DaemonSet's flags
#   against `cellar node --help` and `cellar fd-holder --help`, and starts
#   `cellar fd-holder` and `cellar node` with the rendered arguments to
#   compare driver name, topology key and capabilities. A given binary that
#   does not exist fails the run;
# - runs the example step code for real on $CELLAR_VOLUME_DIR (a mounted
#   Cellar volume) or, without it, on a tmpfs mounted for the purpose; and
#   parses every example pipeline definition;
# - runs the unit tests of the Python test library (tests/lib).
#
# Installs what it needs that is missing (Debian packages, npm packages),
# which needs root; the binary and volume checks need root anyway. Prints
# `N passed, N failed[, N skipped]` last and exits non-zero on any failure.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python=/usr/bin/python3
binary="${1:-}"

say() { echo "run.sh: $*" >&2; }
give_up() { say "$*"; echo "0 passed, 1 failed"; exit 1; }

apt_updated=0
apt_install() {
  if [[ $(id -u) -ne 0 ]]; then
    give_up "missing $*; install them (apt-get install $*) or run as root"
  fi
  if ((!apt_updated)); then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || give_up "apt-get update failed"
    apt_updated=1
  fi
  say "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 ||
    give_up "apt-get install $* failed"
}

# Debian's python3 with the modules the checks and the example steps use.
missing=()
[[ -x $python ]] || missing+=(python3)
for pair in yaml:python3-yaml numpy:python3-numpy pandas:python3-pandas; do
  $python -c "import ${pair%%:*}" 2>/dev/null || missing+=("${pair#*:}")
done
if [[ -n "$binary" ]]; then
  $python -c "import grpc" 2>/dev/null || missing+=(python3-grpcio)
  $python -c "import google.protobuf" 2>/dev/null || missing+=(python3-protobuf)
  command -v protoc >/dev/null || missing+=(protobuf-compiler)
  [[ -x /usr/bin/grpc_python_plugin ]] || missing+=(protobuf-compiler-grpc)
fi
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
{ command -v unshare && command -v setpriv; } >/dev/null || missing+=(util-linux)
((${#missing[@]} == 0)) || apt_install "${missing[@]}"

# kubectl with a kustomize that knows components and replacements (v4+).
# The machine image ships one; Debian 12's kubernetes-client (1.20) is older.
if ! command -v kubectl >/dev/null; then
  apt_install kubernetes-client
fi
kustomize_version="$(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\{0,1\}\([0-9]*\).*/\1/p')"
if [[ -z "$kustomize_version" || "$kustomize_version" -lt 4 ]]; then
  give_up "kubectl's kustomize is too old (need v4 or later for components and replacements): $(kubectl version --client 2>&1 | tr '\n' ' ')"
fi

# The image checks look packages up in Debian's lists.
if command -v apt-cache >/dev/null && ! apt-cache policy libc6 2>/dev/null | grep -q 'Candidate: [0-9]'; then
  if [[ $(id -u) -eq 0 && $apt_updated -eq 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 && apt_updated=1
  fi
fi

# The schema validator's npm packages, exactly as package-lock.json pins them.
node_dir="$here/node"
if [[ ! -f "$node_dir/node_modules/.package-lock.json" ||
      "$node_dir/package-lock.json" -nt "$node_dir/node_modules/.package-lock.json" ]]; then
  say "npm ci in tests/deploy/node"
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >&2) || give_up "npm ci failed"
fi

args=()
[[ -n "$binary" && "$binary" != /* ]] && binary="$PWD/$binary"   # the checks run from the repo root
[[ -n "$binary" ]] && args+=(--binary "$binary")
# From the repo root, as a module: the checks import tests.lib as a package.
cd "$here/../.." && exec "$python" -m tests.deploy.deploy_checks "${args[@]}"
