# Sourced by bench/peers/run.sh and bench/peers/kedro/run.sh: the cache, Debian's python3,
# the key of a pin file, venvs made from pin files, and the MinIO server built from its
# Go module, all cached under $cache by their pins.
# Needs $root (the repo root) set; checks build/cellar.
cache=${CELLAR_BENCH_CACHE:-/var/cache/cellar-bench}
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3)
[ -x "$root/build/cellar" ] || { echo "run.sh: build/cellar is missing: build first" >&2; exit 2; }
mkdir -p "$cache"

key() { cat "$@" | sha256sum | cut -c1-16; }

venv() {   # venv PREFIX REQUIREMENTS: prints the cached venv's path, made first if need be
  local dir=$cache/$1-venv-$(key "$2")
  if [ ! -f "$dir/.installed" ]; then   # written last: a venv cut off halfway is redone
    rm -rf "$dir"
    "$python" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$2" >&2
    touch "$dir/.installed"
  fi
  echo "$dir"
}

minio_module=$root/tests/cluster/components/minio
minio=$cache/minio-$(key "$minio_module/go.mod" "$minio_module/go.sum")
if [ ! -x "$minio" ]; then
  (cd "$minio_module" && go build -trimpath -o "$minio.tmp" github.com/minio/minio)
  mv "$minio.tmp" "$minio"
fi
