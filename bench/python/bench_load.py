"""Load and dump times of a numeric DataFrame: cellar.load/dump against
pd.read_pickle/DataFrame.to_pickle, in several directories (a Cellar volume, tmpfs,
the local disk), at several sizes. Prints a Markdown table of medians.

    PYTHONPATH=python /usr/bin/python3 -m bench.python.bench_load \
        --dirs tmpfs=/dev/shm disk=/var/tmp --sizes 256Mi,1Gi

(from the repo root: the cellar module from python/, sizes read by tests/lib/sizes.py)

"load" is the call alone; "load+scan" adds one pass over every column (a sum), which is
where a mapped file pays for its pages. Before each read from a directory that is not
memory-backed, the page cache is written back and dropped (root only), so the disk is
read cold, as by a step that runs after the writer's pages were evicted. The memory the
runs need is touched once before timing (see warm_memory).
"""

import argparse
import gc
import mmap
import os
import statistics
import sys
import tempfile
import time

import cellar
import numpy as np
import pandas as pd

from tests.lib.sizes import parse_size

# Cellar's files live in its arena (tmpfs): dropping the page cache cannot evict them,
# so a "cold" read of a Cellar volume does not exist. Dropping caches before reading one
# would only add this VM's after-effect of drop_caches, which slows 4 KiB mmap faults
# on tmpfs and Cellar alike by ~5x for a while (bench/README.md).
MEMORY_FILESYSTEMS = {"tmpfs", "ramfs", "fuse.cellar"}
UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def human(size):
    for unit in ("G", "M", "K"):
        if size >= UNITS[unit] and size % UNITS[unit] == 0:
            return f"{size // UNITS[unit]} {unit}iB"
    return f"{size} B"


def filesystem_type(path):
    """The type of the filesystem holding ``path``, from /proc/self/mountinfo."""
    path = os.path.realpath(path)
    best, best_type = "", "unknown"
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            left, right = line.split(" - ", 1)
            mount_point = left.split()[4]
            inside = path == mount_point or path.startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) >= len(best):
                best, best_type = mount_point, right.split()[0]
    return best_type


def make_frame(nbytes):
    """Half float64, half int64 columns, eight in all, ``nbytes`` of data."""
    rows = nbytes // 64
    rng = np.random.default_rng(0)
    columns = {f"f{i}": rng.random(rows) for i in range(4)}
    columns.update({f"i{i}": np.arange(i, rows + i, dtype=np.int64) for i in range(4)})
    return pd.DataFrame(columns)


def scan(frame):
    """Touch every byte of every column once."""
    return sum(float(frame[name].to_numpy().sum()) for name in frame.columns)


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def one_round(frame, path, write, read, cold):
    """(write s, read s, read+scan s) for one format, the file removed afterwards."""
    gc.collect()
    write_time, _ = timed(write, frame, path)
    if cold:
        drop_caches()
    read_time, loaded = timed(read, path)
    scan_time, _ = timed(scan, loaded)
    del loaded
    os.unlink(path)
    gc.collect()
    return write_time, read_time, read_time + scan_time


FORMATS = {
    "cellar": (lambda frame, path: cellar.dump(frame, path), cellar.load),
    "pickle": (lambda frame, path: frame.to_pickle(path), pd.read_pickle),
}


def measure(frame, directory, repeat, cold):
    """Median (write, read, read+scan) seconds per format; the formats take turns at
    going first, so neither always inherits the other's freed memory."""
    samples = {name: [] for name in FORMATS}
    for round_number in range(repeat):
        order = list(FORMATS.items())
        for name, (write, read) in order[round_number % 2:] + order[:round_number % 2]:
            path = os.path.join(directory, f"bench-{os.getpid()}.{name}")
            samples[name].append(one_round(frame, path, write, read, cold))
    return {name: tuple(statistics.median(column) for column in zip(*rows))
            for name, rows in samples.items()}


def available_memory():
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def memory_needed(size, memory_backed):
    """Frame + loaded copy + (on tmpfs) the file itself, with 2 GiB to spare."""
    return size * (3 if memory_backed else 2) + (2 << 30)


def warm_memory(nbytes):
    """Touch ``nbytes`` of fresh memory once. In a microVM whose memory the host backs
    lazily (Firecracker here), the first touch of a guest page costs a host fault, about
    2.5 s per GiB against 0.12 s afterwards, and would be charged to whichever run
    happened to touch the page first."""
    mapping = mmap.mmap(-1, nbytes)
    np.frombuffer(mapping, dtype=np.uint8)[::mmap.PAGESIZE] = 1
    mapping.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dirs", nargs="+", required=True, metavar="NAME=PATH")
    parser.add_argument("--sizes", default="256Mi,1Gi,4Gi")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--drop-caches", choices=("auto", "always", "never"), default="auto")
    parser.add_argument("--no-warm-memory", dest="warm_memory", action="store_false",
                        help="skip touching the memory the runs will need before timing")
    args = parser.parse_args()

    targets = [entry.split("=", 1) for entry in args.dirs]
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    if args.warm_memory:
        budget = available_memory() - (3 << 30)
        warm_memory(max(0, min(budget, max(memory_needed(s, True) for s in sizes))))
    print(f"kernel {os.uname().release}, {os.cpu_count()} CPUs, python {sys.version.split()[0]}, "
          f"numpy {np.__version__}, pandas {pd.__version__}; median of {args.repeat}\n")
    print("| where | fs | size | to_pickle s | cellar.dump s | dump ratio | read_pickle s "
          "| cellar.load ms | load speedup | read_pickle+scan s | cellar.load+scan s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size in sizes:
        frame = make_frame(size)
        for name, directory in targets:
            fs_type = filesystem_type(directory)
            memory_backed = fs_type in MEMORY_FILESYSTEMS
            cold = args.drop_caches == "always" or (
                args.drop_caches == "auto" and not memory_backed)
            if cold and os.geteuid() != 0:
                sys.exit("dropping the page cache needs root (or pass --drop-caches never)")
            if available_memory() < memory_needed(size, memory_backed):
                print(f"| {name} | {fs_type} | {human(size)} | skipped: not enough free memory |")
                continue
            with tempfile.TemporaryDirectory(dir=directory, prefix="cellar-bench-") as workdir:
                result = measure(frame, workdir, args.repeat, cold)
            p_write, p_read, p_scan = result["pickle"]
            c_write, c_read, c_scan = result["cellar"]
            print(f"| {name} | {fs_type}{' (cold)' if cold else ''} | {human(size)} "
                  f"| {p_write:.2f} | {c_write:.2f} | {c_write / p_write:.2f} | {p_read:.2f} "
                  f"| {c_read * 1e3:.2f} | {p_read / c_read:.0f}x | {p_scan:.2f} | {c_scan:.2f} |",
                  flush=True)
        del frame
        gc.collect()


if __name__ == "__main__":
    main()
