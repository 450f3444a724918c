"""Registers the project's pipelines with Kedro."""

from kedro.pipeline import Pipeline

from cellar_regression.pipeline import create_pipeline


def register_pipelines() -> dict[str, Pipeline]:
    regression = create_pipeline()
    return {"__default__": regression, "regression": regression}
