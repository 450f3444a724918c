"""Shared helpers for the cellar tests: the import path, temporary directories, and
what the kernel says about mappings and memory (/proc)."""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(PYTHON_DIR)
COMPAT_DIR = os.path.join(PYTHON_DIR, "compat")
STEPS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "steps")
# The interpreter the tests start in subprocesses: Debian's, the one with python3-numpy
# and python3-pandas, unless a runner names another (python/tests/run-pypi.sh names its
# venv's, so that the subprocesses see the same numpy and pandas as the tests).
PYTHON = (os.environ.get("CELLAR_TEST_PYTHON")
          or ("/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable))

# Test the checkout, never an installed copy.
if sys.path[0] != PYTHON_DIR:
    sys.path.insert(0, PYTHON_DIR)

import cellar  # noqa: E402


class TempDirTest(unittest.TestCase):
    """A fresh directory per test in self.dir, removed afterwards."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cellar-test-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def path(self, name="obj.cellar"):
        return os.path.join(self.dir, name)

    def round_trip(self, obj, **load_args):
        path = self.path()
        cellar.dump(obj, path)
        return cellar.load(path, **load_args)


def mapped_ranges(path):
    """[(start, end)] of this process's mappings of the file at ``path``."""
    device_inode = os.stat(path)
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) < 6:
                continue
            major, minor = (int(x, 16) for x in fields[3].split(":"))
            if (int(fields[4]) == device_inode.st_ino
                    and os.makedev(major, minor) == device_inode.st_dev):
                start, end = (int(x, 16) for x in fields[0].split("-"))
                ranges.append((start, end))
    return ranges


def data_range(array):
    """[start, end) of the memory a contiguous numpy array's elements occupy."""
    start = array.__array_interface__["data"][0]
    return start, start + array.nbytes


def inside(span, ranges):
    return any(start <= span[0] and span[1] <= end for start, end in ranges)


def meminfo_kib(field):
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            name, value = line.split(":", 1)
            if name == field:
                return int(value.split()[0])
    raise KeyError(field)


def status_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            name, value = line.split(":", 1)
            if name == field:
                return int(value.split()[0])
    raise KeyError(field)


@contextlib.contextmanager
def volume_dir():
    """(directory, description) to run the volume test on: $CELLAR_TEST_VOLUME (a
    mounted Cellar volume) when set, else a tmpfs mounted for the test (root), else
    /dev/shm. The caller's code path is the same in every case."""
    volume = os.environ.get("CELLAR_TEST_VOLUME")
    if volume:
        with _subdirectory(volume) as directory:
            yield directory, f"Cellar volume {volume} (CELLAR_TEST_VOLUME)"
        return
    with mounted_tmpfs("2g") as mount_point:
        if mount_point:
            yield mount_point, f"tmpfs mounted at {mount_point} (CELLAR_TEST_VOLUME unset)"
            return
    with _subdirectory("/dev/shm") as directory:
        yield directory, "/dev/shm (CELLAR_TEST_VOLUME unset, could not mount a tmpfs)"


@contextlib.contextmanager
def mounted_tmpfs(size):
    """A fresh tmpfs of ``size`` (mount's syntax) on a temporary directory, or None
    where mounting is not allowed (not root)."""
    mount_point = tempfile.mkdtemp(prefix="cellar-tmpfs-")
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "cellar-test", mount_point],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
        if not mounted:
            yield None
            return
        try:
            yield mount_point
        finally:
            subprocess.run(["umount", mount_point], check=False)
    finally:
        os.rmdir(mount_point)


@contextlib.contextmanager
def _subdirectory(parent):
    directory = tempfile.mkdtemp(prefix="cellar-test-", dir=parent)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
