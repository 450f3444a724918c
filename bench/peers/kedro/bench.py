"""examples/kedro's pipeline three ways, in one run: its catalog on a Cellar volume, on
MinIO through s3fs (both with the current Kedro), and in vineyard-kedro's
VineyardDataSet (Kedro 0.18, its own venv). Started by run.sh; see bench/README.md,
"Kedro end to end".

    bench.py --minio BIN --kedro-python P --vineyard-python P [--multipliers 100,2000]
             [--base-rows 10000] [--rounds 3] [--systems cellar,cellar-dump,minio,vineyard]

The data scales as in Vineyard's own Kedro benchmark: a base data set times a
multiplier. Here the base is --base-rows rows of examples/steps' synthetic frame (5
float64 columns, 40 bytes a row: 10,000 rows = 0.4 MB). Every run is a fresh process
(kedro_run.py: KedroSession.create + run, node times from Kedro hooks); each system's
data is deleted before the next one runs, so no system holds memory another needs.
Rounds are interleaved (round 1 of every multiplier and system, then round 2, ...) and
the system order rotates per round. Results: results.json, RESULTS.md (medians).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(HERE.parent))
import host  # noqa: E402  (bench/peers/)
import servers  # noqa: E402

BUCKET = "kedro-bench"
SYSTEMS = ("cellar", "cellar-dump", "minio", "vineyard")
NODES = ("prepare_data", "train", "test")


def kedro_run(python: str, project: Path, conf: Path, env: str, params: dict,
              extra_env: dict, log: Path) -> dict:
    """One pipeline run in its own process; its node times and its peak RSS."""
    environ = dict(os.environ, KEDRO_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1",
                   PYTHONPATH=str(ROOT / "examples" / "steps"))
    environ.update(extra_env)
    command = [python, str(HERE / "kedro_run.py"), str(project), str(conf), env,
               *(f"{k}={v}" for k, v in params.items())]
    with log.open("w") as err:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, env=environ,
                                cwd=project, text=True)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{env} {params}: exit {proc.returncode}: "
                           f"{log.read_text()[-3000:]}{out[-2000:]}")
    result = json.loads(lines[-1])
    result["max_rss_mib"] = usage.ru_maxrss >> 10
    result["node_sum"] = sum(n["total"] for n in result["nodes"].values())
    return result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minio", type=Path, help="the minio server binary (run.sh builds it)")
    ap.add_argument("--kedro-python", required=True, help="venv of requirements.txt")
    ap.add_argument("--vineyard-python", required=True,
                    help="venv of requirements-vineyard.txt")
    ap.add_argument("--multipliers", default="100,500,1000,2000")
    ap.add_argument("--base-rows", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    args = ap.parse_args()
    volume = os.environ.get("CELLAR_VOLUME_DIR")
    if not volume:
        sys.exit("bench.py: CELLAR_VOLUME_DIR is not set; start it through run.sh")
    multipliers = [int(m) for m in args.multipliers.split(",")]
    systems = args.systems.split(",")
    tag = f"cellar-kedro-{os.getpid()}"
    scratch = Path("/tmp") / tag
    data_dir = Path(volume) / "kedro"
    # The vineyard project: its pyproject and conf, and examples/kedro's package.
    vineyard_project = scratch / "vineyard-project"
    shutil.copytree(HERE / "vineyard", vineyard_project)
    shutil.copytree(ROOT / "examples" / "kedro" / "src", vineyard_project / "src")
    logs = scratch / "logs"
    logs.mkdir()
    largest_bytes = max(multipliers) * args.base_rows * 40
    rows, load_before = [], host.load_average()
    started = datetime.datetime.now(datetime.timezone.utc)
    try:
        # vineyardd holds the train and test frames (the largest frame, once) and slack.
        with contextlib.ExitStack() as stack:
            how = {"cellar": (args.kedro_python, ROOT / "examples" / "kedro", HERE / "conf",
                              "cellar", {"data_dir": str(data_dir)}, {}),
                   # The same, with `backend: cellar` (python/cellar.py on the path).
                   "cellar-dump": (args.kedro_python, ROOT / "examples" / "kedro", HERE / "conf",
                                   "cellar-dump", {"data_dir": str(data_dir)},
                                   {"PYTHONPATH": f"{ROOT / 'examples' / 'steps'}:{ROOT / 'python'}"})}
            clears = [lambda: shutil.rmtree(data_dir, ignore_errors=True)]
            if "vineyard" in systems:
                # vineyardd holds the train and test frames (the largest frame, once).
                vy = stack.enter_context(servers.Vineyardd(
                    scratch / "vineyard", int(1.5 * largest_bytes) + (512 << 20),
                    python=args.vineyard_python))
                how["vineyard"] = (args.vineyard_python, vineyard_project,
                                   vineyard_project / "conf", "local", {},
                                   {"VINEYARD_IPC_SOCKET": str(vy.socket)})
                clears.append(vy.clear)
            if "minio" in systems:
                minio = stack.enter_context(
                    servers.MinIO(args.minio, Path(f"/dev/shm/{tag}-minio") / "data"))
                import s3fs
                fs = s3fs.S3FileSystem(key=servers.MINIO_USER, secret=servers.MINIO_PASSWORD,
                                       client_kwargs={"endpoint_url": minio.endpoint})
                fs.mkdir(BUCKET)
                how["minio"] = (args.kedro_python, ROOT / "examples" / "kedro", HERE / "conf",
                                "minio", {"endpoint": minio.endpoint}, {})
                clears.append(lambda: [fs.rm_file(path) for path in fs.find(BUCKET)])
            for round_index in range(args.rounds):
                order = systems[round_index % len(systems):] + systems[:round_index % len(systems)]
                for multiplier in multipliers:
                    for name in order:
                        python, project, conf, env, params, extra = how[name]
                        params = dict(params, rows=multiplier * args.base_rows, seed=42)
                        log = logs / f"{round_index}-{multiplier}-{name}.log"
                        result = kedro_run(python, project, conf, env, params, extra, log)
                        rows.append(dict(result, system=name, multiplier=multiplier,
                                         round=round_index))
                        print(f"round {round_index} {multiplier}x {name}: node sum "
                              f"{result['node_sum']:.2f} s, "
                              + ", ".join(f"{n} {t['total']:.2f}"
                                          for n, t in result["nodes"].items())
                              + f"; max RSS {result['max_rss_mib']} MiB", flush=True)
                        for clear in clears:  # empty again: files, objects, names gone
                            clear()
                        write(args, started, load_before, rows)  # a cut-off run reports
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        for path in (str(scratch), f"/dev/shm/{tag}-minio"):
            shutil.rmtree(path, ignore_errors=True)
    print(write(args, started, load_before, rows))
    return 0


def write(args, started, load_before, rows) -> str:
    """results.json and RESULTS.md of the rounds so far; returns the report."""
    run = {"date": started.strftime("%Y-%m-%d %H:%M UTC"),
           "finished": datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M UTC"),
           "load_before": load_before, "load_after": host.load_average(),
           "machine": host.machine(),
           "rounds": 1 + max(r["round"] for r in rows), "base_rows": args.base_rows,
           "multipliers": [int(m) for m in args.multipliers.split(",")], "rows": rows}
    (HERE / "results.json").write_text(json.dumps(run, indent=1) + "\n")
    (HERE / "RESULTS.md").write_text(report(run))
    return report(run)


def report(run: dict) -> str:
    """Medians per system and multiplier: the sum of node times, its parts, the ratio."""
    lines = [f"# Kedro end to end: {run['date']} to {run['finished']}", "",
             f"{run['machine']}; load average {run['load_before']} before, "
             f"{run['load_after']} after; {run['rounds']} rounds, interleaved, medians; "
             f"1x = {run['base_rows']:,} rows ({run['base_rows'] * 40 / 1e6:.1f} MB frame).",
             "",
             "| system | multiplier | frame MB | sum of node times s | load s | call s | "
             "save s | vs Cellar | max RSS MiB | "
             + " | ".join(NODES) + " |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(NODES)]
    med = statistics.median
    for multiplier in run["multipliers"]:
        picked = {s: [r for r in run["rows"] if r["system"] == s and r["multiplier"] == multiplier]
                  for s in SYSTEMS}
        base = med([r["node_sum"] for r in picked["cellar"]]) if picked["cellar"] else None
        for system, rs in picked.items():
            if not rs:
                continue
            total = med([r["node_sum"] for r in rs])
            part = {k: med([sum(n[k] for n in r["nodes"].values()) for r in rs])
                    for k in ("load", "call", "save")}
            ratio = f"{total / base:.2f}x" if base else "-"
            lines.append(
                f"| {system} | {multiplier}x | {multiplier * run['base_rows'] * 40 / 1e6:.0f} | "
                f"{total:.2f} | {part['load']:.2f} | {part['call']:.2f} | {part['save']:.2f} | "
                f"{ratio} | {max(r['max_rss_mib'] for r in rs)} | "
                + " | ".join(f"{med([r['nodes'][n]['total'] for r in rs]):.2f}" for n in NODES)
                + " |")
    versions = sorted({(r["system"], r["kedro"]) for r in run["rows"]})
    lines += ["", "Kedro: " + ", ".join(f"{s} {v}" for s, v in versions) + ".", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
