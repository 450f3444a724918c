"""The examples run by their engines on the real cluster (tests/cluster/cluster_test.py
runs these checks after its own): Argo Workflows installed from its manifests, the KFP v1
pipeline compiled by the kfp 1.8 SDK and submitted as it is, the Argo and Kedro
workflows, and the clean-up users expect after success, failure and deletion."""

from __future__ import annotations

import json
import time

import yaml   # Debian's python3-yaml (tests/cluster/packages.txt)

from tests.cluster import kube
from tests.cluster import workloads as w
from tests.cluster.driver import capacity_of
from tests.cluster.kube import kubectl
from tests.cluster.pipelines import argo, sdk

NS = "cellar-pipelines"
# The service account KFP v1 compiles into every workflow; Argo's examples use default.
SERVICE_ACCOUNTS = ["pipeline-runner", "default"]
STEPS = ("prepare", "train", "test")


def step_reports(run: argo.Run, names: dict[str, str]) -> dict[str, dict]:
    """The checksum line (examples/steps/steps.py) of each step: {stage: report}, where
    `names` maps a stage to the step's name in the workflow."""
    reports = {}
    for stage, display in names.items():
        log = run.step_log(display)
        lines = [l for l in log.splitlines() if l.startswith("{") and '"step"' in l]
        assert lines, f"{run.name}: step {display} printed no checksums: {log[-800:]}"
        reports[stage] = json.loads(lines[-1])
    return reports


def assert_chain(reports: dict[str, dict]) -> None:
    """Every step read exactly the bytes the one before wrote, in another pod."""
    wrote = {**reports["prepare"]["wrote"], **reports["train"]["wrote"]}
    for stage in ("train", "test"):
        for name, digest in reports[stage]["read"].items():
            assert digest == wrote[name], f"{stage} read {name} with sha256 {digest[:12]}, " \
                                          f"written as {wrote[name][:12]}"
    assert set(reports["test"]["read"]) == {"test.pkl", "model.npy"}, reports["test"]


def assert_cleaned_up(run: argo.Run, capacity_before: int) -> None:
    """Every claim of the run is gone, with its volume, and the node has its memory back."""
    assert run.claims, f"{run.name}: no pod mounted a claim"
    for claim, pv in run.claims.items():
        kube.wait_until(f"claim {claim} deleted", lambda: not kube.exists("pvc", claim, NS), 120)
        assert pv, f"claim {claim} was never bound"
        kube.wait_until(f"volume {pv} deleted", lambda: not kube.exists("pv", pv), 120)
    kube.wait_until("the node's capacity back", lambda: capacity_of() == capacity_before, 120)


def run_to_end(manifest: str, timeout: float = 900) -> argo.Run:
    run = argo.Run(argo.submit(manifest, NS), NS)
    run.phase = run.wait(timeout)
    return run


def inspect_job(name: str, claim: str, expected: dict[str, str]) -> dict:
    """A Job whose pod mounts the claim read-only and checks each file's sha256."""
    script = ("import hashlib, json, sys\n"
              f"expected = json.loads({json.dumps(json.dumps(expected))})\n"
              "got = {n: hashlib.sha256(open('/vineyard/' + n, 'rb').read()).hexdigest()"
              " for n in expected}\n"
              "print(json.dumps(got))\n"
              "sys.exit(0 if got == expected else 1)\n")
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": NS},
            "spec": {"backoffLimit": 0, "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "inspect", "image": w.STEP_IMAGE,
                                "command": ["python3", "-c", script],
                                "volumeMounts": [{"name": "data", "mountPath": "/vineyard",
                                                  "readOnly": True}]}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}}}}


def workflow_json(path: str) -> dict:
    """An example's Workflow manifest, to change before submitting it."""
    return yaml.safe_load((w.ROOT / path).read_text())


# ---------------------------------------------------------------- checks


def check_argo_install():
    """Argo Workflows, built from its Go module, installed from its own manifests."""
    argo.install()
    kube.apply(w.dump(*argo.step_rbac(NS, SERVICE_ACCOUNTS)))
    image = kube.get("deployment", "workflow-controller", argo.NAMESPACE)[
        "spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith(":" + argo.version()), image


def check_kfp_v1_pipeline():
    """examples/kfp-v1 compiled by the kfp 1.8 SDK, submitted as compiled: the VolumeOp
    makes a Cellar claim, three pods exchange files through it, the delete step frees it."""
    before = capacity_of()
    run = run_to_end(sdk.compile_pipeline("kfp1", "kfp-v1"))
    assert run.phase == "Succeeded", f"{run.name}: {run.describe()}"
    assert_chain(step_reports(run, {"prepare": "prepare-data", "train": "train", "test": "test"}))
    # The delete step asked for the claim's deletion; Kubernetes completes it when no pod
    # names the claim, i.e. when the run is deleted (KFP's TTL, or the user).
    for claim in run.claims:
        assert kube.get("pvc", claim, NS)["metadata"].get("deletionTimestamp"), \
            f"the delete step left claim {claim} in place"
    seconds = run.seconds()
    kube.delete("workflow", run.name, NS)
    assert_cleaned_up(run, before)
    print(f"  {run.name}: succeeded in {seconds:.0f}s (kfp 1.8.24, Argo {argo.version()})")


def check_argo_example():
    """examples/argo/workflow.yaml as written: its claim template makes the claim, the
    steps pass files through it, and Argo deletes it when the workflow succeeds."""
    before = capacity_of()
    run = run_to_end((w.ROOT / "examples/argo/workflow.yaml").read_text())
    assert run.phase == "Succeeded", f"{run.name}: {run.describe()}"
    assert_chain(step_reports(run, {s: n for s, n in zip(STEPS, ("prepare-data", "train", "test"))}))
    assert_cleaned_up(run, before)
    print(f"  {run.name}: succeeded in {run.seconds():.0f}s")


def check_kedro_workflow():
    """examples/kedro/workflow.yaml: each Kedro node in its own pod, the catalog's
    datasets on the claim; the last node loads what the first two saved."""
    before = capacity_of()
    run = run_to_end((w.ROOT / "examples/kedro/workflow.yaml").read_text())
    assert run.phase == "Succeeded", f"{run.name}: {run.describe()}"
    log = run.step_log("test")
    for dataset in ("test_data", "model"):
        assert f"Loading data from {dataset}" in log or f"Loading data from '{dataset}'" in log, \
            f"the test node did not load {dataset}: {log[-1500:]}"
    assert_cleaned_up(run, before)
    print(f"  {run.name}: succeeded in {run.seconds():.0f}s")


def check_failed_step_keeps_claim():
    """A failed step leaves the claim and its files for inspection; deleting the workflow
    then deletes the claim and returns the memory."""
    before = capacity_of()
    wf = workflow_json("examples/argo/workflow.yaml")
    wf["metadata"]["generateName"] = "cellar-failing-"
    # The test step fails (an R^2 no model reaches), after the others wrote their files.
    step = next(t for t in wf["spec"]["templates"] if t["name"] == "step")
    step["container"]["args"] += ["{{inputs.parameters.extra}}"]
    step["inputs"]["parameters"].append({"name": "extra", "default": "--min-r2=0"})
    test = wf["spec"]["templates"][0]["steps"][2][0]
    test["arguments"]["parameters"].append({"name": "extra", "value": "--min-r2=2"})
    run = run_to_end(json.dumps(wf))
    assert run.phase == "Failed", f"{run.name}: expected Failed: {run.describe()}"
    assert len(run.claims) == 1, run.claims
    claim = next(iter(run.claims))
    time.sleep(3)   # Argo's clean-up, had it been wrong, runs right after the end
    pvc = kube.get("pvc", claim, NS)
    assert pvc["status"]["phase"] == "Bound", pvc["status"]
    prepared = step_reports(run, {"prepare": "prepare-data"})["prepare"]["wrote"]
    # Inspection, as a user would: a pod on the claim reads the files back.
    kube.apply(w.dump(inspect_job("inspect", claim, prepared)))
    kube.wait_job("inspect", NS, timeout=300)
    kube.delete("job", "inspect", NS, timeout="60s")
    kubectl("delete", "pods", "-n", NS, "-l", "batch.kubernetes.io/job-name=inspect",
            "--wait=true", "--timeout=60s")
    kube.delete("workflow", run.name, NS)
    assert_cleaned_up(run, before)


def check_kfp_v1_compiles():
    """examples/kfp-v1 compiled by kfp 1.8: its VolumeOp creates a claim of the Cellar
    StorageClass, and every step mounts that claim at /vineyard. Static, so a wrong class
    or path is named here rather than found as a pod stuck Pending in the run above."""
    workflow = yaml.safe_load(sdk.compile_pipeline("kfp1", "kfp-v1"))
    templates = {t["name"]: t for t in workflow["spec"]["templates"]}
    creates = [t for t in templates.values() if t.get("resource", {}).get("action") == "create"]
    assert len(creates) == 1, list(templates)
    claim = yaml.safe_load(creates[0]["resource"]["manifest"])
    assert claim["kind"] == "PersistentVolumeClaim", claim
    assert claim["spec"]["storageClassName"] == "cellar-system.cellar.csi", claim["spec"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"], claim["spec"]
    for name in ("prepare-data", "train", "test"):
        mounts = templates[name]["container"]["volumeMounts"]
        assert [m["mountPath"] for m in mounts] == ["/vineyard"], (name, mounts)
        volume = next(v for v in templates[name]["volumes"] if v["name"] == mounts[0]["name"])
        assert "create-vineyard" in volume["persistentVolumeClaim"]["claimName"], (name, volume)


def check_kfp_v2_compiles():
    """examples/kfp-v2 compiled by the kfp 2 SDK: the claim, its class, and a mount at
    /vineyard in every step. Not run: KFP v2 needs its backend (see tests/cluster/README.md)."""
    spec, platform = yaml.safe_load_all(sdk.compile_pipeline("kfp2", "kfp-v2"))
    tasks = spec["root"]["dag"]["tasks"]
    create = tasks["createpvc"]["inputs"]["parameters"]
    assert create["storage_class_name"]["runtimeValue"]["constant"] == "cellar-system.cellar.csi"
    assert create["access_modes"]["runtimeValue"]["constant"] == ["ReadWriteOnce"]
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    steps = [t for t in tasks.values() if t["componentRef"]["name"].startswith("comp-step")]
    assert len(steps) == 3, list(tasks)
    for t in steps:
        mounts = executors["exec-" + t["componentRef"]["name"].removeprefix("comp-")]["pvcMount"]
        assert [m["mountPath"] for m in mounts] == ["/vineyard"], mounts
        assert mounts[0]["taskOutputParameter"]["producerTask"] == "createpvc", mounts
    assert "step-3" in tasks["deletepvc"]["dependentTasks"], tasks["deletepvc"]


CHECKS = [check_argo_install, check_kfp_v1_pipeline, check_argo_example, check_kedro_workflow,
          check_failed_step_keeps_claim, check_kfp_v1_compiles, check_kfp_v2_compiles]
