"""One `kedro run` of a project, timed per node by Kedro hooks; prints one JSON line.

    python kedro_run.py PROJECT_DIR CONF_SOURCE ENV KEY=VALUE...

Runs in the venv of the Kedro under test (1.x for Cellar and MinIO, 0.18 for
vineyard-kedro): KedroSession.create + session.run, as `kedro run` does, with a hook
registered on the session. The KEY=VALUE pairs are the run's parameters (runtime_params
in Kedro >= 0.19, extra_params in 0.18), which the catalogs use for paths and endpoints.

A node's time runs from the first load of its inputs to the last save of its outputs
(before_dataset_loaded .. after_dataset_saved, falling back to before_node_run ..
after_node_run): before_node_run/after_node_run alone bracket the function only, not the
catalog's I/O, which is what the systems differ in. Load, call and save are kept apart too.
"""

from __future__ import annotations

import inspect
import json
import sys
import time
from pathlib import Path

from kedro.framework.hooks import hook_impl
from kedro.framework.project import configure_project
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project


class NodeTimes:
    def __init__(self):
        self.nodes: dict[str, dict] = {}

    def _entry(self, node) -> dict:
        return self.nodes.setdefault(node.name, {"start": None, "called": None,
                                                 "returned": None, "end": None})

    @hook_impl
    def before_dataset_loaded(self, dataset_name, node):
        entry = self._entry(node)
        if entry["start"] is None:
            entry["start"] = time.perf_counter()

    @hook_impl
    def before_node_run(self, node):
        entry = self._entry(node)
        entry["called"] = time.perf_counter()
        if entry["start"] is None:
            entry["start"] = entry["called"]

    @hook_impl
    def after_node_run(self, node):
        entry = self._entry(node)
        entry["returned"] = entry["end"] = time.perf_counter()

    @hook_impl
    def after_dataset_saved(self, dataset_name, data, node):
        self._entry(node)["end"] = time.perf_counter()

    def result(self) -> dict:
        out = {}
        for name, e in self.nodes.items():
            out[name] = {"total": e["end"] - e["start"], "load": e["called"] - e["start"],
                         "call": e["returned"] - e["called"], "save": e["end"] - e["returned"]}
        return out


def main() -> int:
    project, conf_source, env, *pairs = sys.argv[1:]
    params = {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        params[key] = int(value) if value.isdigit() else value
    metadata = bootstrap_project(Path(project))
    configure_project(metadata.package_name)
    create = inspect.signature(KedroSession.create).parameters
    key = "runtime_params" if "runtime_params" in create else "extra_params"
    kwargs = {"project_path": Path(project), "env": env, "conf_source": conf_source, key: params}
    if "save_on_close" in create:
        kwargs["save_on_close"] = False
    times = NodeTimes()
    started = time.perf_counter()
    with KedroSession.create(**kwargs) as session:
        session._hook_manager.register(times)  # no public way to add a hook for one run
        session.run()
    wall = time.perf_counter() - started
    import kedro
    print(json.dumps({"nodes": times.result(), "session": wall, "kedro": kedro.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
