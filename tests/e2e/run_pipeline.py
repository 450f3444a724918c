"""Runs the three-step pipeline (prepare -> train -> test) as pods, the way
Kubernetes would, on a Cellar volume or on a baseline directory, and prints a
table of write / read / I/O seconds per step.

  python3 -m tests.e2e.run_pipeline --size 256Mi --mode passthrough,tmpfs,disk
  python3 -m tests.e2e.run_pipeline --size 64Mi --mode fallback --runs 3 --json out.json
  python3 -m tests.e2e.run_pipeline --cleanup --root /var/tmp/cellar-demo

(from the repo root; sizes as tests/lib/sizes.py reads them: 256Mi, 1Gi).

Modes:
  passthrough  a real `cellar node` (FUSE passthrough), the volume provisioned and
               published through CSI by the harness's external-provisioner and kubelet
  fallback     the same with --no-passthrough (the daemon serves reads and writes)
  tmpfs        a plain tmpfs of the same size bind-mounted into the pods (the limit)
  disk         a directory on the local disk (under --root), every file fsynced (what a
               hostPath, NFS or object-store-backed volume gives at best)
  disk-nofsync the same without fsync (page cache only, not durable)

Everything lives under --root (default /var/tmp/cellar-e2e): the node's state dir,
socket and log, the kubelet's pods dir, the baselines. A run starts by cleaning what
an interrupted run left there (daemon by pid file, mounts, files) and ends, also on
Ctrl-C, with the volume deleted, the daemon stopped and nothing mounted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from tests.e2e.pod import PYTHON, run_pod
from tests.lib import REPO, host, roles
from tests.lib.kubelet import StatsPoller
from tests.lib.node import (  # noqa: F401 - rp.cleanup_root for the suites
    CellarNode, cleanup_root, install_signal_handlers)
from tests.lib.objects import PersistentVolume, Pod, StorageClass
from tests.lib.sizes import parse_size

CELLAR_MODES = ("passthrough", "fallback")
DIR_MODES = ("tmpfs", "disk", "disk-nofsync")
MODES = CELLAR_MODES + DIR_MODES
STEPS = ("prepare", "train", "test")
LABELS = {"passthrough": "cellar (passthrough)", "fallback": "cellar (fallback)",
          "tmpfs": "tmpfs", "disk": "disk (fsync)", "disk-nofsync": "disk (no fsync)"}
MIB = 1 << 20


def volume_request(size: int) -> int:
    """What the pipeline's claim asks for: its data plus the pickles' and the small
    outputs' overhead, in whole MiB."""
    return ((size * 115 // 100 + 32 * MIB) + MIB - 1) // MIB * MIB


def step_argv(step: str, size: int, fsync: bool, extra=()) -> list[str]:
    argv = [PYTHON, "/app/pipeline_steps.py", step, "--data-dir", "/vineyard",
            "--size", str(size)]
    if fsync:
        argv.append("--fsync")
    return argv + list(extra)


def check_pod(result, what: str) -> dict:
    if result.returncode != 0:
        raise RuntimeError(f"{what}: pod exited with {result.returncode}\n"
                           f"stdout: {result.stdout[-3000:]}\nstderr: {result.stderr[-3000:]}")
    return result.json()


# ---------------------------------------------------------------------------
# A one-node "cluster": the cellar node, a provisioner, a kubelet.

class Cluster:
    def __init__(self, home: Path, passthrough: bool, capacity: int,
                 binary: Path = REPO / "build" / "cellar", node_name: str = "e2e-node",
                 io_mode: str | None = None):
        self.home = home
        self.node = CellarNode(home=home / "node", binary=binary, node_id=node_name,
                               capacity=str(capacity), passthrough=passthrough,
                               extra_args=(f"--io-mode={io_mode}",) if io_mode else ())
        self.node_name = node_name
        self.calls: list = []
        self.pvs: list = []
        self.provisioner = None
        self.kubelet = None

    def __enter__(self):
        self.home.mkdir(parents=True, exist_ok=True)
        self.kubelet, self.provisioner = roles.attach(self.node.start(), self.home / "kubelet",
                                                      self.node_name, self.calls)
        return self

    def provision(self, claim: str, request: int, namespace: str = "pipelines",
                  sc: StorageClass | None = None) -> PersistentVolume:
        """WaitForFirstConsumer: the scheduler checks the node's capacity (from
        GetCapacity, published as CSIStorageCapacity), selects the node for the first
        pod, and the provisioner on that node creates the volume pinned to it."""
        sc = sc or StorageClass()
        available = self.provisioner.capacity(sc)
        if available < request:
            raise RuntimeError(f"node {self.node_name} has {available} bytes free, the claim "
                               f"wants {request}: the scheduler would not pick it")
        pv = self.provisioner.provision(sc, claim, namespace, request, self.kubelet.topology)
        self.pvs.append(pv)
        return pv

    def run_pod(self, pv, name: str, argv: list[str], readonly: bool = False,
                poll: float = 0.5, timeout: float = 1800.0):
        """Schedules a pod using the claim: mount (publish), run, tear down."""
        pod = Pod(name=name, namespace="pipelines")
        mounted = self.kubelet.mount(pod, pv, readonly=readonly)
        try:
            with StatsPoller(self.kubelet, mounted, poll) as poller:
                result = run_pod(name, argv, {"/vineyard": (str(mounted.target), False)},
                                 timeout=timeout, workdir=str(self.home))
        finally:
            self.kubelet.unmount(mounted)
            self.kubelet.remove_pod_dir(pod)
        return result, poller

    def delete(self, pv) -> None:
        self.provisioner.delete(pv)
        self.pvs.remove(pv)

    def __exit__(self, *exc):
        try:
            for pv in list(self.pvs):
                try:
                    self.delete(pv)
                except Exception as e:  # noqa: BLE001 - keep tearing down
                    print(f"warning: DeleteVolume {pv.volume_handle}: {e}", file=sys.stderr)
        finally:
            self.node.stop()


# ---------------------------------------------------------------------------
# One pipeline run in one mode.

class Volume:
    """The pipeline's volume in one mode; `run(step, argv)` runs a pod that mounts it
    at /vineyard. Cellar: a one-node cluster, the claim provisioned through CSI and
    published per pod. Baselines: a directory (tmpfs mount or disk) bound into pods."""

    def __init__(self, mode: str, home: Path, request: int, capacity: int | None = None,
                 binary: Path | None = None):
        self.mode, self.home, self.request = mode, home, request
        self.capacity = capacity or request + 64 * MIB
        self.binary = binary or REPO / "build" / "cellar"
        self.info: dict = {}
        self.cluster = None
        self.pv = None

    def __enter__(self):
        cleanup_root(self.home)
        self.home.mkdir(parents=True)
        try:
            if self.mode in CELLAR_MODES:
                self.info["shmem_before"] = host.shmem_bytes()
                self.cluster = Cluster(self.home, self.mode == "passthrough", self.capacity,
                                       binary=self.binary).__enter__()
                self.info["capacity_initial"] = self.cluster.provisioner.capacity(
                    StorageClass())
                self.pv = self.cluster.provision("pipeline-data", self.request)
                self.info["pv"] = {"name": self.pv.name, "handle": self.pv.volume_handle,
                                   "topology": self.pv.topology,
                                   "capacity": self.pv.capacity_bytes}
                self.info["node_topology"] = self.cluster.kubelet.topology
            else:
                self.dir = self.home / "vol"
                self.dir.mkdir()
                if self.mode == "tmpfs":
                    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.request}",
                                    "e2e-tmpfs", str(self.dir)], check=True)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def run(self, name: str, argv: list[str], readonly: bool = False) -> tuple[dict, object]:
        if self.cluster is not None:
            res, poller = self.cluster.run_pod(self.pv, name, argv, readonly=readonly)
        else:
            res, poller = run_pod(name, argv, {"/vineyard": (str(self.dir), readonly)},
                                  workdir=str(self.home)), None
        report = check_pod(res, f"{self.mode} {name}")
        report["pod_s"] = res.seconds
        if poller is not None:
            report["stats_max_used"] = poller.max_used()
            report["stats_samples"] = len(poller.samples)
            report["stats_errors"] = poller.errors
        return report, poller

    def __exit__(self, *exc):
        try:
            if self.cluster is not None:
                if self.pv is not None:
                    self.cluster.delete(self.pv)
                    self.pv = None
                    self.info["capacity_final"] = self.cluster.provisioner.capacity(
                        StorageClass())
                self.info["calls"] = [list(x[:3]) for x in self.cluster.calls]
                self.cluster.__exit__(*exc)
                self.cluster = None
                self.info["shmem_delta"] = host.shmem_bytes() - self.info["shmem_before"]
        finally:
            cleanup_root(self.home)


def run_once(mode: str, size: int, root: Path, verify_pod: bool = False,
             capacity: int | None = None, binary: Path | None = None) -> dict:
    request = volume_request(size)
    out = {"mode": mode, "size": size, "request": request, "steps": {}}
    fsync = mode == "disk"
    vol = Volume(mode, root / mode, request, capacity, binary)
    with vol:
        for step in STEPS:
            out["steps"][step], _ = vol.run(f"pipeline-{step}", step_argv(step, size, fsync))
        if verify_pod and mode in CELLAR_MODES:
            out["verify"], _ = vol.run("pipeline-verify", step_argv(
                "verify", size, False, ["--expect-readonly"]), readonly=True)
    out.update(vol.info)
    steps = out["steps"].values()
    out["write_s"] = sum(s["write_s"] for s in steps)
    out["read_s"] = sum(s["read_s"] for s in steps)
    out["io_s"] = out["write_s"] + out["read_s"]
    out["mmap_load_s"] = out["steps"].get("train", {}).get("mmap_load_s")
    out["ok"] = all(s["ok"] for s in steps)
    return out


def median_run(runs: list[dict]) -> dict:
    """The run with the median total I/O time (its per-step figures, so that write +
    read = I/O holds in every table), and the median np.load(mmap_mode='r') time."""
    ordered = sorted(runs, key=lambda r: r["io_s"])
    mid = ordered[(len(ordered) - 1) // 2]
    med = {"mode": mid["mode"], "size": mid["size"], "runs": len(runs), "steps": {}}
    for step in STEPS:
        med["steps"][step] = {k: mid["steps"][step][k] for k in ("write_s", "read_s", "io_s")}
    for k in ("write_s", "read_s", "io_s"):
        med[k] = mid[k]
    vals = [r["mmap_load_s"] for r in runs if r.get("mmap_load_s") is not None]
    med["mmap_load_s"] = statistics.median(vals) if vals else None
    med["io_s_all"] = [r["io_s"] for r in runs]
    med["ok"] = all(r["ok"] for r in runs)
    return med


def format_table(meds: list[dict]) -> str:
    size = meds[0]["size"]
    base = next((m for m in meds if m["mode"] == "disk"), None)
    w = max(len(LABELS[m["mode"]]) for m in meds) + 2
    runs = meds[0]["runs"]
    lines = [f"Pipeline prepare -> train -> test, {size / MIB:.0f} MiB of intermediate data"
             + (f" (median of {runs} runs)" if runs > 1 else ""), "",
             "step     " + "storage".ljust(w) + "write s".rjust(9) + "read s".rjust(9)
             + "total s".rjust(9) + "vs disk".rjust(10)]
    rule = "-" * len(lines[-1])
    lines.append(rule)
    for step in STEPS + ("total",):
        for i, m in enumerate(meds):
            s = m if step == "total" else m["steps"][step]
            b = base if step == "total" else (base["steps"][step] if base else None)
            ratio = f"{b['io_s'] / s['io_s']:.1f}x" if b and s["io_s"] > 0 else "-"
            lines.append((step if i == 0 else "").ljust(9) + LABELS[m["mode"]].ljust(w)
                         + f"{s['write_s']:9.3f}{s['read_s']:9.3f}{s['io_s']:9.3f}"
                         + ratio.rjust(10))
        lines.append(rule)
    mm = [f"{LABELS[m['mode']]} {m['mmap_load_s'] * 1000:.1f} ms" for m in meds
          if m.get("mmap_load_s") is not None]
    lines.append(f"np.load(mmap_mode='r') of the largest array ({size // 2 / MIB:.0f} MiB): "
                 + ", ".join(mm))
    lines.append("write/read = each file from open to close (fsync of every file included for "
                 "disk);")
    lines.append("vs disk = how many times faster than the local disk with fsync (higher is "
                 "better).")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="256Mi")
    p.add_argument("--mode", default="passthrough,tmpfs,disk",
                   help="comma-separated: " + ", ".join(MODES))
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--root", default="/var/tmp/cellar-e2e", type=Path)
    p.add_argument("--cellar", default=REPO / "build" / "cellar", type=Path)
    p.add_argument("--capacity", default="", help="node capacity (default: volume + 64Mi)")
    p.add_argument("--verify-pod", action="store_true",
                   help="Cellar modes: a read-only reader pod checks every file and EROFS")
    p.add_argument("--json", type=Path, help="write every run's report here")
    p.add_argument("--cleanup", action="store_true", help="only clean --root and exit")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("run_pipeline.py: needs root (mounts, namespaces, FUSE)")
    root = args.root.resolve()
    if args.cleanup:
        cleanup_root(root)
        return 0
    install_signal_handlers()
    size = parse_size(args.size)
    modes = [m.strip() for m in args.mode.split(",") if m.strip()]
    for m in modes:
        if m not in MODES:
            sys.exit(f"unknown mode {m!r} (one of {', '.join(MODES)})")
    if any(m in CELLAR_MODES for m in modes) and not args.cellar.exists():
        sys.exit(f"{args.cellar} does not exist: build it first")
    cap = parse_size(args.capacity) if args.capacity else None
    all_runs, meds = [], []
    try:
        for mode in modes:
            runs = []
            for i in range(args.runs):
                print(f"[{mode}] run {i + 1}/{args.runs}: {size / MIB:.0f} MiB ...",
                      file=sys.stderr, flush=True)
                r = run_once(mode, size, root, verify_pod=args.verify_pod, capacity=cap,
                             binary=args.cellar)
                print(f"[{mode}]   I/O {r['io_s']:.3f} s (write {r['write_s']:.3f}, read "
                      f"{r['read_s']:.3f}), checksums {'ok' if r['ok'] else 'MISMATCH'}",
                      file=sys.stderr, flush=True)
                runs.append(r)
            all_runs += runs
            meds.append(median_run(runs))
    except KeyboardInterrupt:
        print("interrupted: cleaning up", file=sys.stderr)
        cleanup_root(root)
        return 130
    finally:
        if args.json:
            args.json.write_text(json.dumps({"runs": all_runs, "medians": meds}, indent=1))
    try:
        root.rmdir()
    except OSError:
        pass
    print(format_table(meds))
    return 0 if all(m["ok"] for m in meds) else 1


if __name__ == "__main__":
    sys.exit(main())
