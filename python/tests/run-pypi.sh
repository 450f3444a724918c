#!/bin/sh
# Runs the cellar Python tests on the current PyPI releases of numpy, pandas and pyarrow
# (python/requirements-pypi.txt), in a venv of Debian's interpreter that this script
# creates and reuses while the requirements stay the same. Needs PyPI the first time.
# Usage, from anywhere: python/tests/run-pypi.sh
# CELLAR_PYPI_VENV_ROOT (default /var/cache/cellar-python) is where venvs are kept.
set -eu
cd "$(dirname "$0")/../.."
requirements=python/requirements-pypi.txt
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3)
digest=$(cat "$requirements" | sha256sum | cut -c1-16)
venv=${CELLAR_PYPI_VENV_ROOT:-/var/cache/cellar-python}/pypi-$digest
# The marker is written last, so a half-made venv (interrupted pip) is made again.
if [ ! -f "$venv/.requirements-installed" ]; then
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --require-virtualenv -r "$requirements"
  cp "$requirements" "$venv/.requirements-installed"
fi
"$venv/bin/python" -c 'import numpy, pandas, pyarrow; print("python-pypi: numpy",
  numpy.__version__, "pandas", pandas.__version__, "pyarrow", pyarrow.__version__)'
CELLAR_TEST_PYTHON="$venv/bin/python" exec "$venv/bin/python" python/tests/runtests.py
