"""The examples as their engines run them on the real cluster: Argo Workflows built from
its Go module, the KFP v1 pipeline compiled by the KFP SDK, the Argo and Kedro workflows
(checks.py). Standard library only, beside ../kube.py."""
