"""The external-provisioner, as csi-provisioner runs in the node plugin's pod
(--node-deployment, --feature-gates=Topology=true, --enable-capacity,
--extra-create-metadata): its start-up calls, GetCapacity for its node's segment,
CreateVolume("pvc-<uid>", pvc/pv metadata, requisite = preferred = the selected node),
DeleteVolume."""

from __future__ import annotations

import uuid

import grpc

from tests.lib import csi
from tests.lib.calls import logged_call
from tests.lib.objects import (PersistentVolume, StorageClass, affinity_admits,
                               mount_capability)

pb, pb_grpc = csi.stubs()


class Provisioner:
    def __init__(self, channel: grpc.Channel, calls: list):
        self.identity = pb_grpc.IdentityStub(channel)
        self.controller = pb_grpc.ControllerStub(channel)
        self.node = pb_grpc.NodeStub(channel)
        self.calls = calls
        self.driver = ""
        self.node_topology: dict = {}
        self.controller_caps: set = set()

    def _call(self, stub, method: str, request, timeout: float = 60.0):
        return logged_call(self.calls, "provisioner", stub, method, request, timeout)

    def connect(self) -> None:
        """What csi-provisioner does at start-up, in its order."""
        info = self._call(self.identity, "GetPluginInfo", pb.GetPluginInfoRequest())
        self.driver = info.name
        self._call(self.identity, "Probe", pb.ProbeRequest())
        plugin_caps = self._call(self.identity, "GetPluginCapabilities",
                                 pb.GetPluginCapabilitiesRequest())
        services = {c.service.type for c in plugin_caps.capabilities if c.HasField("service")}
        if pb.PluginCapability.Service.CONTROLLER_SERVICE not in services:
            raise RuntimeError("the driver does not advertise CONTROLLER_SERVICE")
        caps = self._call(self.controller, "ControllerGetCapabilities",
                          pb.ControllerGetCapabilitiesRequest())
        self.controller_caps = {c.rpc.type for c in caps.capabilities}
        # --node-deployment: the provisioner learns its own node's topology segment.
        node_info = self._call(self.node, "NodeGetInfo", pb.NodeGetInfoRequest())
        self.node_topology = dict(node_info.accessible_topology.segments)

    def capacity(self, sc: StorageClass, access_mode: str = "SINGLE_NODE_WRITER") -> int:
        """--enable-capacity: one GetCapacity per (StorageClass, node segment)."""
        req = pb.GetCapacityRequest(volume_capabilities=[mount_capability(access_mode)],
                                    parameters=sc.parameters)
        req.accessible_topology.segments.update(self.node_topology)
        return self._call(self.controller, "GetCapacity", req).available_capacity

    def provision(self, sc: StorageClass, claim: str, namespace: str, request_bytes: int,
                  selected_node_topology: dict, access_mode: str = "SINGLE_NODE_WRITER"
                  ) -> PersistentVolume:
        """CreateVolume as csi-provisioner sends it once the scheduler picked a node
        (annotation volume.kubernetes.io/selected-node) for a WaitForFirstConsumer claim."""
        pvc_uid = str(uuid.uuid4())
        pv_name = f"pvc-{pvc_uid}"
        params = dict(sc.parameters)
        params.update({"csi.storage.k8s.io/pvc/name": claim,
                       "csi.storage.k8s.io/pvc/namespace": namespace,
                       "csi.storage.k8s.io/pv/name": pv_name})
        req = pb.CreateVolumeRequest(
            name=pv_name, parameters=params,
            volume_capabilities=[mount_capability(access_mode, sc.mount_options)])
        req.capacity_range.required_bytes = request_bytes
        # Topology feature gate with a selected node: requisite holds the selected node's
        # segment (the only node here) and preferred starts with it.
        req.accessibility_requirements.requisite.add().segments.update(selected_node_topology)
        req.accessibility_requirements.preferred.add().segments.update(selected_node_topology)
        resp = self._call(self.controller, "CreateVolume", req, timeout=120.0)
        v = resp.volume
        topo = [dict(t.segments) for t in v.accessible_topology if t.segments]
        return PersistentVolume(name=pv_name, volume_handle=v.volume_id,
                                capacity_bytes=v.capacity_bytes,
                                volume_context=dict(v.volume_context), access_mode=access_mode,
                                mount_options=tuple(sc.mount_options), topology=topo,
                                claim=f"{namespace}/{claim}")

    def delete(self, pv: PersistentVolume) -> None:
        # --node-deployment: an instance deletes only a PV whose affinity its own node's
        # NodeGetInfo segments match (VolumeIsAccessible); the others leave it alone.
        if not affinity_admits(pv.topology, self.node_topology):
            raise RuntimeError(f"PV {pv.name} ({pv.topology}) is not this provisioner's to "
                               f"delete (node segments {self.node_topology})")
        self._call(self.controller, "DeleteVolume", pb.DeleteVolumeRequest(volume_id=pv.volume_handle),
                   timeout=120.0)

