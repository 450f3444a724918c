"""What the memory under a write costs, apart from any store: run.py measures it once per
run, RESULTS.md shows it under "What a fresh page costs".

vineyardd's put copies into an arena it mapped and touched before, and keeps after a
delete; a file written to tmpfs, and so to a Cellar volume, gets a fresh page from the
kernel for every 4 KiB (or 2 MiB folio with cellar.dev/huge-pages: within_size), and on a
VM that hands free memory back to the hypervisor the host must back that page again too.
These rows separate the three costs at one size:

  fresh memory, as the host gives it   mmap+populate of memory not used before in the run
  fresh memory, host-backed            the same right after freeing it (warm_memory)
  copy into memory already held        np.copyto into a touched buffer: vineyardd's case
  pwrite into a new file in DIR        after warm_memory, as step.py times every write
                                       (2 MiB blocks); and once after IDLE_S seconds of
                                       idle and warming only 4 KiB pages
"""

from __future__ import annotations

import mmap
import os
import statistics
import time

import numpy as np

import host

REPEATS = 3
IDLE_S = 10   # free page reporting hands free blocks back within seconds


def _populate(nbytes: int) -> float:
    populate = getattr(mmap, "MAP_POPULATE", 0x8000)
    started = time.perf_counter()
    region = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | populate)
    elapsed = time.perf_counter() - started
    region.close()
    return elapsed


def _pwrite_new_file(directory: str, source: np.ndarray, huge_warm: bool = True) -> float:
    path = os.path.join(directory, f".page-cost-{os.getpid()}")
    view = memoryview(source).cast("B")
    host.warm_memory(len(view), huge=huge_warm)
    started = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        done = 0
        while done < len(view):
            done += os.pwrite(fd, view[done:done + (1 << 30)], done)
    finally:
        os.close(fd)
    elapsed = time.perf_counter() - started
    os.unlink(path)
    return elapsed


def measure(nbytes: int, directories: dict[str, str]) -> dict[str, float]:
    """Seconds per case (median of REPEATS, the first row once: it is only cold once)."""
    result = {"fresh memory, as the host gives it": _populate(nbytes),
              "fresh memory, host-backed": statistics.median(
                  _populate(nbytes) for _ in range(REPEATS))}
    source = np.ones(nbytes, dtype=np.uint8)
    held = np.empty(nbytes, dtype=np.uint8)
    held.fill(0)
    copies = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        np.copyto(held, source)
        copies.append(time.perf_counter() - started)
    result["copy into memory already held (vineyardd's arena)"] = statistics.median(copies)
    del held
    for label, directory in directories.items():
        result[f"pwrite into a new file: {label}"] = statistics.median(
            _pwrite_new_file(directory, source) for _ in range(REPEATS))
        # Once, after the free blocks of the rows before had time to go back to the host.
        time.sleep(IDLE_S)
        result[f"pwrite into a new file: {label}, {IDLE_S} s idle, then 4 KiB pages warmed"] = \
            _pwrite_new_file(directory, source, huge_warm=False)
    return result


if __name__ == "__main__":
    import json
    import sys
    print(json.dumps(measure(int(sys.argv[1]), dict(a.split("=", 1) for a in sys.argv[2:])),
                     indent=1))
