"""The Kubernetes objects the provisioner and the kubelet pass around, and the volume
capability they build from them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from tests.lib import csi

pb, pb_grpc = csi.stubs()


def mount_capability(mode: str = "SINGLE_NODE_WRITER", flags=()):
    cap = pb.VolumeCapability()
    cap.mount.fs_type = ""  # csi-provisioner without --default-fstype sends none
    cap.mount.mount_flags.extend(flags)
    cap.access_mode.mode = pb.VolumeCapability.AccessMode.Mode.Value(mode)
    return cap


@dataclass
class StorageClass:
    name: str = "cellar-system.cellar.csi"
    parameters: dict = field(default_factory=dict)
    mount_options: tuple = ()
    binding_mode: str = "WaitForFirstConsumer"


@dataclass
class PersistentVolume:
    name: str
    volume_handle: str
    capacity_bytes: int
    volume_context: dict
    access_mode: str
    mount_options: tuple
    # The PV's required node affinity, from CreateVolume's accessible_topology as
    # csi-provisioner writes it: terms OR'ed, each {label: value} AND'ed (In [value]).
    topology: list
    claim: str


def affinity_admits(terms: list, labels: dict) -> bool:
    """Whether a node with `labels` matches the node affinity `terms` (the scheduler's
    check for a bound PV; with a node's NodeGetInfo segments as labels, the provisioner's
    check of which node deletes it). No terms: no constraint."""
    return not terms or any(all(labels.get(k) == v for k, v in term.items()) for term in terms)


@dataclass
class Pod:
    name: str
    namespace: str = "default"
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    service_account: str = "default"
    node_name: str = ""

