"""Kedro project settings: the defaults of a Kedro 1.x project (OmegaConfigLoader,
conf/base, and conf/local as the default run environment)."""

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}
