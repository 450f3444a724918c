"""Argo Workflows on the cluster: installed from its own manifests (the module's
manifests/cluster-install, as `kubectl apply -k` of a release does), and workflows
submitted with `kubectl create` and followed through the API, as the argo CLI does."""

from __future__ import annotations

import calendar
import json
import os
import subprocess
import time
from pathlib import Path

import yaml   # Debian's python3-yaml (tests/cluster/packages.txt)

from tests.cluster import kube
from tests.cluster.kube import kubectl

HERE = Path(__file__).resolve().parent
COMPONENT = HERE.parent / "components" / "argo"   # the wrapper module images/build.sh builds
NAMESPACE = "argo"


def version() -> str:
    for line in (HERE.parent / "versions.env").read_text().splitlines():
        if line.startswith("ARGO_VERSION="):
            return line.split("=", 1)[1].strip()
    raise RuntimeError("no ARGO_VERSION in versions.env")


def _module_dir() -> Path:
    env = dict(os.environ, GOFLAGS="-mod=mod")
    out = subprocess.run(["go", "list", "-m", "-f", "{{.Dir}}",
                          "github.com/argoproj/argo-workflows/v3"], cwd=COMPONENT, env=env,
                         capture_output=True, text=True, check=True, timeout=300)
    return Path(out.stdout.strip())


def manifests() -> list[dict]:
    """Upstream's cluster-wide install at the pinned release, for a cluster without a
    registry: the images built by images/build.sh, the executor's and the steps'
    images taken from the node (IfNotPresent), and no argo-server (the UI: not needed
    to run workflows)."""
    rendered = kubectl("kustomize", str(_module_dir() / "manifests" / "cluster-install"))
    objects = [o for o in yaml.safe_load_all(rendered)
               if o and "argo-server" not in o["metadata"]["name"]]
    tag = version()
    for o in objects:
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "workflow-controller":
            c = o["spec"]["template"]["spec"]["containers"][0]
            c["image"] = f"quay.io/argoproj/workflow-controller:{tag}"
            c["imagePullPolicy"] = "IfNotPresent"
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "workflow-controller-configmap":
            # An air-gapped cluster's settings: images come from the node. The patch is
            # the controller's own (workflowDefaults), so the compiled pipelines run as
            # they are, even KFP's `gcr.io/cloud-builders/kubectl` (an implicit :latest,
            # which Kubernetes would otherwise always pull).
            patch = json.dumps({"containers": [{"name": "main", "imagePullPolicy": "IfNotPresent"}]})
            o["data"] = {
                "executor": f"image: quay.io/argoproj/argoexec:{tag}\nimagePullPolicy: IfNotPresent\n",
                "workflowDefaults": "spec:\n  podSpecPatch: '" + patch + "'\n",
            }
    return objects


def install() -> None:
    kube.apply(json.dumps({"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": NAMESPACE}}))
    # Server-side: the CRDs are larger than client-side apply's annotation allows.
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-",
            input="\n".join(json.dumps(o) for o in manifests()))
    kubectl("rollout", "status", "deployment/workflow-controller", "-n", NAMESPACE,
            "--timeout=180s", timeout=200)


def step_rbac(namespace: str, service_accounts: list[str]) -> list[dict]:
    """What a workflow's pods need in their namespace: the executor reports results
    (workflowtaskresults), and KFP's VolumeOp and delete step create and delete claims."""
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "pipeline-step", "namespace": namespace},
            "rules": [{"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"],
                       "verbs": ["create", "patch"]},
                      {"apiGroups": [""], "resources": ["persistentvolumeclaims"],
                       "verbs": ["create", "get", "list", "watch", "patch", "delete"]}]}
    objects = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}, role]
    for sa in service_accounts:
        objects.append({"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": {"name": sa, "namespace": namespace}})
    objects.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                    "metadata": {"name": "pipeline-step", "namespace": namespace},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                "name": "pipeline-step"},
                    "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}
                                 for sa in service_accounts]})
    return objects


def submit(manifest: str, namespace: str) -> str:
    """`kubectl create` of a Workflow (its generateName gives the name); returns the name."""
    out = kubectl("create", "-n", namespace, "-o", "name", "-f", "-", input=manifest)
    return out.strip().split("/", 1)[1]


class Run:
    """A submitted workflow, followed until it ends. Remembers every claim its pods
    mounted and the volume bound to each, to check the clean-up afterwards."""

    def __init__(self, name: str, namespace: str):
        self.name, self.namespace = name, namespace
        self.claims: dict[str, str] = {}   # claim name -> PV name ("" while unbound)

    def _note_claims(self) -> None:
        for p in self.pods():
            for v in p["spec"].get("volumes", []):
                claim = v.get("persistentVolumeClaim", {}).get("claimName")
                if claim and not self.claims.get(claim):
                    pvc = kube.get("pvc", claim, self.namespace) if kube.exists(
                        "pvc", claim, self.namespace) else {}
                    self.claims[claim] = pvc.get("spec", {}).get("volumeName", "")

    def pods(self) -> list[dict]:
        selector = f"workflows.argoproj.io/workflow={self.name}"
        return json.loads(kubectl("get", "pods", "-n", self.namespace, "-l", selector,
                                  "-o", "json"))["items"]

    def wait(self, timeout: float = 900) -> str:
        """Waits for the workflow to end; returns its phase (Succeeded, Failed, Error)."""
        deadline = time.monotonic() + timeout
        while True:
            status = kube.get("workflow", self.name, self.namespace).get("status", {})
            self._note_claims()
            phase = status.get("phase", "")
            if phase in ("Succeeded", "Failed", "Error"):
                return phase
            if time.monotonic() > deadline:
                raise TimeoutError(f"workflow {self.namespace}/{self.name}: still {phase or 'new'} "
                                   f"after {timeout:.0f}s; {self.describe()}")
            time.sleep(2)

    def seconds(self) -> float:
        """Wall time from the workflow's start to its end, as Argo recorded them."""
        status = kube.get("workflow", self.name, self.namespace)["status"]
        return seconds_between(status["startedAt"], status["finishedAt"])

    def describe(self) -> str:
        """Each node's phase and message, for a failure's report."""
        status = kube.get("workflow", self.name, self.namespace).get("status", {})
        nodes = sorted(status.get("nodes", {}).values(), key=lambda n: n.get("startedAt") or "")
        parts = [f"{n.get('displayName')}={n.get('phase')}"
                 + (f" ({n['message']})" if n.get("message") else "")
                 for n in nodes if n.get("type") in ("Pod", "Retry")]
        return f"phase {status.get('phase')}: {status.get('message', '')}; steps: {', '.join(parts)}"

    def step_log(self, display_name: str) -> str:
        """The main container's log of the step with that name."""
        status = kube.get("workflow", self.name, self.namespace)["status"]
        for node_id, n in status.get("nodes", {}).items():
            if n.get("displayName") == display_name and n.get("type") == "Pod":
                pod = self._pod_of(node_id, n)
                return kube.pod_logs(pod, self.namespace, "main")
        raise AssertionError(f"workflow {self.name} has no step {display_name}: {self.describe()}")

    def _pod_of(self, node_id: str, node: dict) -> str:
        for p in self.pods():
            annotations = p["metadata"].get("annotations", {})
            if annotations.get("workflows.argoproj.io/node-id") == node_id or \
               annotations.get("workflows.argoproj.io/node-name") == node.get("name"):
                return p["metadata"]["name"]
        raise AssertionError(f"no pod for step {node.get('displayName')} of {self.name}")


def seconds_between(start: str, end: str) -> float:
    """The seconds between two of Argo's timestamps (RFC 3339, UTC, whole seconds)."""
    def parse(ts: str) -> float:
        return calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))
    return parse(end) - parse(start)
