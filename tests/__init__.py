"""Cellar's test harnesses, as one package: run every Python entry point from the repo
root as a module (`python3 -m tests.e2e.e2e_test`), and `tests.lib` is importable with
no path set up by hand."""
