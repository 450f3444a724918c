"""Stand-ins for kedro.pipeline.node/pipeline: they record the definition."""

from dataclasses import dataclass


@dataclass
class Node:
    func: object
    inputs: list
    outputs: list
    name: str


def _names(value):
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def node(func, inputs=None, outputs=None, *, name=None, **_):
    return Node(func, _names(inputs), _names(outputs), name or func.__name__)


class Pipeline(list):
    pass


def pipeline(nodes, **_):
    return Pipeline(nodes)
