"""Where Kubernetes may put the pods of a Cellar claim, asked of the code that decides
(issue 15, point 2). Each node's real NodeGetInfo segments and each claim's real
CreateVolume answer go through external-provisioner's GenerateVolumeNodeAffinity and
VolumeIsAccessible (which node's provisioner deletes the PV) and component-helpers'
CheckNodeAffinity (which nodes kube-scheduler admits for a pod of the bound claim), built
from the pinned csi-provisioner module (tests/cluster/components/csi-provisioner/
topologycheck, built by run.sh into build/topologycheck)."""

from __future__ import annotations

import json
import subprocess

from tests.lib import REPO
from tests.lib.checks import Runner, expect
from tests.lib.multinode import MultiNodeCluster, Node

CHECKER = REPO / "build" / "topologycheck"
PEERS_LABEL = "peers.csi.cellar.dev/{driver}"


def upstream_verdicts(topology: list, nodes: list[dict]) -> dict:
    """{node name: {"deletes": bool, "schedulable": bool}} from the upstream code."""
    if not CHECKER.exists():
        raise RuntimeError(f"{CHECKER} is missing (tests/multinode/run.sh builds it)")
    res = subprocess.run([str(CHECKER)], input=json.dumps({"topology": topology, "nodes": nodes}),
                         capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise RuntimeError(f"topologycheck exited {res.returncode}: {res.stderr.strip()}")
    return json.loads(res.stdout)


def as_upstream(node: Node) -> dict:
    return {"name": node.name, "segments": node.kubelet.topology, "labels": node.kubelet.labels}


def not_peering(name: str) -> dict:
    """A node whose Cellar plugin does not fetch from peers: its node segment only."""
    segments = {"topology.csi.cellar.dev/node": name}
    return {"name": name, "segments": segments,
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", **segments}}


def run(checks: Runner, c: MultiNodeCluster, tag: str) -> None:
    n1, n2, n3 = c.nodes[:3]

    def segments():
        for n in (n1, n2, n3):
            label = PEERS_LABEL.format(driver=n.kubelet.driver)
            want = {"topology.csi.cellar.dev/node": n.name, label: "true"}
            expect(n.kubelet.topology == want,
                   f"{n.name}: NodeGetInfo segments {n.kubelet.topology}, want {want}")
    checks.check(f"{tag} NodeGetInfo of a peering node: its node segment and "
                 "peers.csi.cellar.dev/<driver>=true", segments)

    everyone = [as_upstream(n) for n in (n1, n2, n3)] + [not_peering("node-plain")]
    state: dict = {}

    def peers_class():
        pv = state["peers"] = c.provision(n1, "claim-sched-peers", 8 << 20, nodes="peers")
        got = upstream_verdicts(pv.topology, everyone)
        want = {n1.name: {"deletes": True, "schedulable": True},
                n2.name: {"deletes": False, "schedulable": True},
                n3.name: {"deletes": False, "schedulable": True},
                "node-plain": {"deletes": False, "schedulable": False}}
        expect(got == want, f"affinity {pv.topology}: upstream says {got}, want {want}")
    checks.check(f"{tag} cellar.dev/nodes=peers: kube-scheduler admits every peering node, "
                 "only the owner's csi-provisioner deletes the PV (upstream code)", peers_class)

    def owner_class():
        pv = state["owner"] = c.provision(n1, "claim-sched-owner", 8 << 20, nodes="owner")
        got = upstream_verdicts(pv.topology, everyone)
        want = {n.name: {"deletes": n is n1, "schedulable": n is n1} for n in (n1, n2, n3)}
        want["node-plain"] = {"deletes": False, "schedulable": False}
        expect(got == want, f"affinity {pv.topology}: upstream says {got}, want {want}")
        try:
            c.publish(n2, pv)
        except RuntimeError as e:
            expect("excludes node" in str(e), f"publish on node 2 failed oddly: {e}")
        else:
            raise AssertionError("an owner-only claim was published on node 2")
    checks.check(f"{tag} cellar.dev/nodes=owner (the default): pods of the claim only on "
                 "the owner, as before (upstream code; the harness's kubelet agrees)",
                 owner_class)

    def deleted():
        for pv in state.values():
            c.delete(pv)
        expect(not any(n.daemon.arena(pv.volume_handle).exists() for n in (n1, n2, n3)
                       for pv in state.values()), "an arena is left after DeleteVolume")
    checks.check(f"{tag} both claims are deleted by their owner", deleted)
