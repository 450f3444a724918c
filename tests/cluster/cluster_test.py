"""Cellar on a real Kubernetes, proven through the API alone (kubectl), as an operator
and a pipeline author see it. Run by tests/cluster/run.sh against the cluster of
tests/cluster/cluster.sh, after `kubectl apply -k deploy/`:

  /usr/bin/python3 -m tests.cluster.cluster_test [--only NAME,...]     (from the repo root)

Checks run in order (later ones use what earlier ones made) and print PASS/FAIL lines,
then "N passed, N failed".
"""

from __future__ import annotations

import argparse
import sys
import time

from tests.cluster import drills, kube, peering
from tests.cluster import workloads as w
from tests.cluster.driver import (DRIVER, NODE, NODE_CAPACITY, STORAGE_CLASS, SYSTEM_NS,
                                  TOPOLOGY_KEY, capacity_of)
from tests.cluster.kube import kubectl
from tests.cluster.pipelines import checks as pipeline_checks
from tests.cluster.steps import TEST_NS, delete_claim, run_step, step_report
from tests.lib.checks import Runner
from tests.lib.sizes import parse_size

ROOT = w.ROOT


# ---------------------------------------------------------------- checks


def check_install():
    """`kubectl apply -k deploy/`, unmodified, brings the plugin up on the node."""
    kubectl("apply", "-k", str(ROOT / "deploy"))
    kubectl("rollout", "status", "daemonset/cellar-node", "-n", SYSTEM_NS, "--timeout=300s",
            timeout=320)
    pods = kube.get("pods", namespace=SYSTEM_NS)["items"]
    plugin = [p for p in pods if p["metadata"]["name"].startswith("cellar-node-")]
    assert plugin, "no plugin pod"
    ready = {c["name"]: c["ready"] for c in plugin[0]["status"]["containerStatuses"]}
    assert all(ready.values()), f"containers not ready: {ready}"


def check_csinode():
    """The kubelet registered the driver: the CSINode lists it with its topology key."""
    def registered():
        for d in kube.get("csinode", NODE)["spec"].get("drivers") or []:
            if d["name"] == DRIVER:
                return d
    d = kube.wait_until("driver in CSINode", registered, 60)
    assert d["nodeID"] == NODE, d
    assert d.get("topologyKeys") == [TOPOLOGY_KEY], d


def check_capacity_published():
    """The provisioner publishes the node's capacity (CSIStorageCapacity)."""
    cap = kube.wait_until("CSIStorageCapacity for the node",
                          lambda: capacity_of(STORAGE_CLASS), 90)
    assert cap == NODE_CAPACITY, f"capacity {cap}, expected {NODE_CAPACITY}"


def check_claim_binds_on_first_consumer():
    """A claim waits for its first pod; then its PV is pinned to the pod's node, and the
    node's published capacity shrinks by the claim's size."""
    kube.apply(w.dump(w.namespace(TEST_NS), w.steps_configmap(TEST_NS),
                      w.claim("data", TEST_NS, STORAGE_CLASS, "512Mi")))
    time.sleep(2)
    pvc = kube.get("pvc", "data", TEST_NS)
    assert pvc["status"]["phase"] == "Pending", pvc["status"]
    assert any("WaitForFirstConsumer" in e for e in kube.events_for(
        "PersistentVolumeClaim", "data", TEST_NS)), "no WaitForFirstConsumer event"
    run_step("prepare", "data", "prepare", "--size", str(parse_size("128Mi")))
    pvc = kube.get("pvc", "data", TEST_NS)
    assert pvc["status"]["phase"] == "Bound", pvc["status"]
    pv = kube.get("pv", pvc["spec"]["volumeName"])
    terms = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    exprs = [e for t in terms for e in t["matchExpressions"]]
    assert exprs == [{"key": TOPOLOGY_KEY, "operator": "In", "values": [NODE]}], exprs
    assert pv["spec"]["csi"]["driver"] == DRIVER
    kube.wait_until("capacity shrunk by 512Mi",
                    lambda: capacity_of(STORAGE_CLASS) == NODE_CAPACITY - (512 << 20), 120)


def check_pipeline():
    """The three-step pipeline as Jobs, each step a new pod on the claim; every step
    verifies what the previous one wrote (sha256 of every file)."""
    prepared = step_report(kube.pod_logs(kube.job_pod("prepare", TEST_NS), TEST_NS))
    trained = run_step("train", "data", "train")
    tested = run_step("test", "data", "test", "--model-sha", trained["checksums"]["model.npy"])
    for name in ("train.pkl", "x_train.npy", "raw.bin"):
        assert trained["checksums"][name] == prepared["checksums"][name], name
    for name in ("test.pkl", "x_test.npy"):
        assert tested["checksums"][name] == prepared["checksums"][name], name
    assert tested["metrics"]["r2"] > 0.9, tested["metrics"]


def check_inline_ephemeral():
    """A pod with an inline (ephemeral) Cellar volume runs its steps on it."""
    kube.apply(w.dump(w.inline_pod("inline", TEST_NS, DRIVER, "128Mi")))
    kube.wait_until("inline pod Succeeded", lambda: _pod_done("inline", TEST_NS), 300)
    kube.delete("pod", "inline", TEST_NS)


def _pod_done(name: str, ns: str) -> bool:
    phase = kube.get("pod", name, ns)["status"].get("phase")
    if phase == "Failed":
        raise AssertionError(f"pod {name} failed: {kube.pod_logs(name, ns)[-1500:]}")
    return phase == "Succeeded"


def check_delete_returns_memory():
    """Deleting the claim deletes the volume and gives its memory back."""
    delete_claim("data", ("prepare", "train", "test"))
    kube.wait_until("capacity back to 4Gi",
                    lambda: capacity_of(STORAGE_CLASS) == NODE_CAPACITY, 120)


def check_second_rendering():
    """The vineyard-system.vineyardd-sample rendering installs beside the default one and
    its StorageClass serves a claim."""
    kubectl("apply", "-k", str(ROOT / "deploy/overlays/vineyard-system.vineyardd-sample"))
    kubectl("rollout", "status", "daemonset/vineyardd-sample-node", "-n", "vineyard-system",
            "--timeout=300s", timeout=320)
    sc = "vineyard-system.vineyardd-sample.csi"
    kube.apply(w.dump(w.claim("vdata", TEST_NS, sc, "256Mi")))
    run_step("v-prepare", "vdata", "prepare", "--size", str(parse_size("32Mi")))
    run_step("v-verify", "vdata", "verify")
    pv = kube.get("pvc", "vdata", TEST_NS)["spec"]["volumeName"]
    assert kube.get("pv", pv)["spec"]["csi"]["driver"] == \
        "vineyardd-sample.vineyard-system.csi.cellar.dev"
    delete_claim("vdata", ("v-prepare", "v-verify"))
    # The default deployment still serves.
    assert capacity_of(STORAGE_CLASS) == NODE_CAPACITY


def _plugin_restarts() -> int:
    return drills.restarts(drills.plugin_pod())


def _expect_event(kind: str, name: str, words: list[str], timeout: float = 120) -> str:
    def found():
        for e in kube.events_for(kind, name, TEST_NS):
            if all(word in e for word in words):
                return e
    return kube.wait_until(f"event on {kind} {name} with {words}", found, timeout)


def check_claim_larger_than_node():
    """A claim larger than any node's free capacity: its pod stays Pending with the
    scheduler's reason in its events; the plugin is untouched."""
    before = _plugin_restarts()
    kube.apply(w.dump(w.claim("huge", TEST_NS, STORAGE_CLASS, "64Gi"),
                      w.sleeper_pod("huge", TEST_NS, "huge")))
    event = _expect_event("Pod", "huge", ["FailedScheduling", "enough free storage"])
    print(f"  event: {event}")
    kube.delete("pod", "huge", TEST_NS)
    kube.delete("pvc", "huge", TEST_NS)
    assert _plugin_restarts() == before


def check_unknown_parameter():
    """An unknown StorageClass parameter: provisioning fails with Cellar's message
    naming the parameter, in the claim's events; nothing is created."""
    before = _plugin_restarts()
    kube.apply(w.dump(w.storage_class("cellar-test-bad-param", DRIVER, {"colour": "blue"}),
                      w.claim("badparam", TEST_NS, "cellar-test-bad-param", "64Mi"),
                      w.sleeper_pod("badparam", TEST_NS, "badparam")))
    event = _expect_event("PersistentVolumeClaim", "badparam", ["ProvisioningFailed", "colour"])
    print(f"  event: {event}")
    assert "InvalidArgument" in event, event
    kube.delete("pod", "badparam", TEST_NS)
    kube.delete("pvc", "badparam", TEST_NS)
    kube.delete("storageclass", "cellar-test-bad-param")
    assert _plugin_restarts() == before


def check_node_without_plugin():
    """A pod whose volume's driver has no plugin on its node (the vineyard rendering,
    not installed yet): the kubelet says so in the pod's events, and deleting it works."""
    kube.apply(w.dump(w.inline_pod("noplugin", TEST_NS,
                                   "vineyardd-sample.vineyard-system.csi.cellar.dev", "64Mi")))
    event = _expect_event("Pod", "noplugin", ["FailedMount", "not found in the list of registered CSI drivers"])
    print(f"  event: {event}")
    kube.delete("pod", "noplugin", TEST_NS, timeout="60s")


def _drill(fn):
    def check():
        print(f"  {fn(TEST_NS, STORAGE_CLASS)}")
    check.__name__ = "check_" + fn.__name__
    check.__doc__ = fn.__doc__
    return check


CHECKS = [check_install, check_csinode, check_capacity_published,
          check_claim_binds_on_first_consumer, check_pipeline, check_inline_ephemeral,
          check_delete_returns_memory, check_claim_larger_than_node, check_unknown_parameter,
          check_node_without_plugin, *pipeline_checks.CHECKS,
          _drill(drills.drill_rollout_restart),
          _drill(drills.drill_sigkill), _drill(drills.drill_delete_plugin_pod),
          check_second_rendering, *peering.CHECKS]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help="comma-separated check names (without check_)")
    args = p.parse_args()
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    # Every failure is reported and the next check runs; a traceback for the unexpected.
    runner = Runner(expected=(AssertionError, TimeoutError, kube.KubectlError))
    for check in CHECKS:
        name = check.__name__.removeprefix("check_")
        if not only or name in only:
            runner.check(name, check)
    return runner.summary()


if __name__ == "__main__":
    sys.exit(main())
