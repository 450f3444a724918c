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
    topology: dict          # the node affinity the PV carries (from accessible_topology)
    claim: str


@dataclass
class Pod:
    name: str
    namespace: str = "default"
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    service_account: str = "default"
    node_name: str = ""

