"""deploy/'s peering component on the real cluster (cross-node reads, issue 15): applied
over the running default deployment as an operator would, with the Secret
deploy/peer-certs.sh makes. One node cannot read a claim from another, so what is
proven here is what only a real kubelet, provisioner, scheduler and runtime do:

- the plugin DaemonSet rolls over to the peer flags (a hand-over like any rollout) and
  the relay runs on the host network;
- the kubelet labels the node from NodeGetInfo (peers.csi.cellar.dev/<driver>=true) and
  the CSINode lists both topology keys;
- a claim of <namespace>.<name>.peers.csi binds with the two-term node affinity, its
  pods run, and the relay at the node's address reaches the plugin's socket over mutual
  TLS (a peer's Describe of the volume lists the files the pod wrote);
- with the placement component and deploy/webhook-certs.sh, the API server calls
  `cellar webhook` and a new pod of the claim prefers the owner's node;
- csi-provisioner still deletes the PV (the owner's instance matches the first term)
  and the memory comes back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.cluster import kube
from tests.cluster import workloads as w
from tests.cluster.driver import (DRIVER, NODE, NODE_CAPACITY, STORAGE_CLASS, SYSTEM_NS,
                                  TOPOLOGY_KEY, capacity_of)
from tests.cluster.kube import kubectl
from tests.cluster.steps import TEST_NS, delete_claim, run_step
from tests.lib.sizes import parse_size

ROOT = w.ROOT
DEPLOY = ROOT / "deploy"
PEERS_CLASS = "cellar-system.cellar.peers.csi"
PEERS_LABEL = f"peers.csi.cellar.dev/{DRIVER}"
NETNS = "cellar-k8s"            # tests/cluster/cluster.sh: the node's network namespace
WORK = Path(tempfile.gettempdir()) / "cellar-cluster-peering"


def overlay(*components: str) -> Path:
    """deploy/ plus optional components, as an operator's kustomization adds them."""
    d = WORK / "overlay"
    d.mkdir(parents=True, exist_ok=True)
    # kustomize takes files only from within the overlay, directories by relative path.
    shutil.copy(DEPLOY / "settings.yaml", d / "settings.yaml")
    dirs = [os.path.relpath(DEPLOY / "kubernetes" / "components" / c, d)
            for c in ("identity", *components)]
    (d / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {os.path.relpath(DEPLOY / 'kubernetes' / 'base', d)}\n"
        "  - settings.yaml\ncomponents:\n" + "".join(f"  - {c}\n" for c in dirs))
    return d


def check_peering_install():
    """The Secret from deploy/peer-certs.sh, then `kubectl apply -k` of deploy/ with the
    peering component: both DaemonSets roll out, the kubelet labels the node."""
    secret = subprocess.run(["bash", str(DEPLOY / "peer-certs.sh"), str(WORK / "tls"),
                             "--secret", SYSTEM_NS], check=True, capture_output=True,
                            text=True).stdout
    kube.apply(secret)
    kubectl("apply", "-k", str(overlay("peering")))
    for ds in ("cellar-node", "cellar-peer"):
        kubectl("rollout", "status", f"daemonset/{ds}", "-n", SYSTEM_NS, "--timeout=300s",
                timeout=320)
    kube.wait_until(f"node label {PEERS_LABEL}=true", lambda: kube.get("node", NODE)[
        "metadata"]["labels"].get(PEERS_LABEL) == "true", 120)
    drivers = kube.get("csinode", NODE)["spec"]["drivers"]
    keys = next(d for d in drivers if d["name"] == DRIVER).get("topologyKeys", [])
    assert sorted(keys) == sorted([TOPOLOGY_KEY, PEERS_LABEL]), keys


def check_peering_claim():
    """A claim of the peers class binds on its first pod with affinity 'owner node, or
    any peering Linux node'; the pod writes, a second pod reads it back intact."""
    kube.apply(w.dump(w.claim("pdata", TEST_NS, PEERS_CLASS, "256Mi")))
    written = run_step("p-prepare", "pdata", "prepare", "--size", str(parse_size("32Mi")))
    run_step("p-verify", "pdata", "verify")
    pv = kube.get("pv", kube.get("pvc", "pdata", TEST_NS)["spec"]["volumeName"])
    terms = [{e["key"]: e["values"] for e in t["matchExpressions"]}
             for t in pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]]
    want = [{TOPOLOGY_KEY: [NODE]}, {PEERS_LABEL: ["true"], "kubernetes.io/os": ["linux"]}]
    assert terms == want, f"PV affinity {terms}, want {want}"
    attrs = pv["spec"]["csi"]["volumeAttributes"]
    assert attrs.get("cellar.dev/nodes") == "peers", attrs
    assert attrs.get("cellar.dev/owner-node") == NODE, attrs
    node_ip = next(a["address"] for a in kube.get("node", NODE)["status"]["addresses"]
                   if a["type"] == "InternalIP")
    assert attrs.get("cellar.dev/owner-peer") == f"{node_ip}:7443", attrs
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "written.json").write_text(json.dumps(written["checksums"]))


def check_placement_webhook():
    """deploy/'s placement component and deploy/webhook-certs.sh on the cluster: the API
    server calls `cellar webhook` for every pod created, and a pod of the bound peers
    claim gets a preferred node affinity for the claim's owner, beside the affinity it
    had; a pod without Cellar claims is left as it was."""
    config = subprocess.run(["bash", str(DEPLOY / "webhook-certs.sh"), str(WORK / "webhook-tls"),
                             "--namespace", SYSTEM_NS], check=True, capture_output=True,
                            text=True).stdout
    kube.apply(config)
    kubectl("apply", "-k", str(overlay("peering", "placement")))
    kubectl("rollout", "status", "deployment/cellar-webhook", "-n", SYSTEM_NS,
            "--timeout=300s", timeout=320)
    own = {"preference": {"matchExpressions": [
        {"key": "example.com/zone", "operator": "In", "values": ["a"]}]}, "weight": 5}
    pod = w.sleeper_pod("p-placed", TEST_NS, "pdata")
    pod["spec"]["affinity"] = {"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [own]}}
    plain = w.sleeper_pod("p-plain", TEST_NS, "pdata")
    plain["spec"]["volumes"] = [v for v in plain["spec"]["volumes"] if v["name"] != "vineyard"]
    plain["spec"]["containers"][0]["volumeMounts"] = [
        m for m in plain["spec"]["containers"][0].get("volumeMounts", [])
        if m["name"] != "vineyard"]
    # The configuration is read by the API server's informer: the first pods after it
    # was created may pass unmutated (failurePolicy Ignore), so ask until one is mutated.
    def mutated():
        if kube.exists("pod", "p-placed", TEST_NS):
            kube.delete("pod", "p-placed", TEST_NS, timeout="60s")
        kube.apply(w.dump(pod))
        got = kube.get("pod", "p-placed", TEST_NS)["spec"].get("affinity", {})
        prefs = got.get("nodeAffinity", {}).get("preferredDuringSchedulingIgnoredDuringExecution")
        # The pod's own term is there either way: mutated once a term names the owner.
        return prefs if any(e["key"] == TOPOLOGY_KEY for t in prefs or []
                            for e in t["preference"].get("matchExpressions", [])) else None
    prefs = kube.wait_until("the webhook's preference on a new pod", mutated, 60, interval=2)
    want = {"weight": 100, "preference": {"matchExpressions": [
        {"key": TOPOLOGY_KEY, "operator": "In", "values": [NODE]}]}}
    assert prefs == [own, want], f"preferred terms {prefs}, want the pod's own then {want}"
    kube.apply(w.dump(plain))
    assert "affinity" not in kube.get("pod", "p-plain", TEST_NS)["spec"], \
        "a pod without Cellar claims was changed"
    for name in ("p-placed", "p-plain"):
        kube.delete("pod", name, TEST_NS, timeout="60s")


def check_peering_relay():
    """From the node's network, as another node's plugin: the relay at <node IP>:7443
    carries a mutual-TLS Describe of the claim's volume to the plugin, which lists the
    files the pod wrote; without a client certificate nothing is answered. Asked after
    a rollout of the plugin: the new pod took the peer socket over (the hand-over), and
    the address in the PV, the node's, still answers."""
    kubectl("rollout", "restart", "daemonset/cellar-node", "-n", SYSTEM_NS)
    kubectl("rollout", "status", "daemonset/cellar-node", "-n", SYSTEM_NS, "--timeout=300s",
            timeout=320)
    pv = kube.get("pv", kube.get("pvc", "pdata", TEST_NS)["spec"]["volumeName"])
    address = pv["spec"]["csi"]["volumeAttributes"]["cellar.dev/owner-peer"]
    volume = pv["spec"]["csi"]["volumeHandle"]
    cases = [{"name": n, "address": address, "credentials": c, "tls": str(WORK / "tls"),
              "call": "describe", "volume": volume} for n, c in (("peer", "peer"),
                                                                  ("no-cert", "no-cert"))]
    out = subprocess.run(["nsenter", f"--net=/run/netns/{NETNS}", "/usr/bin/python3", "-m",
                          "tests.multinode.peer_probe", json.dumps(cases)], cwd=ROOT,
                         check=True, capture_output=True, text=True, timeout=60).stdout
    got = json.loads(out.strip().splitlines()[-1])
    peer, anonymous = got["peer"], got["no-cert"]
    assert peer["code"] == "OK", peer
    assert peer["node_id"] == NODE, peer
    written = json.loads((WORK / "written.json").read_text())
    missing = [f for f in written if f not in peer["entries"]]
    assert not missing, f"Describe through the relay lacks {missing}: {sorted(peer['entries'])}"
    assert anonymous["code"] != "OK", anonymous


def check_peering_delete():
    """Deleting the claim deletes the PV (the owner's provisioner matches its affinity)
    and gives the memory back."""
    for pod in ("p-placed", "p-plain"):  # left by a failed placement check
        kube.delete("pod", pod, TEST_NS, timeout="60s")
    delete_claim("pdata", ("p-prepare", "p-verify"))
    kube.wait_until("capacity back", lambda: capacity_of(STORAGE_CLASS) == NODE_CAPACITY, 120)
    shutil.rmtree(WORK, ignore_errors=True)


CHECKS = [check_peering_install, check_peering_claim, check_placement_webhook,
          check_peering_relay, check_peering_delete]
