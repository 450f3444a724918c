"""The objects the cluster tests create, as users would write them: claims, Jobs that
run the pipeline steps, pods with inline volumes. Each function returns a manifest (a
dict; kubectl takes JSON)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STEP_IMAGE = "cellar-examples:0.1.0"
# The pipeline steps with checksums (tests/e2e/pipeline_steps.py), shipped to the pods
# in a ConfigMap so the image need not change for the tests.
STEPS_CONFIGMAP = "cellar-test-steps"
NONROOT = {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
           "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def dump(*objects: dict) -> str:
    return "\n".join(json.dumps(o) for o in objects)


def namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def steps_configmap(ns: str) -> dict:
    files = {"pipeline_steps.py": ROOT / "tests/e2e/pipeline_steps.py",
             "restart_worker.py": ROOT / "tests/e2e/restart_worker.py"}
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": STEPS_CONFIGMAP, "namespace": ns},
            "data": {k: v.read_text() for k, v in files.items()}}


def claim(name: str, ns: str, storage_class: str, size: str) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"storageClassName": storage_class, "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": size}}}}


def _steps_volumes(volume: dict) -> list[dict]:
    return [{"name": "vineyard", **volume},
            {"name": "steps", "configMap": {"name": STEPS_CONFIGMAP}}]


def _container(name: str, argv: list[str], read_only: bool = False) -> dict:
    return {"name": name, "image": STEP_IMAGE, "command": argv,
            "securityContext": CONTAINER_SECURITY,
            "volumeMounts": [{"name": "vineyard", "mountPath": "/vineyard", "readOnly": read_only},
                             {"name": "steps", "mountPath": "/steps", "readOnly": True}]}


def step_job(name: str, ns: str, claim_name: str, step: str, *args: str) -> dict:
    """A Job whose one pod runs a pipeline step on the claim, as a pipeline engine does."""
    argv = ["python3", "/steps/pipeline_steps.py", step, "--data-dir", "/vineyard", *args]
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": 600,
                     "template": {"spec": {
                         "restartPolicy": "Never", "securityContext": NONROOT,
                         "containers": [_container(step, argv)],
                         "volumes": _steps_volumes(
                             {"persistentVolumeClaim": {"claimName": claim_name}})}}}}


def inline_pod(name: str, ns: str, driver: str, size: str) -> dict:
    """A pod with a CSI inline (ephemeral) volume that runs the three steps in turn."""
    script = ("set -e; for s in prepare train test; do "
              f"python3 /steps/pipeline_steps.py $s --data-dir /vineyard --size {32 << 20}; done")
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"restartPolicy": "Never", "securityContext": NONROOT,
                     "containers": [_container("steps", ["sh", "-c", script])],
                     "volumes": _steps_volumes(
                         {"csi": {"driver": driver, "volumeAttributes": {"size": size}}})}}


def storage_class(name: str, driver: str, parameters: dict) -> dict:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": name}, "provisioner": driver, "parameters": parameters,
            "volumeBindingMode": "WaitForFirstConsumer", "reclaimPolicy": "Delete"}


def sleeper_pod(name: str, ns: str, claim_name: str) -> dict:
    """A pod that only mounts the claim, to make the scheduler bind it."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"restartPolicy": "Never", "securityContext": NONROOT,
                     "terminationGracePeriodSeconds": 1,
                     "containers": [_container("sleep", ["sleep", "3600"])],
                     "volumes": _steps_volumes(
                         {"persistentVolumeClaim": {"claimName": claim_name}})}}
