"""results.json -> RESULTS.md and peers.png: per method the median over rounds of each
step's numbers, summed over the steps of the workload."""

from __future__ import annotations

import statistics
from pathlib import Path

import methods

GIB = 1 << 30
BASELINE = "minio-pickle"     # what a KFP/Kedro step does today: pickle on S3 (MinIO)
LIMIT = "tmpfs-pickle"        # the same pickle on memory with no daemon at all


def step_medians(rows: list[dict]) -> dict:
    """(workload, size, method) -> {step: {field: median}}."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["workload"], r["size"], r["method"], r["step"]), []).append(r)
    out: dict = {}
    for (workload, size, method, step), runs in groups.items():
        fields = {}
        for field in ("write_s", "read_s", "scan_s", "peak_rss_mib", "copies"):
            values = [r[field] for r in runs if r.get(field) is not None]
            fields[field] = statistics.median(values) if values else None
        fields["runs"] = len(runs)
        fields["io_all"] = [r["write_s"] + r["read_s"] for r in runs]
        out.setdefault((workload, size, method), {})[step] = fields
    return out


def totals(steps: dict) -> dict:
    def total(field):
        return sum(s[field] or 0 for s in steps.values())
    readers = [s for s in steps.values() if s.get("peak_rss_mib") is not None]
    return {"write_s": total("write_s"), "read_s": total("read_s"), "scan_s": total("scan_s"),
            "io_s": total("write_s") + total("read_s"),
            "peak_rss_mib": max((s["peak_rss_mib"] for s in readers), default=None),
            "copies": max((s["copies"] for s in readers if s["copies"] is not None),
                          default=None),
            "runs": min(s["runs"] for s in steps.values())}


def faster_or_slower(ratio: float) -> str:
    return f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"


def label(name: str) -> tuple[str, str]:
    if name in methods.METHODS:
        return methods.METHODS[name][0], methods.METHODS[name][1]
    return {"cellar": "Cellar volume", "tmpfs": "tmpfs", "disk": "local disk (fsync)",
            "minio": "MinIO (s3fs)"}[name], "files"


def table(meds: dict, workload: str, size: int) -> list[str]:
    rows = {m: totals(steps) for (w, s, m), steps in meds.items() if w == workload and s == size}
    if not rows:
        return []
    base = rows.get(BASELINE)
    limit = rows.get(LIMIT)
    lines = ["| system | how | write s | read s | write+read s | vs MinIO pickle | vs tmpfs pickle "
             "| first scan s | reader peak RSS MiB | copies | rounds |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name in sorted(rows, key=lambda m: rows[m]["io_s"]):
        t = rows[name]
        system, how = label(name)
        vs_base = faster_or_slower(base["io_s"] / t["io_s"]) if base else "-"
        vs_limit = f"{t['io_s'] / limit['io_s']:.2f}x" if limit else "-"
        rss = f"{t['peak_rss_mib']:.0f}" if t["peak_rss_mib"] is not None else "-"
        copies = f"{t['copies']:.2f}" if t["copies"] is not None else "-"
        lines.append(f"| {system} | {how} | {t['write_s']:.3f} | {t['read_s']:.3f} | "
                     f"{t['io_s']:.3f} | {vs_base} | {vs_limit} | {t['scan_s']:.3f} | {rss} | "
                     f"{copies} | {t['runs']} |")
    return lines


def per_step(meds: dict, size: int) -> list[str]:
    lines = ["| system | how | prepare write | split read / write | train read | test read |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for (w, s, m), steps in sorted(meds.items()):
        if w != "frame" or s != size or len(steps) < 4:
            continue
        system, how = label(m)
        lines.append(f"| {system} | {how} | {steps['prepare']['write_s']:.3f} | "
                     f"{steps['split']['read_s']:.3f} / {steps['split']['write_s']:.3f} | "
                     f"{steps['train']['read_s']:.3f} | {steps['test']['read_s']:.3f} |")
    return lines


def all_rows(data: dict) -> list[dict]:
    return [r for run in data["runs"] for r in run["rows"]]


def markdown(data: dict) -> str:
    meds = step_medians(all_rows(data))
    sizes = sorted({s for (w, s, _) in meds if w != "files"})
    lines = ["# Peers: Cellar beside Vineyard, MinIO, tmpfs and the disk", ""]
    for run in data["runs"]:
        v = run["versions"]
        memory = {"warm": "host memory warmed before each timed step",
                  "as-is": "host memory as the machine gave it"}.get(run.get("host_memory"),
                                                                   "host memory as-is")
        reporting = f", {run['page_reporting']}" if run.get("page_reporting") else ""
        lines += [f"- {run['date']} to {run['finished']}, {run['machine']}{reporting}: "
                  f"`bench/peers/run.sh {run['options']}`, {memory}, load average "
                  f"{run['load_before']} before and {run['load_after']} after (a shared "
                  f"machine). numpy {v['numpy']}, pandas {v['pandas']}, pyarrow "
                  f"{v['pyarrow']}, vineyard {v['vineyard']}, s3fs {v['s3fs']}."]
    lines += ["", "Medians over interleaved rounds (the rounds column says how many).",
              "",
             "write = every write call of the workload; read = every read call until the "
             "object is usable; first scan = one read per page of every column afterwards "
             "(where a mapped read pays for its pages); copies = anonymous memory the reader "
             "added / bytes it read (0 = it uses shared pages; 1 = one private copy).", ""]
    for size in sizes:
        frame = table(meds, "frame", size)
        if frame:
            lines += [f"## DataFrame pipeline, {size / GIB:g} GiB (prepare, split, train, "
                      "test)", ""] + frame + [""] + per_step(meds, size) + [""]
        array = table(meds, "array", size)
        if array:
            lines += [f"## One float64 array, {size / GIB:g} GiB", ""] + array + [""]
    lines += page_costs(data)
    if any(w == "files" for (w, _, _) in meds):
        lines += ["## 10,000 files of 64 KiB", "", "| system | write s | read s |",
                  "| --- | ---: | ---: |"]
        for (w, _, m), steps in sorted(meds.items()):
            if w == "files":
                lines.append(f"| {label(m)[0]} | {steps['write']['write_s']:.3f} | "
                             f"{steps['read']['read_s']:.3f} |")
    return "\n".join(lines) + "\n"


def page_costs(data: dict) -> list[str]:
    """page_cost.py's rows, one column per run that measured them."""
    runs = [run for run in data["runs"] if run.get("page_cost_1gib")]
    if not runs:
        return []
    cases = list(runs[0]["page_cost_1gib"])
    lines = ["## What a fresh page costs (1 GiB, page_cost.py)", "",
             "| case | " + " | ".join(f"s, run of {run['date']}" for run in runs) + " |",
             "| --- |" + " ---: |" * len(runs)]
    for case in cases:
        cells = [f"{run['page_cost_1gib'][case]:.3f}" if case in run["page_cost_1gib"] else "-"
                 for run in runs]
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return lines + [""]


def chart(data: dict, path: Path) -> None:
    """Stacked write/read bars per method, for the pipeline and the array, at the size
    that has the most methods measured (the full run)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    meds = step_medians(all_rows(data))
    sizes = {s for (w, s, _) in meds if w == "frame"}
    size = max(sizes, key=lambda s: (sum(1 for (w, z, _) in meds if z == s), -s))
    fig, axes = plt.subplots(2, 1, figsize=(10, 9))
    panels = ((axes[0], "frame", "DataFrame pipeline (prepare, split, train, test)"),
              (axes[1], "array", "one float64 array (write, read)"))
    for ax, workload, title in panels:
        rows = {m: totals(st) for (w, s, m), st in meds.items() if w == workload and s == size}
        names = sorted(rows, key=lambda m: -rows[m]["io_s"])
        labels = [" / ".join(label(m)) for m in names]
        writes = [rows[m]["write_s"] for m in names]
        reads = [rows[m]["read_s"] for m in names]
        ax.barh(labels, writes, label="write s")
        ax.barh(labels, reads, left=writes, label="read s (until usable)")
        for y, m in enumerate(names):
            ax.text(rows[m]["io_s"], y, f" {rows[m]['io_s']:.2f}", va="center", fontsize=8)
        ax.set_xlabel("seconds (median of rounds)")
        ax.set_title(f"{title}, {size / GIB:g} GiB")
        ax.legend(loc="upper right")  # the short bars are at the top
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def write(data: dict, directory: Path) -> None:
    (directory / "RESULTS.md").write_text(markdown(data))
    chart(data, directory / "peers.png")
