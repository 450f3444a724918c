"""One pipeline step in a fresh process, as a pod would run it: builds or reads its data
through one method (methods.py) and prints one JSON line of measurements.

    step.py METHOD WORKLOAD STEP SIZE_BYTES WHERE_JSON

Timed: the write calls, and the read calls until the object is usable; then one scan of
the data (first use; pages of a mapped file fault in there). Not timed: making the data,
the train/test split, and host.warm_memory before each write and each step's reads (so
that fresh pages cost what they cost on a machine whose free memory stays backed; run.py
--host-memory as-is leaves it out). Memory: the peak resident set (VmHWM) from the first read to
the end of the scan, and the anonymous memory the reads added; that divided by the bytes
read is the number of private copies of the data the reader holds.
"""

from __future__ import annotations

import json
import sys
import time

import data
import host
import methods

SMALL_FILES = 10_000
SMALL_FILE_BYTES = 64 << 10


def status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


class Meter:
    def __init__(self, warm: bool):
        self.warm = warm
        self.result = {"write_s": 0.0, "read_s": 0.0, "scan_s": 0.0, "written": 0, "read": 0}

    def warm_memory(self, nbytes: int) -> None:
        if self.warm:
            host.warm_memory(nbytes)

    def write(self, method, key, obj):
        self.warm_memory(data.nbytes(obj))
        started = time.perf_counter()
        method.write(key, obj)
        self.result["write_s"] += time.perf_counter() - started
        self.result["written"] += data.nbytes(obj)

    def start_reading(self, nbytes: int):
        self.warm_memory(nbytes)   # room for a reader that copies (pickle, Parquet, S3)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")   # resets VmHWM: the peak from here on is the reader's
        self.anon_before = status_kib("RssAnon")

    def read(self, method, key):
        started = time.perf_counter()
        obj = method.read(key)
        self.result["read_s"] += time.perf_counter() - started
        started = time.perf_counter()
        data.scan(obj)
        self.result["scan_s"] += time.perf_counter() - started
        self.result["read"] += data.nbytes(obj)
        return obj

    def finish_reading(self):
        self.result["peak_rss_mib"] = status_kib("VmHWM") / 1024
        grown = (status_kib("RssAnon") - self.anon_before) * 1024
        self.result["copies"] = grown / self.result["read"] if self.result["read"] else None


def frame_step(method, step: str, size: int, meter: Meter) -> None:
    if step == "prepare":
        meter.write(method, "raw", data.frame(size))
    elif step == "split":
        meter.start_reading(size)
        df = meter.read(method, "raw")
        meter.finish_reading()
        for key, piece in data.split(df).items():
            meter.write(method, key, piece)
    else:   # train, test: read their two pieces
        meter.start_reading(size)
        kept = [meter.read(method, f"{axis}_{step}") for axis in ("x", "y")]
        meter.finish_reading()
        del kept


def array_step(method, step: str, size: int, meter: Meter) -> None:
    if step == "write":
        meter.write(method, "array", data.array(size))
    else:
        meter.start_reading(size)
        kept = meter.read(method, "array")
        meter.finish_reading()
        del kept


def files_step(where: dict, target: str, step: str, meter: Meter) -> None:
    """10,000 files of 64 KiB: into a directory, or objects in MinIO through s3fs."""
    payload = bytes(range(256)) * (SMALL_FILE_BYTES // 256)
    names = [f"small/{i:05d}.bin" for i in range(SMALL_FILES)]
    meter.warm_memory(SMALL_FILES * SMALL_FILE_BYTES)
    started = time.perf_counter()
    if target == "minio":
        fs = methods.S3Pickle(where["minio"]).fs
        for name in names:
            if step == "write":
                fs.pipe_file(f"{methods.BUCKET}/{name}", payload)
            else:
                assert len(fs.cat_file(f"{methods.BUCKET}/{name}")) == SMALL_FILE_BYTES
    else:
        import os
        root = os.path.join(where[target], "small")
        os.makedirs(root, exist_ok=True)
        for name in names:
            path = os.path.join(where[target], name)
            if step == "write":
                with open(path, "wb") as f:
                    f.write(payload)
                    if target == "disk":
                        os.fsync(f.fileno())
            else:
                with open(path, "rb") as f:
                    assert len(f.read()) == SMALL_FILE_BYTES
    meter.result["write_s" if step == "write" else "read_s"] = time.perf_counter() - started
    meter.result["written" if step == "write" else "read"] = SMALL_FILES * SMALL_FILE_BYTES


def main() -> int:
    name, workload, step, size, where = sys.argv[1:6]
    where = json.loads(where)
    meter = Meter(warm=where.get("warm_memory", True))
    if workload == "files":
        files_step(where, name, step, meter)
    else:
        method = methods.METHODS[name][2](where)
        (frame_step if workload == "frame" else array_step)(method, step, int(size), meter)
    print(json.dumps(meter.result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
