"""Kubeflow Pipelines v1: prepare data -> train -> test on a Cellar volume.

A `dsl.VolumeOp` creates one claim of the Cellar StorageClass per run; every
step mounts it at /vineyard and exchanges plain files through it (see
../steps/steps.py). Kubernetes creates the volume in the memory of the node
where the first step lands and schedules the later steps onto that node.

    pip install 'kfp>=1.8,<2'
    python3 pipeline.py          # writes pipeline.yaml next to this file
    # then upload pipeline.yaml in the Kubeflow Pipelines UI, or
    # kfp.Client().create_run_from_pipeline_func(linear_regression, arguments={})

Without Cellar the pipeline is the same with another STORAGE_CLASS.
"""

import kfp
from kfp import dsl

# <namespace>.<name>.csi of the Cellar deployment (deploy/README.md).
STORAGE_CLASS = "cellar-system.cellar.csi"
# Built from ../Dockerfile: Debian's python3, numpy, pandas and steps.py.
IMAGE = "cellar-examples:0.1.0"
STEPS = "/opt/cellar-examples/steps.py"
DATA_DIR = "/vineyard"


def step(name: str, stage: str, volume: dsl.PipelineVolume) -> dsl.ContainerOp:
    op = dsl.ContainerOp(
        name=name,
        image=IMAGE,
        command=["python3", STEPS, stage, "--data-dir", DATA_DIR],
        pvolumes={DATA_DIR: volume},
    )
    # Every run starts with an empty claim: a step served from the cache
    # would not write the files the next step reads.
    op.execution_options.caching_strategy.max_cache_staleness = "P0D"
    return op


@dsl.pipeline(
    name="cellar-linear-regression",
    description="Linear regression whose intermediate data stays in node memory (Cellar).",
)
def linear_regression(size: str = "1Gi"):
    vineyard = dsl.VolumeOp(
        name="create-vineyard",
        resource_name="vineyard",
        storage_class=STORAGE_CLASS,
        size=size,
        # One node holds the data; every step runs there.
        modes=dsl.VOLUME_MODE_RWO,
        # The claim belongs to the run: deleting the run deletes it. A failed run
        # keeps it (the delete step below does not run) for inspection until then.
        set_owner_reference=True,
    )
    # Each step takes the volume from the previous one, which also orders them.
    prepare = step("prepare-data", "prepare", vineyard.volume)
    train = step("train", "train", prepare.pvolume)
    test = step("test", "test", train.pvolume)
    # Deleting the claim frees the memory (reclaimPolicy Delete).
    vineyard.delete().after(test)


if __name__ == "__main__":
    kfp.compiler.Compiler().compile(linear_regression, __file__.replace(".py", ".yaml"))
