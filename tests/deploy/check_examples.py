"""Checks of examples/: the step code runs for real, each step its own
process that sees the volume bind-mounted at a private path standing for
/vineyard (as a pod sees its Cellar volume); the same steps on a plain
directory give byte-identical results; the Kedro nodes run the same way; and
every pipeline definition parses and uses the Cellar StorageClass at
/vineyard."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.deploy.harness import (EXAMPLES, TESTS, Runner, expect, fail, one, python, run, schema_errors)

STEPS = EXAMPLES / "steps" / "steps.py"
IMAGE_STEPS = "/opt/cellar-examples/steps.py"
STAGES = ["prepare", "train", "test"]
OUTPUTS = ["train.pkl", "test.pkl", "model.npy", "metrics.json"]
KEDRO = EXAMPLES / "kedro"
KEDRO_NODES = ["prepare_data", "train", "test"]
DATA_DIR = "/vineyard"


class Volume:
    """The directory the steps share: $CELLAR_VOLUME_DIR, or a tmpfs mounted
    here as a stand-in (a plain directory when not root)."""

    def __init__(self, given: str | None, workdir: Path):
        self.mounted = False
        if given:
            self.path = Path(given)
            self.label = f"Cellar volume {given}"
            return
        self.path = workdir / "volume"
        self.path.mkdir()
        if os.geteuid() == 0 and run(["mount", "-t", "tmpfs", "-o", "size=256m,mode=0777", "tmpfs",
                                      str(self.path)], check=False).returncode == 0:
            self.mounted = True
            self.label = "tmpfs stand-in (set CELLAR_VOLUME_DIR for a Cellar volume)"
        else:
            self.label = "plain directory stand-in (not root; set CELLAR_VOLUME_DIR)"

    def clean(self) -> None:
        for name in OUTPUTS:
            (self.path / name).unlink(missing_ok=True)
        shutil.rmtree(self.path / "kedro", ignore_errors=True)

    def close(self) -> None:
        self.clean()
        if self.mounted:
            run(["umount", str(self.path)], check=False)


def as_pod(volume: Path, pod_dir: Path, argv: list[str]) -> subprocess.CompletedProcess:
    """Runs argv with `volume` visible only at pod_dir/vineyard, in a private
    mount namespace, like a container whose volume the kubelet bind-mounted.
    `{vineyard}` in argv is replaced by that path."""
    vineyard = pod_dir / "vineyard"
    vineyard.mkdir(parents=True, exist_ok=True)
    argv = [a.replace("{vineyard}", str(vineyard)) for a in argv]
    env = dict(os.environ, DATA_DIR=str(vineyard))
    if os.geteuid() == 0 and shutil.which("unshare"):
        cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
               'mount --bind "$1" "$2" && shift 2 && exec "$@"', "sh", str(volume), str(vineyard), *argv]
    else:
        cmd = [a.replace(str(vineyard), str(volume)) for a in argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    if proc.returncode != 0:
        fail(f"`{' '.join(argv)}` exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return proc


def run_steps(volume: Path, workdir: Path, tag: str) -> None:
    for i, stage in enumerate(STAGES):
        as_pod(volume, workdir / f"pod-{tag}-{i}-{stage}",
               [python(), str(STEPS), stage, "--data-dir", "{vineyard}"])
        leaked = list((workdir / f"pod-{tag}-{i}-{stage}" / "vineyard").iterdir()) if os.geteuid() == 0 else []
        expect(not leaked, f"step {stage} wrote outside the bind mount: {leaked}")


def check_outputs(directory: Path) -> dict:
    import numpy as np
    import pandas as pd

    for name in OUTPUTS:
        expect((directory / name).is_file(), f"{name} missing in {directory}")
    train = pd.read_pickle(directory / "train.pkl")
    test = pd.read_pickle(directory / "test.pkl")
    expect(len(train) == 80_000 and len(test) == 20_000, f"rows: train {len(train)}, test {len(test)}")
    model = np.load(directory / "model.npy")
    expect(model.shape == (5,), f"model shape {model.shape}")
    metrics = json.loads((directory / "metrics.json").read_text())
    expect(metrics["r2"] > 0.95, f"r2 {metrics['r2']}")
    expect(abs(metrics["intercept"] - 4.0) < 0.05, f"intercept {metrics['intercept']}")
    for got, want in zip(metrics["coef"], [1.5, -2.0, 0.5, 3.0]):
        expect(abs(got - want) < 0.05, f"coefficients {metrics['coef']}")
    return metrics


def check_steps_on_volume(volume: Volume, workdir: Path) -> dict:
    volume.clean()
    run_steps(volume.path, workdir, "cellar")
    return check_outputs(volume.path)


def check_same_without_cellar(volume: Volume, workdir: Path) -> None:
    plain = workdir / "plain"
    plain.mkdir()
    for stage in STAGES:
        run([python(), str(STEPS), stage, "--data-dir", str(plain)], timeout=300)
    for name in OUTPUTS:
        expect((plain / name).read_bytes() == (volume.path / name).read_bytes(),
               f"{name} differs between the Cellar volume and a plain directory")


def check_kedro_nodes(volume: Volume, workdir: Path, metrics: dict | None) -> None:
    for i, node in enumerate(KEDRO_NODES):
        as_pod(volume.path, workdir / f"pod-kedro-{i}-{node}",
               [python(), str(TESTS / "kedro_node.py"), "--project", str(KEDRO), "--steps", str(STEPS.parent),
                "--vineyard", "{vineyard}", node])
    result = json.loads((volume.path / "kedro" / "metrics.json").read_text())
    for name in ["train.pkl", "test.pkl", "model.pkl"]:
        expect((volume.path / "kedro" / name).is_file(), f"kedro dataset {name} is not on the volume")
    if metrics is not None:
        expect(result == metrics, f"Kedro's metrics {result} differ from the steps' {metrics}")


# ----------------------------------------------------------- definitions


def calls(tree: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)]


def call_name(c: ast.Call) -> str:
    f = c.func
    parts = []
    while isinstance(f, ast.Attribute):
        parts.append(f.attr)
        f = f.value
    if isinstance(f, ast.Name):
        parts.append(f.id)
    return ".".join(reversed(parts))


def constants(tree: ast.Module) -> dict:
    out = {}
    for n in tree.body:
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
            try:
                out[n.targets[0].id] = ast.literal_eval(n.value)
            except ValueError:
                pass
    return out


def keyword(c: ast.Call, name: str):
    for k in c.keywords:
        if k.arg == name:
            return k.value
    return None


def check_parse_all() -> None:
    py = sorted(EXAMPLES.rglob("*.py"))
    yml = sorted(list(EXAMPLES.rglob("*.yaml")) + list(EXAMPLES.rglob("*.yml")))
    expect(len(py) >= 5 and len(yml) >= 7, f"found {len(py)} Python and {len(yml)} YAML files")
    for p in py:
        ast.parse(p.read_text(), filename=str(p))
    for p in yml:
        list(yaml.safe_load_all(p.read_text()))


def steps_stages() -> list[str]:
    tree = ast.parse(STEPS.read_text())
    for c in calls(tree):
        if call_name(c).endswith("add_argument") and c.args and ast.literal_eval(c.args[0]) == "step":
            return ast.literal_eval(keyword(c, "choices"))
    fail("steps.py defines no step choices")


def check_kfp_v1(storage_class: str) -> None:
    tree = ast.parse((EXAMPLES / "kfp-v1" / "pipeline.py").read_text())
    const = constants(tree)
    expect(const.get("STORAGE_CLASS") == storage_class, f"STORAGE_CLASS is {const.get('STORAGE_CLASS')!r}")
    expect(const.get("DATA_DIR") == DATA_DIR and const.get("STEPS") == IMAGE_STEPS, "DATA_DIR/STEPS")
    vops = [c for c in calls(tree) if call_name(c) == "dsl.VolumeOp"]
    expect(len(vops) == 1, "one dsl.VolumeOp")
    sc = keyword(vops[0], "storage_class")
    expect(isinstance(sc, ast.Name) and sc.id == "STORAGE_CLASS", "VolumeOp storage_class=STORAGE_CLASS")
    modes = keyword(vops[0], "modes")
    expect(modes is not None and ast.unparse(modes) == "dsl.VOLUME_MODE_RWO", "VolumeOp modes=dsl.VOLUME_MODE_RWO")
    ops = [c for c in calls(tree) if call_name(c) == "dsl.ContainerOp"]
    expect(ops and "pvolumes={DATA_DIR: volume}" in ast.unparse(ops[0]), "steps mount the volume at DATA_DIR")
    used = [ast.literal_eval(c.args[1]) for c in calls(tree) if call_name(c) == "step"]
    expect(used == STAGES and set(used) <= set(steps_stages()), f"steps {used}")
    expect(any(call_name(c) == "vineyard.delete" for c in calls(tree)), "the claim is deleted at the end")


def check_kfp_v2(storage_class: str) -> None:
    tree = ast.parse((EXAMPLES / "kfp-v2" / "pipeline.py").read_text())
    const = constants(tree)
    expect(const.get("STORAGE_CLASS") == storage_class, f"STORAGE_CLASS is {const.get('STORAGE_CLASS')!r}")
    expect(const.get("DATA_DIR") == DATA_DIR and const.get("STEPS") == IMAGE_STEPS, "DATA_DIR/STEPS")
    names = {call_name(c): c for c in calls(tree)}
    for needed in ["kubernetes.CreatePVC", "kubernetes.mount_pvc", "kubernetes.DeletePVC"]:
        expect(needed in names, f"no {needed}")
    sc = keyword(names["kubernetes.CreatePVC"], "storage_class_name")
    expect(isinstance(sc, ast.Name) and sc.id == "STORAGE_CLASS", "CreatePVC storage_class_name=STORAGE_CLASS")
    mp = keyword(names["kubernetes.mount_pvc"], "mount_path")
    expect(isinstance(mp, ast.Name) and mp.id == "DATA_DIR", "mount_pvc mount_path=DATA_DIR")
    used = [ast.literal_eval(c.args[0]) for c in calls(tree) if call_name(c) == "run_step"]
    expect(used == STAGES, f"steps {used}")


def workflow_checks(path: Path, storage_class: str) -> tuple[list[tuple[str, dict]], list[str]]:
    """Checks an Argo Workflow's claim and mount; returns its Kubernetes parts
    (for schema validation) and the order of its steps."""
    wf = yaml.safe_load(path.read_text())
    expect(wf["kind"] == "Workflow" and wf["apiVersion"] == "argoproj.io/v1alpha1", f"{path.name} is not a Workflow")
    spec = wf["spec"]
    vct = spec["volumeClaimTemplates"]
    expect(len(vct) == 1 and vct[0]["spec"]["storageClassName"] == storage_class,
           f"{path.name}: volumeClaimTemplates must use {storage_class}")
    claim = vct[0]["metadata"]["name"]
    templates = {t["name"]: t for t in spec["templates"]}
    entry = templates[spec["entrypoint"]]
    order = [s[0]["arguments"]["parameters"][0]["value"] for s in entry["steps"]]
    expect(len(order) == 3, f"{path.name}: three sequential steps, got {order}")
    step = templates[entry["steps"][0][0]["template"]]
    mounts = {m["name"]: m["mountPath"] for m in step["container"].get("volumeMounts", [])}
    expect(mounts.get(claim) == DATA_DIR, f"{path.name}: the claim {claim} is not mounted at {DATA_DIR}")
    # The Kubernetes parts of the workflow, for schema validation.
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": vct[0]["metadata"], "spec": vct[0]["spec"]}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{path.stem}-{step['name']}"},
           "spec": {"containers": [dict(step["container"], name="main")],
                    "volumes": [{"name": claim, "persistentVolumeClaim": {"claimName": claim}}]}}
    return [(f"{path.relative_to(EXAMPLES)} volumeClaimTemplates[0]", pvc),
            (f"{path.relative_to(EXAMPLES)} template {step['name']}", pod)], order


def check_argo(storage_class: str) -> None:
    items, order = workflow_checks(EXAMPLES / "argo" / "workflow.yaml", storage_class)
    expect(order == STAGES, f"argo steps {order}")
    container = items[1][1]["spec"]["containers"][0]
    expect(container["command"] == ["python3", IMAGE_STEPS], f"argo command {container['command']}")
    errors = schema_errors(items)
    expect(not errors, "\n".join(errors))


def check_kedro(storage_class: str) -> None:
    catalog = yaml.safe_load((KEDRO / "conf" / "base" / "catalog.yml").read_text())
    outside = {k: v["filepath"] for k, v in catalog.items() if not v["filepath"].startswith(DATA_DIR + "/")}
    expect(not outside, f"Kedro datasets outside {DATA_DIR}: {outside}")
    tree = ast.parse((KEDRO / "src" / "cellar_regression" / "pipeline.py").read_text())
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "steps"]
    expect(imports, "the Kedro pipeline must use the shared steps module")
    steps_funcs = {n.name for n in ast.parse(STEPS.read_text()).body if isinstance(n, ast.FunctionDef)}
    used = {a.name for i in imports for a in i.names}
    expect(used <= steps_funcs, f"steps.py lacks {used - steps_funcs}")
    datasets = set()
    for c in calls(tree):
        if call_name(c) == "node":
            for kw in ("inputs", "outputs"):
                v = ast.literal_eval(keyword(c, kw))
                datasets |= {v} if isinstance(v, str) else set(v)
    intermediate = {d for d in datasets if not d.startswith("params:")}
    expect(intermediate == set(catalog), f"node datasets {sorted(intermediate)} vs catalog {sorted(catalog)}")
    items, order = workflow_checks(KEDRO / "workflow.yaml", storage_class)
    expect(order == KEDRO_NODES, f"kedro workflow nodes {order}")
    errors = schema_errors(items)
    expect(not errors, "\n".join(errors))


def check_pods(storage_class: str, driver: str) -> None:
    items = []
    for path in sorted((EXAMPLES / "pod").glob("*.yaml")):
        for obj in yaml.safe_load_all(path.read_text()):
            if obj:
                items.append((str(path.relative_to(EXAMPLES)), obj))
    errors = schema_errors(items)
    expect(not errors, "\n".join(errors))
    inline = ephemeral = claims = 0
    for source, obj in items:
        if obj["kind"] == "PersistentVolumeClaim":
            claims += 1
            expect(obj["spec"]["storageClassName"] == storage_class, f"{source}: claim class")
        if obj["kind"] != "Pod":
            continue
        spec = obj["spec"]
        stages = []
        for c in spec.get("initContainers", []) + spec["containers"]:
            expect(c["command"][:2] == ["python3", IMAGE_STEPS], f"{source}: {c['name']} does not run steps.py")
            stages.append(c["command"][2])
            expect({m["mountPath"] for m in c["volumeMounts"]} == {DATA_DIR}, f"{source}: mount at {DATA_DIR}")
        expect(stages == STAGES, f"{source}: steps {stages}")
        for v in spec["volumes"]:
            if "csi" in v:
                inline += 1
                expect(v["csi"]["driver"] == driver, f"{source}: inline driver {v['csi']['driver']}")
                expect("size" in v["csi"].get("volumeAttributes", {}), f"{source}: inline volume without size")
            if "ephemeral" in v:
                ephemeral += 1
                expect(v["ephemeral"]["volumeClaimTemplate"]["spec"]["storageClassName"] == storage_class,
                       f"{source}: ephemeral claim class")
    expect(claims == 1 and inline == 1 and ephemeral == 1, "want a PVC/pod pair, an inline and a generic ephemeral pod")


def register(runner: Runner, ctx, volume_dir: str | None, workdir: Path) -> None:
    default = ctx.renders.get("default")
    storage_class = one(default, "StorageClass")["metadata"]["name"] if default else "cellar-system.cellar.csi"
    driver = one(default, "CSIDriver")["metadata"]["name"] if default else "csi.cellar.dev"

    volume = runner.check("examples: volume for the step code", Volume, volume_dir, workdir)
    if volume is not None:
        try:
            metrics = runner.check(f"examples: prepare -> train -> test as separate processes on the {volume.label}, "
                                   "bind-mounted at a path standing for /vineyard", check_steps_on_volume,
                                   volume, workdir)
            if metrics is not None:
                runner.check("examples: the same steps on a plain directory give byte-identical files",
                             check_same_without_cellar, volume, workdir)
            runner.check("examples: the Kedro nodes run one process each with the catalog under /vineyard",
                         check_kedro_nodes, volume, workdir, metrics)
        finally:
            volume.close()

    runner.check("examples: every Python file parses, every YAML file loads", check_parse_all)
    runner.check("examples: Kubeflow Pipelines v1 uses a dsl.VolumeOp of the Cellar class at /vineyard",
                 check_kfp_v1, storage_class)
    runner.check("examples: Kubeflow Pipelines v2 uses kfp.kubernetes CreatePVC/mount_pvc/DeletePVC",
                 check_kfp_v2, storage_class)
    runner.check("examples: Argo workflow claims the Cellar class and mounts it at /vineyard", check_argo,
                 storage_class)
    runner.check("examples: Kedro catalog keeps every dataset under /vineyard", check_kedro, storage_class)
    runner.check("examples: pod/PVC, inline and generic ephemeral pods validate and use Cellar", check_pods,
                 storage_class, driver)
