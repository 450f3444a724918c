"""prepare data -> train -> test, with the functions of ../steps/steps.py.

The nodes are the pure functions of the shared step module; the catalog
(conf/base/catalog.yml) decides where their inputs and outputs live, here
under /vineyard on a Cellar volume.
"""

from kedro.pipeline import Pipeline, node, pipeline

from steps import evaluate, fit, make_dataset


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                make_dataset,
                inputs=["params:rows", "params:seed"],
                outputs=["train_data", "test_data"],
                name="prepare_data",
            ),
            node(fit, inputs="train_data", outputs="model", name="train"),
            node(evaluate, inputs=["test_data", "model"], outputs="metrics", name="test"),
        ]
    )
