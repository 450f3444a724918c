"""Cellar on the real cluster of tests/cluster, measured against what Kubernetes gives
without it, in one run (issue 12, point 6):

1. Pod start-up: the time from `kubectl apply` of a claim and its pod to the pod
   Running, one pod at a time, p50 and p99 over --pods pods; against a pod with an
   emptyDir (medium: Memory), which needs no provisioning.
2. The pipeline's I/O phase (tests/e2e/pipeline_steps.py: prepare -> train -> test,
   one pod, the steps as init containers) with its data on a Cellar claim, on an
   emptyDir (medium: Memory) and on a hostPath on the local disk; write and read
   seconds summed over the steps, median of --runs.

  bash tests/cluster/run.sh --keep          # a cluster with Cellar installed
  /usr/bin/python3 -m bench.cluster.run [--pods 50] [--size 1Gi] [--runs 3]   (repo root)
  bash tests/cluster/cluster.sh down

Prints a Markdown table; --json F writes the raw numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

from tests.cluster import kube
from tests.cluster import workloads as w
from tests.lib.sizes import parse_size

NS = "cellar-bench"
SC = "cellar-system.cellar.csi"
HOSTPATH = "/var/tmp/cellar-bench-hostpath"
SYSTEMS = ["cellar", "emptyDir", "hostPath (disk)"]
SHORT = {"cellar": "cellar", "emptyDir": "empty", "hostPath (disk)": "hostpath"}


def trivial_pod(name: str, volume: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "c", "image": w.STEP_IMAGE,
                                     "command": ["sleep", "3600"],
                                     "volumeMounts": [{"name": "v", "mountPath": "/vineyard"}]}],
                     "volumes": [{"name": "v", **volume}]}}


def time_to_running(objects: list[dict], pod: str) -> float:
    started = time.monotonic()
    kube.apply(w.dump(*objects))
    while kube.get("pod", pod, NS)["status"].get("phase") != "Running":
        if time.monotonic() - started > 300:
            raise TimeoutError(f"{pod} not Running after 300 s")
        time.sleep(0.05)
    return time.monotonic() - started


def startup(pods: int) -> dict:
    out = {"cellar": [], "emptyDir": []}
    for i in range(pods):
        # Interleaved, so both see the same machine.
        name = f"s-cellar-{i}"
        out["cellar"].append(time_to_running(
            [w.claim(name, NS, SC, "64Mi"),
             trivial_pod(name, {"persistentVolumeClaim": {"claimName": name}})], name))
        kube.delete("pod", name, NS, wait=False)
        kube.delete("pvc", name, NS, wait=False)
        name = f"s-empty-{i}"
        out["emptyDir"].append(time_to_running(
            [trivial_pod(name, {"emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}})], name))
        kube.delete("pod", name, NS, wait=False)
    kube.kubectl("delete", "pods,pvc", "-n", NS, "--all", "--wait=true", "--timeout=300s",
                 timeout=320)
    return out


def pipeline_pod(name: str, volume: dict, size: str) -> dict:
    def step(s: str) -> dict:
        return {"name": s, "image": w.STEP_IMAGE,
                "command": ["python3", "/steps/pipeline_steps.py", s, "--data-dir", "/vineyard",
                            "--size", size],
                "volumeMounts": [{"name": "vineyard", "mountPath": "/vineyard"},
                                 {"name": "steps", "mountPath": "/steps"}]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                     "initContainers": [step("prepare"), step("train")],
                     "containers": [step("test")],
                     "volumes": [{"name": "vineyard", **volume},
                                 {"name": "steps", "configMap": {"name": w.STEPS_CONFIGMAP}}]}}


def pipeline_once(system: str, size: str, bytes_needed: int, run: int) -> dict:
    name = f"p-{SHORT[system]}-{run}"
    objects = []
    if system == "cellar":
        objects.append(w.claim(name, NS, SC, f"{bytes_needed >> 20}Mi"))
        volume = {"persistentVolumeClaim": {"claimName": name}}
    elif system == "emptyDir":
        volume = {"emptyDir": {"medium": "Memory", "sizeLimit": f"{bytes_needed >> 20}Mi"}}
    else:
        path = f"{HOSTPATH}/{name}"
        os.makedirs(path, exist_ok=True)
        volume = {"hostPath": {"path": path, "type": "Directory"}}
    kube.apply(w.dump(*objects, pipeline_pod(name, volume, size)))
    kube.wait_until(f"{name} done", lambda: kube.get("pod", name, NS)["status"].get("phase")
                    in ("Succeeded", "Failed"), 1200, 1)
    phase = kube.get("pod", name, NS)["status"]["phase"]
    assert phase == "Succeeded", f"{name}: {phase}"
    reports = [json.loads(kube.pod_logs(name, NS, s).strip().splitlines()[-1])
               for s in ("prepare", "train", "test")]
    kube.delete("pod", name, NS)
    if system == "cellar":
        kube.delete("pvc", name, NS)
    else:
        shutil.rmtree(f"{HOSTPATH}/{name}", ignore_errors=True)
    assert all(r["ok"] for r in reports), [r["mismatches"] for r in reports]
    return {"write_s": sum(r["write_s"] for r in reports),
            "read_s": sum(r["read_s"] for r in reports)}


def quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pods", type=int, default=50, help="0 skips the start-up measurement")
    p.add_argument("--size", default="1Gi")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--json", default="")
    args = p.parse_args()
    kube.apply(w.dump(w.namespace(NS), w.steps_configmap(NS)))
    size_bytes = parse_size(args.size)  # the steps get bytes: they read sizes their own way
    needed = int(size_bytes * 1.6) + (64 << 20)  # the steps' outputs beside the input

    results: dict = {"startup": startup(args.pods), "pipeline": {}}
    for run in range(args.runs):
        for system in SYSTEMS:  # interleaved rounds
            results["pipeline"].setdefault(system, []).append(
                pipeline_once(system, str(size_bytes), needed, run))

    if args.pods:
        print(f"\n### Pod start-up, apply to Running, {args.pods} pods each\n")
        print("| volume | p50 s | p99 s |\n|---|---|---|")
        for k, xs in results["startup"].items():
            print(f"| {k} | {quantile(xs, 0.5):.2f} | {quantile(xs, 0.99):.2f} |")
    print(f"\n### Pipeline I/O at {args.size}, median of {args.runs}\n")
    print("| data on | write s | read s | write+read vs emptyDir |\n|---|---|---|---|")
    base = None
    rows = []
    for system in SYSTEMS:
        wr = statistics.median(r["write_s"] for r in results["pipeline"][system])
        rd = statistics.median(r["read_s"] for r in results["pipeline"][system])
        rows.append((system, wr, rd))
        if system == "emptyDir":
            base = wr + rd
    for system, wr, rd in rows:
        print(f"| {system} | {wr:.2f} | {rd:.2f} | {base / (wr + rd):.2f}x |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    kube.kubectl("delete", "namespace", NS, "--wait=true", "--timeout=300s", timeout=320)
    return 0


if __name__ == "__main__":
    sys.exit(main())
