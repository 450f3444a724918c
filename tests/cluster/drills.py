"""Failure drills on the real cluster while a pod writes and reads (issue 12, point 4).

A load pod runs tests/e2e/restart_worker.py on a Cellar claim: it creates, reads back,
renames, maps and verifies files with a sha256 ledger, counting every I/O error and
every corrupted byte, and its slowest operation. Its control directory is a hostPath
under this suite's state, so the test reads the worker's result and ledger directly.
Each drill is one event from README's "What survives what"; the expected outcome is the
table's row.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.cluster import kube
from tests.cluster import workloads as w
from tests.cluster.driver import SYSTEM_NS
from tests.cluster.kube import kubectl

CONTROL_ROOT = Path("/var/lib/cellar-cluster/control")


def worker_pod(name: str, ns: str, claim: str, control: Path) -> dict:
    argv = ["python3", "/steps/restart_worker.py", "--name", name, "--budget", str(48 << 20),
            "--control", "/control", "--linger"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
           "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "worker", "image": w.STEP_IMAGE, "command": argv,
                                    "volumeMounts": [
                                        {"name": "vineyard", "mountPath": "/vineyard"},
                                        {"name": "steps", "mountPath": "/steps"},
                                        {"name": "control", "mountPath": "/control"}]}],
                    "volumes": [{"name": "vineyard",
                                 "persistentVolumeClaim": {"claimName": claim}},
                                {"name": "steps", "configMap": {"name": w.STEPS_CONFIGMAP}},
                                {"name": "control", "hostPath": {
                                    "path": str(control), "type": "Directory"}}]}}
    return pod


class Load:
    """One worker pod on its own claim, started before a drill and stopped after."""

    def __init__(self, name: str, ns: str, storage_class: str):
        self.name, self.ns = name, ns
        self.control = CONTROL_ROOT / name
        shutil.rmtree(self.control, ignore_errors=True)
        self.control.mkdir(parents=True)
        kube.apply(w.dump(w.claim(name, ns, storage_class, "256Mi"),
                          worker_pod(name, ns, name, self.control)))
        kube.wait_until(f"{name} running", lambda: kube.get("pod", name, ns)["status"].get(
            "phase") == "Running", 180)
        # Some files closed before the event.
        kube.wait_until(f"{name} progress", lambda: self.ops() >= 200, 120, 0.5)

    def ops(self) -> int:
        f = self.control / f"{self.name}.progress"
        try:
            return json.loads(f.read_text()).get("ops", 0)
        except (OSError, ValueError):
            return 0

    def stop(self, timeout: float = 180) -> dict:
        (self.control / "stop").touch()
        result = self.control / f"{self.name}.result.json"
        kube.wait_until(f"{self.name} result", result.exists, timeout)
        (self.control / f"{self.name}.exit").touch()
        return json.loads(result.read_text())

    def delete(self) -> None:
        kube.delete("pod", self.name, self.ns, timeout="60s")
        kube.delete("pvc", self.name, self.ns, timeout="120s")
        shutil.rmtree(self.control, ignore_errors=True)


def summary(r: dict) -> str:
    return (f"{r['ops']} ops, {r['io_errors']} I/O errors {r['error_counts']}, "
            f"{r['corrupted']} corrupted, longest stall {r['max_latency']} s ({r['max_op']}), "
            f"final: {r['final']['files']} files {'ok' if r['final']['ok'] else r['final']['problems']}")


def plugin_pod(ns: str = SYSTEM_NS) -> str:
    pods = [p for p in kube.get("pods", namespace=ns)["items"]
            if p["metadata"]["name"].startswith("cellar-node-")
            and not p["metadata"].get("deletionTimestamp")]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]["metadata"]["name"]


def node_pid(state_dir: str = "/var/lib/cellar/cellar-system/cellar") -> int:
    """The host pid of the serving `cellar node` of one deployment."""
    out = subprocess.run(["pgrep", "-f", f"cellar node .*--state-dir={state_dir}"],
                         capture_output=True, text=True).stdout.split()
    pids = [int(p) for p in out]
    assert pids, "no cellar node process"
    # After a hand-over the old, idle daemon may linger until its pod goes: the newest
    # process is the one serving.
    return max(pids, key=lambda p: os.stat(f"/proc/{p}").st_ctime)


def expect_clean(r: dict, what: str) -> None:
    assert r["io_errors"] == 0 and r["corrupted"] == 0 and r["final"]["ok"], \
        f"{what}: {summary(r)}"


def under_load(name: str, ns: str, sc: str, event, what: str) -> str:
    """Runs event() while a load pod works; the pod must see no error and lose no byte."""
    load = Load(name, ns, sc)
    try:
        event()
        time.sleep(2)  # some operations after the event too
        r = load.stop()
        expect_clean(r, what)
        return summary(r)
    finally:
        load.delete()


def drill_rollout_restart(ns: str, sc: str) -> str:
    def event():
        kubectl("rollout", "restart", "daemonset/cellar-node", "-n", SYSTEM_NS)
        kubectl("rollout", "status", "daemonset/cellar-node", "-n", SYSTEM_NS,
                "--timeout=300s", timeout=320)
    return under_load("drill-rollout", ns, sc, event, "rollout restart")


def drill_sigkill(ns: str, sc: str) -> str:
    def event():
        pod = plugin_pod()
        before = restarts(pod)
        os.kill(node_pid(), signal.SIGKILL)
        kube.wait_until("cellar container restarted", lambda: restarts(pod) > before, 120)
        kube.wait_until("plugin Ready again", lambda: _ready(pod), 120)
    return under_load("drill-sigkill", ns, sc, event, "SIGKILL of cellar node")


def restarts(pod: str) -> int:
    st = kube.get("pod", pod, SYSTEM_NS)["status"]
    return next(c["restartCount"] for c in st["containerStatuses"] if c["name"] == "cellar")


def _ready(pod: str) -> bool:
    st = kube.get("pod", pod, SYSTEM_NS)["status"]
    return all(c["ready"] for c in st.get("containerStatuses", []))


def drill_delete_plugin_pod(ns: str, sc: str) -> str:
    """README: the holder goes with the pod, so running pods' mounts break until those
    pods are recreated; volumes and closed files are kept."""
    load = Load("drill-delete", ns, sc)
    try:
        old = plugin_pod()
        kubectl("delete", "pod", old, "-n", SYSTEM_NS, "--wait=true", "--timeout=120s")
        kubectl("rollout", "status", "daemonset/cellar-node", "-n", SYSTEM_NS,
                "--timeout=300s", timeout=320)
        time.sleep(2)
        r = load.stop()
        saw = summary(r)
        ledger = json.loads((load.control / f"{load.name}.ledger.json").read_text())
        # The mount of the running pod is expected to break; what it closed before must
        # be intact for a new pod of the same claim.
        kube.delete("pod", load.name, ns, timeout="60s")
        checked = verify_ledger(ns, load.name, ledger)
        return f"running pod saw: {saw}; a new pod verified {checked} closed files intact"
    finally:
        load.delete()


def verify_ledger(ns: str, claim: str, ledger: dict) -> int:
    """Runs a pod on the claim that checks every ledger file's sha256; returns the count."""
    (CONTROL_ROOT / claim / "ledger.json").write_text(json.dumps(ledger))
    script = ("import hashlib,json,os,sys\n"
              "l=json.load(open('/control/ledger.json'))\n"
              f"d='/vineyard/{claim}'\n"
              "bad=[n for n,h in l.items() if hashlib.sha256(open(os.path.join(d,n),'rb').read())"
              ".hexdigest()!=h]\n"
              "print(json.dumps({'files':len(l),'bad':bad}))\n"
              "sys.exit(1 if bad else 0)\n")
    name = f"{claim}-verify"
    pod = worker_pod(name, ns, claim, CONTROL_ROOT / claim)
    pod["spec"]["containers"][0]["command"] = ["python3", "-c", script]
    kube.apply(w.dump(pod))

    def done():
        phase = kube.get("pod", name, ns)["status"].get("phase")
        if phase == "Failed":
            raise AssertionError(f"verification failed: {kube.pod_logs(name, ns)[-1500:]}")
        return phase == "Succeeded"
    kube.wait_until("ledger verified", done, 180)
    out = json.loads(kube.pod_logs(name, ns).strip().splitlines()[-1])
    kube.delete("pod", name, ns, timeout="60s")
    return out["files"]
