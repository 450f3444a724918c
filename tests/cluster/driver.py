"""What `kubectl apply -k deploy/` installs on the test cluster's one node, by name, and
the node's capacity as the scheduler sees it (CSIStorageCapacity)."""

from __future__ import annotations

from tests.cluster import kube
from tests.lib.csi import DRIVER, TOPOLOGY_KEY  # noqa: F401 - the cluster checks take them from here
from tests.lib.sizes import parse_size

NODE = "cellar-node"
SYSTEM_NS = "cellar-system"
STORAGE_CLASS = "cellar-system.cellar.csi"
NODE_CAPACITY = 4 << 30            # deploy/settings.yaml


def capacity_of(storage_class: str = STORAGE_CLASS, namespace: str = SYSTEM_NS) -> int | None:
    """The node's capacity for a StorageClass, as the scheduler sees it."""
    items = kube.get("csistoragecapacities", namespace=namespace)["items"]
    for c in items:
        labels = c.get("nodeTopology", {}).get("matchLabels", {})
        if c["storageClassName"] == storage_class and labels.get(TOPOLOGY_KEY) == NODE:
            return parse_size(c.get("capacity", "0"))
    return None
