"""Kedro project settings: the defaults (OmegaConfigLoader, conf/base and conf/local)."""
