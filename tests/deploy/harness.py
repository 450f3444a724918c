"""The helpers the deploy checks share: commands, renderings, object access, schema
validation. Each check is a function that raises on failure (AssertionError or any
other exception; `Skip` to skip with a reason), run by tests/lib/checks.py's Runner."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from tests.lib import REPO
# The check runner is the test library's; the deploy checks take it from here with the
# rest of their helpers.
from tests.lib.checks import CheckFailed, Runner, Skip, expect, fail  # noqa: F401

DEPLOY = REPO / "deploy"
EXAMPLES = REPO / "examples"
TESTS = Path(__file__).resolve().parent


# ----------------------------------------------------------------- commands


def run(cmd: list[str], *, check: bool = True, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and proc.returncode != 0:
        fail(f"`{' '.join(map(str, cmd))}` exited {proc.returncode}:\n{proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def kustomize(directory: Path) -> list[dict]:
    """`kubectl kustomize DIR`, parsed."""
    out = run(["kubectl", "kustomize", str(directory)]).stdout
    return [o for o in yaml.safe_load_all(out) if o]


def render_sh(namespace: str, name: str, *options: str, workdir: Path) -> tuple[Path, list[dict]]:
    """deploy/render.sh into a fresh overlay directory; returns (overlay, objects)."""
    overlay = Path(tempfile.mkdtemp(prefix=f"{namespace}.{name}.", dir=workdir))
    out = run([str(DEPLOY / "render.sh"), *options, "--output-dir", str(overlay), namespace, name]).stdout
    return overlay, [o for o in yaml.safe_load_all(out) if o]


# ------------------------------------------------------------ object access


def objects_of(objs: list[dict], kind: str) -> list[dict]:
    return [o for o in objs if o.get("kind") == kind]


def one(objs: list[dict], kind: str) -> dict:
    found = objects_of(objs, kind)
    expect(len(found) == 1, f"expected exactly one {kind}, found {len(found)}")
    return found[0]


def ident(obj: dict) -> str:
    meta = obj.get("metadata", {})
    ns = meta.get("namespace")
    return f"{obj.get('kind')}/{(ns + '/') if ns else ''}{meta.get('name')}"


def pod_spec(daemonset: dict) -> dict:
    return daemonset["spec"]["template"]["spec"]


def all_containers(daemonset: dict) -> list[dict]:
    """The init containers (native sidecars among them) and the containers."""
    spec = pod_spec(daemonset)
    return spec.get("initContainers", []) + spec["containers"]


def container(daemonset: dict, name: str) -> dict:
    """A container or init container by name."""
    for c in all_containers(daemonset):
        if c["name"] == name:
            return c
    fail(f"{ident(daemonset)} has no container {name!r}")


def daemonset_of(objs: list[dict], component: str) -> dict:
    """The DaemonSet labelled app.kubernetes.io/component=<component>:
    node-plugin (cellar node and its sidecars) or memory-reservation."""
    found = [o for o in objects_of(objs, "DaemonSet")
             if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component]
    expect(len(found) == 1, f"expected one DaemonSet with component {component}, found {len(found)}")
    return found[0]


def volume(daemonset: dict, name: str) -> dict:
    for v in pod_spec(daemonset).get("volumes", []):
        if v["name"] == name:
            return v
    fail(f"{ident(daemonset)} has no volume {name!r}")


def env_values(c: dict, field_values: dict[str, str] | None = None) -> dict[str, str]:
    """A container's environment; fieldRef values come from field_values
    (keyed by fieldPath), others are left as <fieldPath>."""
    field_values = field_values or {}
    out = {}
    for e in c.get("env", []):
        if "value" in e:
            out[e["name"]] = str(e["value"])
        elif "fieldRef" in e.get("valueFrom", {}):
            path = e["valueFrom"]["fieldRef"]["fieldPath"]
            out[e["name"]] = field_values.get(path, f"<{path}>")
    return out


_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(arg: str, env: dict[str, str]) -> str:
    """$(VAR) expansion as the kubelet does it for command and args."""
    return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), arg)


def expanded_args(c: dict, field_values: dict[str, str] | None = None) -> list[str]:
    env = env_values(c, field_values)
    return [expand(a, env) for a in c.get("args", [])]


def flag_values(args: list[str]) -> dict[str, str | None]:
    """--name=value and bare --name flags of an argument list."""
    out: dict[str, str | None] = {}
    for a in args:
        if a.startswith("--"):
            key, eq, value = a[2:].partition("=")
            out[key] = value if eq else None
    return out


def mount_for(c: dict, path: str) -> tuple[dict, str] | None:
    """The volumeMount of container c that holds `path`, and the path inside it."""
    best = None
    for m in c.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best[0]["mountPath"].rstrip("/")):
                best = (m, path[len(mp):].lstrip("/"))
    return best


# --------------------------------------------------------- schema validation


def validate_objects(items: list[tuple[str, dict]]) -> list[dict]:
    """Runs tests/deploy/node/validate.mjs on (source, object) pairs; returns
    its per-object results."""
    node_dir = TESTS / "node"
    expect((node_dir / "node_modules" / "kubernetes-models").is_dir(),
           "tests/deploy/node/node_modules is missing: run tests/deploy/run.sh (it runs npm ci)")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump([{"source": s, "object": o} for s, o in items], f)
        path = f.name
    try:
        proc = subprocess.run(["node", str(node_dir / "validate.mjs"), path],
                              capture_output=True, text=True, timeout=120)
    finally:
        os.unlink(path)
    if proc.returncode not in (0, 1):
        fail(f"validate.mjs exited {proc.returncode}: {proc.stderr.strip()}")
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    expect(len(results) == len(items), f"validate.mjs answered {len(results)} of {len(items)} objects")
    return results


def schema_errors(items: list[tuple[str, dict]]) -> list[str]:
    """One line per error: '<source>: <Kind>/<name>: <field path>: <message>'."""
    lines = []
    for r in validate_objects(items):
        for e in r["errors"]:
            lines.append(f"{r['source']}: {r['kind']}/{r['name']}: {e['path'] or '/'}: {e['message']}")
    return lines


def python() -> str:
    return sys.executable
