"""Cellar beside the systems pipeline teams use today, on the same work, in one run.
Started by run.sh (which makes the pinned venv, builds MinIO and provisions the Cellar
volume); see bench/README.md, "Peers".

    run.py --minio BIN --sizes 1G --rounds 3 [--methods a,b] [--host-memory as-is]
           [--report-only]

Each step runs in a fresh process (step.py), one method at a time, and the method's
data is deleted before the next one starts, so no system holds memory another needs.
Rounds are interleaved (round 1 of every method, then round 2, ...) and the method order
rotates per round, so a busy phase of the machine does not fall on one system.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import host
import methods
import page_cost
import report
import servers

HERE = Path(__file__).resolve().parent
FRAME_STEPS = ("prepare", "split", "train", "test")
ARRAY_STEPS = ("write", "read")
FILE_TARGETS = ("cellar", "tmpfs", "disk", "minio")
UNITS = {"M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    return int(float(text[:-1]) * UNITS[text[-1]]) if text[-1] in UNITS else int(text)


def run_step(name: str, workload: str, step: str, size: int, where: dict) -> dict:
    proc = subprocess.run([sys.executable, str(HERE / "step.py"), name, workload, step,
                           str(size), json.dumps(where)], capture_output=True, text=True,
                          timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} {workload} {step}: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def clear(where: dict, vineyardd: servers.Vineyardd, minio_fs) -> None:
    """Every system empty again: files removed, objects deleted."""
    for key in ("cellar", "cellar_huge", "tmpfs", "disk", "ids", "vineyard_csi_dir"):
        for entry in Path(where[key]).iterdir():
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    vineyardd.clear()
    for path in minio_fs.find(methods.BUCKET):
        minio_fs.rm_file(path)


def measure(args, where, vineyardd, minio_fs) -> list[dict]:
    rows = []
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    names = args.methods.split(",") if args.methods else list(methods.METHODS)
    workloads = args.workloads.split(",")
    for round_index in range(args.rounds):
        order = names[round_index % len(names):] + names[:round_index % len(names)]
        for size in sizes:
            for workload, steps in (("frame", FRAME_STEPS), ("array", ARRAY_STEPS)):
                if workload not in workloads:
                    continue
                for name in order:
                    if workload not in methods.METHODS[name][3]:
                        continue
                    for step in steps:
                        result = run_step(name, workload, step, size, where)
                        rows.append(dict(result, method=name, workload=workload, step=step,
                                         size=size, round=round_index))
                        print(f"round {round_index} {size >> 20} MiB {workload} {name} {step}: "
                              f"{json.dumps(result)}", flush=True)
                    clear(where, vineyardd, minio_fs)
        if not args.skip_files:
            for target in FILE_TARGETS[round_index % 4:] + FILE_TARGETS[:round_index % 4]:
                for step in ("write", "read"):
                    result = run_step(target, "files", step, 0, where)
                    rows.append(dict(result, method=target, workload="files", step=step,
                                     size=0, round=round_index))
                    print(f"round {round_index} files {target} {step}: {json.dumps(result)}",
                          flush=True)
                clear(where, vineyardd, minio_fs)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minio", type=Path, help="the minio server binary (run.sh builds it)")
    ap.add_argument("--sizes", default="1G")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--methods", help="comma-separated subset of methods.METHODS")
    ap.add_argument("--workloads", default="frame,array",
                    help="frame, array or both (8 GiB frames do not fit in 24 GiB)")
    ap.add_argument("--skip-files", action="store_true")
    ap.add_argument("--disk-dir", default="/var/tmp")
    ap.add_argument("--host-memory", choices=("warm", "as-is"), default="warm",
                    help="warm: fault in and free the memory a step is about to need before "
                         "timing it (host.warm_memory); as-is: time whatever the host gives")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--append", action="store_true",
                    help="add this run to results.json (e.g. a larger size, fewer rounds)")
    args = ap.parse_args()
    results = HERE / "results.json"
    if args.report_only:
        report.write(json.loads(results.read_text()), HERE)
        return 0

    volume = os.environ.get("CELLAR_VOLUME_DIR")
    huge_volume = os.environ.get("CELLAR_HUGE_VOLUME_DIR")
    if not volume or not huge_volume:
        sys.exit("run.py: CELLAR_VOLUME_DIR or CELLAR_HUGE_VOLUME_DIR is not set; "
                 "start it through run.sh")
    tag = f"cellar-peers-{os.getpid()}"
    scratch = Path("/tmp") / tag
    where = {"cellar": f"{volume}/peers", "cellar_huge": f"{huge_volume}/peers",
             "tmpfs": f"/dev/shm/{tag}", "disk": f"{args.disk_dir}/{tag}",
             "ids": str(scratch / "ids"), "vineyard_csi_dir": str(scratch / "vineyard" / "csi"),
             "warm_memory": args.host_memory == "warm"}
    largest = max(parse_size(s) for s in args.sizes.split(","))
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = host.load_average()
    try:
        for key in ("cellar", "cellar_huge", "tmpfs", "disk", "ids"):
            Path(where[key]).mkdir(parents=True)
        # First, before the servers and the steps touch memory.
        costs = page_cost.measure(1 << 30, {"tmpfs": where["tmpfs"],
                                            "Cellar volume": where["cellar"],
                                            "Cellar volume, huge pages": where["cellar_huge"]})
        # Room for the frame and its four pieces (the split step holds both), or for one
        # array, plus slack.
        room = 2.5 if "frame" in args.workloads else 1.1
        with servers.Vineyardd(scratch / "vineyard", int(room * largest) + (512 << 20)) as vy, \
                servers.MinIO(args.minio, Path(f"/dev/shm/{tag}-minio") / "data") as minio:
            Path(where["vineyard_csi_dir"]).mkdir(parents=True)
            where["vineyard_socket"] = str(vy.socket)
            where["minio"] = minio.endpoint
            fs = methods.S3Pickle(minio.endpoint).fs
            fs.mkdir(methods.BUCKET)
            rows = measure(args, where, vy, fs)
    finally:
        for path in (where["tmpfs"], where["disk"], str(scratch), f"/dev/shm/{tag}-minio"):
            shutil.rmtree(path, ignore_errors=True)
    run = {"date": started.strftime("%Y-%m-%d %H:%M UTC"),
            "finished": datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M UTC"),
            "load_before": load_before, "load_after": host.load_average(),
            "machine": host.machine(), "page_reporting": host.page_reporting(),
            "host_memory": args.host_memory, "page_cost_1gib": costs,
            "rounds": args.rounds, "sizes": args.sizes,
           "options": " ".join(a for a in sys.argv[1:] if a not in ("--minio", str(args.minio))),
           "versions": versions(), "rows": rows}
    earlier = json.loads(results.read_text())["runs"] if args.append and results.exists() else []
    results.write_text(json.dumps({"runs": earlier + [run]}, indent=1) + "\n")
    # The report needs matplotlib, which this venv lacks: run.sh makes it with Debian's
    # python3 (--report-only) once this run is over.
    return 0


def versions() -> dict:
    from importlib.metadata import version
    return {p: version(p) for p in ("numpy", "pandas", "pyarrow", "vineyard", "s3fs")}


if __name__ == "__main__":
    sys.exit(main())
