"""Kedro project for the Cellar linear-regression example."""

__version__ = "0.1.0"
