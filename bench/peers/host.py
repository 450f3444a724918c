"""What a results file says about the machine the run was on (run.py, kedro/bench.py)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine() -> str:
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") >> 30
    return f"{os.cpu_count()} cores, {memory} GiB, Linux {platform.release()}"
