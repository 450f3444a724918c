"""Not Kedro: the two names the example's pipeline.py imports, so that
tests/deploy can load the pipeline definition without Kedro installed (there
is no PyPI here). kedro_node.py then runs a node the way `kedro run --nodes`
does: inputs from the catalog, the node's function, outputs to the catalog."""
