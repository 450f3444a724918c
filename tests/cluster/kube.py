"""kubectl for the cluster tests: run it, read JSON, wait for conditions, apply manifests.

Standard library only. The binary and kubeconfig come from the environment that
tests/cluster/run.sh sets (CELLAR_KUBECTL, KUBECONFIG).
"""

from __future__ import annotations

import json
import os
import subprocess
import time

KUBECTL = os.environ.get("CELLAR_KUBECTL", "kubectl")


class KubectlError(RuntimeError):
    pass


def kubectl(*args: str, input: str | None = None, check: bool = True, timeout: float = 120) -> str:
    """Runs kubectl; returns stdout. Raises KubectlError naming the command and its stderr."""
    proc = subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise KubectlError(f"kubectl {' '.join(args)}: exit {proc.returncode}: "
                           f"{proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def get(kind: str, name: str = "", namespace: str | None = None) -> dict:
    args = ["get", kind] + ([name] if name else []) + ["-o", "json"]
    if namespace:
        args += ["-n", namespace]
    return json.loads(kubectl(*args))


def exists(kind: str, name: str, namespace: str | None = None) -> bool:
    args = ["get", kind, name, "--ignore-not-found", "-o", "name"]
    if namespace:
        args += ["-n", namespace]
    return bool(kubectl(*args).strip())


def apply(manifest: str, namespace: str | None = None) -> None:
    kubectl("apply", *(["-n", namespace] if namespace else []), "-f", "-", input=manifest)


def delete(kind: str, name: str, namespace: str | None = None, wait: bool = True,
           timeout: str = "120s") -> None:
    args = ["delete", kind, name, "--ignore-not-found", f"--wait={str(wait).lower()}",
            f"--timeout={timeout}"]
    if namespace:
        args += ["-n", namespace]
    kubectl(*args, timeout=300)


def wait_until(what: str, fn, timeout: float = 120, interval: float = 1.0):
    """Polls fn() until it returns a truthy value, which it returns. On time-out raises
    TimeoutError with `what` and the last value or exception fn gave."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except (KubectlError, KeyError, IndexError) as e:
            last = e
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not after {timeout:.0f}s (last: {last!r})")
        time.sleep(interval)


def events_for(kind: str, name: str, namespace: str) -> list[str]:
    """The reasons and messages of the events about one object, oldest first."""
    out = get("events", namespace=namespace)
    items = [e for e in out["items"]
             if e["involvedObject"].get("kind") == kind and e["involvedObject"]["name"] == name]
    items.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    return [f"{e['reason']}: {e.get('message', '')}" for e in items]


def pod_logs(name: str, namespace: str, container: str | None = None) -> str:
    args = ["logs", name, "-n", namespace] + (["-c", container] if container else [])
    return kubectl(*args)


def job_pod(job: str, namespace: str) -> str:
    pods = get("pods", namespace=namespace)["items"]
    names = [p["metadata"]["name"] for p in pods
             if p["metadata"].get("labels", {}).get("job-name") == job]
    if not names:
        raise KubectlError(f"job {namespace}/{job} has no pod")
    return names[-1]


def wait_job(job: str, namespace: str, timeout: float = 300) -> str:
    """Waits for a Job to complete; returns its pod's log. Raises with the pod's log and
    events when it fails or times out."""
    def done():
        st = get("job", job, namespace)["status"]
        if st.get("failed"):
            raise AssertionError(f"job {job} failed")
        return st.get("succeeded", 0) >= 1
    try:
        wait_until(f"job {namespace}/{job} complete", done, timeout)
    except (AssertionError, TimeoutError) as e:
        detail = ""
        try:
            pod = job_pod(job, namespace)
            detail = (f"\n  pod events: {events_for('Pod', pod, namespace)[-5:]}"
                      f"\n  log: {pod_logs(pod, namespace)[-2000:]}")
        except KubectlError as inner:
            detail = f"\n  ({inner})"
        raise AssertionError(f"{e}{detail}") from None
    return pod_logs(job_pod(job, namespace), namespace)
