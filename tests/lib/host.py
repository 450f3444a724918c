"""This machine's mounts and shared memory, as a harness checks and cleans them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def _mounts():
    """(superblock device, mount point, filesystem type) of every mount of this
    namespace, from /proc/self/mountinfo."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            yield (fields[2], fields[4].encode().decode("unicode_escape"),
                   fields[fields.index("-") + 1])


def _meminfo_bytes(key: str) -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def mounts_below(root: Path) -> list[str]:
    """Mount points at or below `root` in this namespace, deepest first."""
    root_s = str(root).rstrip("/")
    found = [mp for _, mp, _ in _mounts() if mp == root_s or mp.startswith(root_s + "/")]
    return sorted(set(found), key=lambda p: (-p.count("/"), p))


def unmount_below(root: Path) -> None:
    for _ in range(8):
        points = mounts_below(root)
        if not points:
            return
        for mp in points:
            subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL, check=False)


def shmem_bytes() -> int:
    return _meminfo_bytes("Shmem")


def shmem_outside_others(root: Path) -> int:
    """Shmem minus what the other tmpfs mounts of this namespace (not under root) hold:
    the shared memory this run is answerable for, steady while others on the machine
    fill and empty their own tmpfs mounts."""
    prefix = str(root).rstrip("/") + "/"
    seen, others = set(), 0
    for device, mp, fstype in _mounts():
        if fstype != "tmpfs" or mp.startswith(prefix) or device in seen:
            continue
        seen.add(device)  # one superblock may be mounted at several places
        try:
            st = os.statvfs(mp)
        except OSError:
            continue
        others += (st.f_blocks - st.f_bfree) * st.f_frsize
    return shmem_bytes() - others


def mem_available_bytes() -> int:
    return _meminfo_bytes("MemAvailable")
