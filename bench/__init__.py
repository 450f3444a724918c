"""Cellar's benchmarks; the Python ones run as modules from the repo root
(`python3 -m bench.pipeline.run`), so they import the test library (tests.lib)."""
