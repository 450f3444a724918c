"""The machine a run is on: what a results file says about it (run.py, kedro/bench.py),
and warm_memory, which step.py calls before every timed write and read."""

from __future__ import annotations

import mmap
import os
import platform
from pathlib import Path

SLACK = 64 << 20
HUGE = 2 << 20
MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23)   # Linux 5.14


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine() -> str:
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") >> 30
    return f"{os.cpu_count()} cores, {memory} GiB, Linux {platform.release()}"


def page_reporting() -> str:
    """The guest's free page reporting (virtio-balloon): free blocks of 2^order pages are
    handed back to the hypervisor, which must back them again on their next first touch."""
    order = Path("/sys/module/page_reporting/parameters/page_reporting_order")
    return f"free page reporting, order {order.read_text().strip()}" if order.exists() else ""


def warm_memory(nbytes: int, huge: bool = True) -> None:
    """Faults in and frees NBYTES of anonymous memory, so that the pages the next
    allocation gets are backed by the host. On this VM free memory goes back to the
    hypervisor, and the first touch of such a page costs 2-3 s per GiB
    (page_cost.py), far more than any store's own work: without this, whichever system
    allocates fresh pages (a file on tmpfs or a Cellar volume, pickle's bytes) would be
    timed on the hypervisor, while vineyardd, which keeps its arena, would not.

    With HUGE the region asks for transparent huge pages, so what is freed is whole 2 MiB
    blocks backed by the host: a huge-pages arena allocates those, and 4 KiB pages warmed
    one by one leave them cold (page_cost.py shows both)."""
    region = mmap.mmap(-1, nbytes + SLACK + HUGE)
    try:
        if huge:
            region.madvise(mmap.MADV_HUGEPAGE)
        try:
            region.madvise(MADV_POPULATE_WRITE)
        except OSError:   # before Linux 5.14: touch a byte per page
            for offset in range(0, len(region), mmap.PAGESIZE):
                region[offset] = 1
    finally:
        region.close()
