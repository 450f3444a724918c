#!/bin/sh
# Runs the cellar Python tests with Debian's interpreter (python3-numpy, python3-pandas).
# Usage, from anywhere: python/tests/run.sh
# CELLAR_TEST_VOLUME=/path/on/a/cellar/volume runs the page-cache test there; unset, it
# runs on a tmpfs the test mounts (as root) and says so in its output.
set -eu
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 python/tests/runtests.py
