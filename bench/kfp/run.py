"""The KFP v1 pipeline end to end on the real cluster (issue 18, point 6): its data on
Cellar against its data as KFP artifacts in MinIO, the KFP default, in one run.

Both variants (pipelines.py) run the same steps (examples/steps/steps.py: prepare draws
`rows` samples and pickles a train and a test frame, train fits, test evaluates) as
pods of an Argo workflow compiled by the kfp 1.8 SDK. For MinIO, Argo's executor packs
each output (tar+gzip, KFP's default), uploads it to MinIO (built from its Go module,
a Deployment on the node's disk as KFP installs it) and downloads it into the next pod.
Rounds alternate the two; medians are printed with the ratio.

  bash tests/cluster/run.sh --keep                   # the cluster, with Cellar and Argo
  /usr/bin/python3 -m bench.kfp.run [--sizes 1,4] [--runs 2] [--json F]
  bash tests/cluster/cluster.sh down

Cellar runs on its own rendering (cellar-bench/cellar, --capacity 14Gi), so the 4 GiB
case fits; the default deployment keeps its 4 GiB.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tests.cluster import kube
from tests.cluster.kube import kubectl
from tests.cluster.pipelines import argo, sdk
from tests.lib import REPO as ROOT

NS = "cellar-bench-kfp"
MINIO_NS = "kubeflow"
BENCH_DEPLOYMENT = ("cellar-bench", "cellar")
STORAGE_CLASS = "cellar-bench.cellar.csi"
ROW_BYTES = 40          # five float64 columns per sample, in the pickles
SECRET = {"accesskey": "minio", "secretkey": "minio123"}   # KFP's defaults


def minio_objects() -> list[dict]:
    labels = {"app": "minio"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": MINIO_NS}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mlpipeline-minio-artifact",
                                                             "namespace": NS},
         "stringData": SECRET},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "minio", "namespace": MINIO_NS},
         "spec": {"selector": {"matchLabels": labels}, "strategy": {"type": "Recreate"},
                  "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                      "name": "minio", "image": "docker.io/library/minio:bench",
                      "args": ["server", "/data"],
                      "env": [{"name": "MINIO_ROOT_USER", "value": SECRET["accesskey"]},
                              {"name": "MINIO_ROOT_PASSWORD", "value": SECRET["secretkey"]}],
                      "ports": [{"containerPort": 9000}],
                      "readinessProbe": {"httpGet": {"path": "/minio/health/ready", "port": 9000}},
                      "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                      # The node's disk, as a PersistentVolume on a disk would be.
                      "volumes": [{"name": "data", "emptyDir": {}}]}}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "minio-service", "namespace": MINIO_NS},
         "spec": {"selector": labels, "ports": [{"port": 9000, "targetPort": 9000}]}},
    ]


def artifact_repository() -> str:
    """Argo's default artifact repository, as KFP's installation configures it (JSON is
    YAML, which the controller reads). The test cluster runs no cluster DNS, so the
    endpoint is the Service's address rather than minio-service.kubeflow."""
    ip = kube.get("service", "minio-service", MINIO_NS)["spec"]["clusterIP"]
    return json.dumps({"archiveLogs": False, "s3": {
        "endpoint": f"{ip}:9000", "bucket": "mlpipeline", "insecure": True,
        "keyFormat": "artifacts/{{workflow.name}}/{{pod.name}}",
        "createBucketIfNotPresent": {},
        "accessKeySecret": {"name": "mlpipeline-minio-artifact", "key": "accesskey"},
        "secretKeySecret": {"name": "mlpipeline-minio-artifact", "key": "secretkey"}}})


def set_up() -> None:
    subprocess.run(["bash", str(ROOT / "tests/cluster/images/build.sh"), "--only", "minio",
                    "--import", "/run/cellar-cluster/containerd.sock"], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["bash", str(ROOT / "deploy/render.sh"), "--capacity", "14Gi",
                        "--output-dir", tmp, "--no-print", *BENCH_DEPLOYMENT], check=True)
        kubectl("apply", "-k", tmp)
    kubectl("rollout", "status", "daemonset/cellar-node", "-n", BENCH_DEPLOYMENT[0],
            "--timeout=300s", timeout=320)
    kube.apply("\n".join(json.dumps(o) for o in argo.step_rbac(NS, ["pipeline-runner"])))
    kube.apply("\n".join(json.dumps(o) for o in minio_objects()))
    kubectl("rollout", "status", "deployment/minio", "-n", MINIO_NS, "--timeout=300s",
            timeout=320)
    kubectl("patch", "configmap", "workflow-controller-configmap", "-n", argo.NAMESPACE,
            "--type=merge", "-p", json.dumps({"data": {"artifactRepository": artifact_repository()}}))
    time.sleep(5)   # the controller reloads its configuration on change


def compiled() -> dict[str, dict]:
    python = sdk.venv("kfp1")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(python), str(Path(__file__).with_name("pipelines.py")), tmp],
                       check=True, capture_output=True)
        return {k: yaml.safe_load((Path(tmp) / f"{k}.yaml").read_text())
                for k in ("cellar", "minio")}


def run_once(workflow: dict, system: str, gib: int) -> dict:
    wf = json.loads(json.dumps(workflow))
    rows = int((gib << 30) / ROW_BYTES)
    params = {"rows": str(rows)}
    if system == "cellar":
        wf = json.loads(json.dumps(wf).replace("cellar-system.cellar.csi", STORAGE_CLASS))
        params["size"] = f"{int(gib * 1.25 * 1024) + 256}Mi"   # frames, model, metrics
    wf["spec"]["arguments"]["parameters"] = [{"name": k, "value": v} for k, v in params.items()]
    name = argo.submit(json.dumps(wf), NS)
    run = argo.Run(name, NS)
    phase = run.wait(timeout=3600)
    status = kube.get("workflow", name, NS)["status"]
    steps = {}
    for n in status["nodes"].values():
        if n.get("type") == "Pod" and n["displayName"] in ("prepare-data", "train", "test"):
            steps[n["displayName"]] = argo.seconds_between(n["startedAt"], n["finishedAt"])
    result = {"system": system, "gib": gib, "phase": phase, "total_s": run.seconds(),
              "steps_s": steps}
    if phase != "Succeeded":
        result["detail"] = run.describe()
    kube.delete("workflow", name, NS, timeout="300s")
    return result


def table(results: list[dict], sizes: list[int]) -> str:
    lines = ["| data | Cellar (s) | MinIO artifacts (s) | MinIO / Cellar | steps on Cellar: prepare, train, test (s) | on MinIO (s) |",
             "|---|---|---|---|---|---|"]
    for gib in sizes:
        med = {}
        steps = {}
        for system in ("cellar", "minio"):
            ok = [r for r in results if r["system"] == system and r["gib"] == gib
                  and r["phase"] == "Succeeded"]
            med[system] = statistics.median(r["total_s"] for r in ok) if ok else float("nan")
            steps[system] = ", ".join(
                f"{statistics.median(r['steps_s'][s] for r in ok):.0f}" if ok else "-"
                for s in ("prepare-data", "train", "test"))
        lines.append(f"| {gib} GiB | {med['cellar']:.0f} | {med['minio']:.0f} | "
                     f"{med['minio'] / med['cellar']:.2f}x | {steps['cellar']} | {steps['minio']} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1,4", help="GiB of data, comma-separated")
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--json", default="")
    p.add_argument("--skip-setup", action="store_true")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if not args.skip_setup:
        set_up()
    workflows = compiled()
    results = []
    for gib in sizes:
        for i in range(args.runs):
            for system in (("cellar", "minio") if i % 2 == 0 else ("minio", "cellar")):
                r = run_once(workflows[system], system, gib)
                print(json.dumps(r), flush=True)
                results.append(r)
    print(table(results, sizes))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0 if all(r["phase"] == "Succeeded" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
