"""Kubeflow Pipelines v2: prepare data -> train -> test on a Cellar volume.

`kfp.kubernetes.CreatePVC` makes one claim of the Cellar StorageClass per
run, `mount_pvc` mounts it at /vineyard in every step, and `DeletePVC` frees
the memory at the end. The steps exchange plain files (../steps/steps.py).

    pip install 'kfp>=2.7' kfp-kubernetes
    python3 pipeline.py          # writes pipeline.yaml next to this file

Without Cellar the pipeline is the same with another STORAGE_CLASS.
"""

from kfp import compiler, dsl, kubernetes

# <namespace>.<name>.csi of the Cellar deployment (deploy/README.md).
STORAGE_CLASS = "cellar-system.cellar.csi"
# Built from ../Dockerfile: Debian's python3, numpy, pandas and steps.py.
IMAGE = "cellar-examples:0.1.0"
STEPS = "/opt/cellar-examples/steps.py"
DATA_DIR = "/vineyard"


@dsl.container_component
def step(stage: str):
    return dsl.ContainerSpec(
        image=IMAGE,
        command=["python3", STEPS],
        args=[stage, "--data-dir", DATA_DIR],
    )


def run_step(stage: str, pvc_name, after=None):
    task = step(stage=stage)
    task.set_display_name(stage)
    # Every run starts with an empty claim: a step served from the cache
    # would not write the files the next step reads.
    task.set_caching_options(False)
    kubernetes.mount_pvc(task, pvc_name=pvc_name, mount_path=DATA_DIR)
    if after is not None:
        task.after(after)
    return task


@dsl.pipeline(
    name="cellar-linear-regression",
    description="Linear regression whose intermediate data stays in node memory (Cellar).",
)
def linear_regression(size: str = "1Gi"):
    pvc = kubernetes.CreatePVC(
        pvc_name_suffix="-vineyard",
        # One node holds the data; every step runs there.
        access_modes=["ReadWriteOnce"],
        size=size,
        storage_class_name=STORAGE_CLASS,
    )
    # A cached CreatePVC would hand out the name of a claim already deleted.
    pvc.set_caching_options(False)
    prepare = run_step("prepare", pvc.outputs["name"])
    train = run_step("train", pvc.outputs["name"], after=prepare)
    test = run_step("test", pvc.outputs["name"], after=train)
    # Deleting the claim frees the memory (reclaimPolicy Delete).
    delete = kubernetes.DeletePVC(pvc_name=pvc.outputs["name"]).after(test)
    delete.set_caching_options(False)


if __name__ == "__main__":
    compiler.Compiler().compile(linear_regression, __file__.replace(".py", ".yaml"))
