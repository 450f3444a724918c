"""The KFP v1 pipeline of examples/kfp-v1 twice, compiled with the kfp 1.8 SDK for the
benchmark (run.py): the same three steps (examples/steps/steps.py) on the same data,

  cellar    the example as users have it: a VolumeOp claim of the Cellar class, the
            steps exchange files under /vineyard;
  minio     the KFP default without a shared volume: each step's files are output
            artifacts, which Argo uploads to the artifact repository (MinIO in the
            cluster, as KFP installs it) and downloads into the next step's pod.

    python pipelines.py OUTDIR     # writes OUTDIR/cellar.yaml and OUTDIR/minio.yaml

Both take `rows` (the number of samples prepare draws: 40 bytes each, in the pickles).
"""

import importlib.util
import sys
from pathlib import Path

from kfp import compiler, dsl


def _example():
    """examples/kfp-v1/pipeline.py, loaded from its file (its folder is no package)."""
    path = Path(__file__).resolve().parents[2] / "examples" / "kfp-v1" / "pipeline.py"
    spec = importlib.util.spec_from_file_location("kfp_v1_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = _example()

PY = ["python3", example.STEPS]


@dsl.pipeline(name="cellar-bench-cellar")
def on_cellar(rows: int = 1000, size: str = "1Gi"):
    vineyard = dsl.VolumeOp(name="create-vineyard", resource_name="vineyard",
                            storage_class=example.STORAGE_CLASS, size=size,
                            modes=dsl.VOLUME_MODE_RWO, set_owner_reference=True)
    prepare = example.step("prepare-data", "prepare", vineyard.volume)
    prepare.command += ["--rows", str(rows)]
    train = example.step("train", "train", prepare.pvolume)
    test = example.step("test", "test", train.pvolume)
    vineyard.delete().after(test)


def _op(name: str, stage: str, inputs: dict, outputs: dict, extra=()) -> dsl.ContainerOp:
    """A step whose files come and go as artifacts, in /data of its own pod."""
    op = dsl.ContainerOp(
        name=name, image=example.IMAGE,
        command=PY + [stage, "--data-dir", "/data", *extra],
        artifact_argument_paths=[dsl.InputArgumentPath(a, path=f"/data/{n}")
                                 for n, a in inputs.items()],
        file_outputs={key: f"/data/{n}" for key, n in outputs.items()})
    op.execution_options.caching_strategy.max_cache_staleness = "P0D"
    return op


@dsl.pipeline(name="cellar-bench-minio")
def on_minio(rows: int = 1000):
    prepare = _op("prepare-data", "prepare", {}, {"train": "train.pkl", "test": "test.pkl"},
                  ["--rows", str(rows)])
    train = _op("train", "train", {"train.pkl": prepare.outputs["train"]}, {"model": "model.npy"})
    _op("test", "test", {"test.pkl": prepare.outputs["test"], "model.npy": train.outputs["model"]},
        {"metrics": "metrics.json"})


if __name__ == "__main__":
    out = Path(sys.argv[1])
    compiler.Compiler().compile(on_cellar, str(out / "cellar.yaml"))
    compiler.Compiler().compile(on_minio, str(out / "minio.yaml"))
