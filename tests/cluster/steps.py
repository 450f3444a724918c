"""The pipeline steps as Jobs on the cluster, and the report each one prints."""

from __future__ import annotations

import json

from tests.cluster import kube
from tests.cluster import workloads as w

TEST_NS = "cellar-test"


def step_report(log: str) -> dict:
    """The JSON line a pipeline step prints last."""
    for line in reversed(log.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"no report in the step's log: {log[-500:]}")


def run_step(job: str, claim: str, step: str, *args: str, ns: str = TEST_NS) -> dict:
    kube.apply(w.dump(w.step_job(job, ns, claim, step, *args)))
    report = step_report(kube.wait_job(job, ns, timeout=300))
    assert report["ok"], f"{job}: checksum mismatches {report['mismatches']}"
    return report


def delete_claim(claim: str, jobs: tuple[str, ...], ns: str = TEST_NS) -> str:
    """Deletes the claim's Jobs and their pods (Kubernetes keeps a claim while any pod
    names it), then the claim; returns once its PV is gone, i.e. the volume deleted."""
    for job in jobs:
        kube.delete("job", job, ns, timeout="60s")
    kube.kubectl("delete", "pods", "-n", ns, "-l", "batch.kubernetes.io/job-name",
                 "--wait=true", "--timeout=60s")
    pv = kube.get("pvc", claim, ns)["spec"]["volumeName"]
    kube.delete("pvc", claim, ns)
    kube.wait_until(f"PV {pv} of claim {claim} deleted", lambda: not kube.exists("pv", pv), 120)
    return pv
