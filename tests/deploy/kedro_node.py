"""Runs one node of the Kedro example as `kedro run --nodes=NAME` would,
with /vineyard in the catalog's file paths standing for --vineyard DIR.

    python3 kedro_node.py --project examples/kedro --steps examples/steps \
        --vineyard DIR NAME

Loads conf/base/catalog.yml and parameters.yml, the node definitions from
src/<package>/pipeline.py (with the kedro shim of tests/deploy), reads the
node's inputs, calls its function, writes its outputs. Supports the dataset
types the example uses: pickle.PickleDataset and json.JSONDataset.
"""

import argparse
import importlib
import json
import pickle
import sys
from pathlib import Path

import yaml

VINEYARD = "/vineyard"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--steps", type=Path, required=True)
    parser.add_argument("--vineyard", type=Path, required=True)
    parser.add_argument("node")
    args = parser.parse_args()

    sys.path[:0] = [str(Path(__file__).parent / "kedro_shim"), str(args.steps), str(args.project / "src")]
    catalog = yaml.safe_load((args.project / "conf/base/catalog.yml").read_text())
    params = yaml.safe_load((args.project / "conf/base/parameters.yml").read_text())
    package = "cellar_regression"
    nodes = {n.name: n for n in importlib.import_module(f"{package}.pipeline").create_pipeline()}
    node = nodes[args.node]

    def path_of(name: str) -> Path:
        filepath = catalog[name]["filepath"]
        if not filepath.startswith(VINEYARD + "/"):
            raise SystemExit(f"dataset {name} is not under {VINEYARD}: {filepath}")
        return args.vineyard / filepath[len(VINEYARD) + 1:]

    def load(name: str):
        if name.startswith("params:"):
            return params[name[len("params:"):]]
        kind = catalog[name]["type"]
        if kind == "pickle.PickleDataset":
            with path_of(name).open("rb") as f:
                return pickle.load(f)
        if kind == "json.JSONDataset":
            return json.loads(path_of(name).read_text())
        raise SystemExit(f"dataset type {kind} is not supported here")

    def save(name: str, value) -> None:
        path = path_of(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        kind = catalog[name]["type"]
        if kind == "pickle.PickleDataset":
            with path.open("wb") as f:
                pickle.dump(value, f)
        elif kind == "json.JSONDataset":
            path.write_text(json.dumps(value))
        else:
            raise SystemExit(f"dataset type {kind} is not supported here")

    result = node.func(*[load(i) for i in node.inputs])
    if len(node.outputs) == 1:
        result = (result,)
    for name, value in zip(node.outputs, result, strict=True):
        save(name, value)
    print(f"kedro node {node.name}: {node.inputs} -> {node.outputs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
