"""The kubelet's CSI volume plugin, with a CSIDriver of podInfoOnMount: true and
attachRequired: false: registration (GetPluginInfo, NodeGetInfo), NodeGetCapabilities,
NodeStageVolume only if STAGE_UNSTAGE_VOLUME is advertised, NodePublishVolume to
<root>/pods/<pod-uid>/volumes/kubernetes.io~csi/<pv>/mount with the PV's volume context
plus the pod-info attributes, NodeGetVolumeStats, and tear-down in the kubelet's order."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

from tests.lib import csi
from tests.lib.calls import logged_call
from tests.lib.objects import PersistentVolume, Pod, affinity_admits, mount_capability

pb, pb_grpc = csi.stubs()


@dataclass
class Mounted:
    pod: Pod
    pv: PersistentVolume
    target: Path
    staging: Path | None
    readonly: bool


class Kubelet:
    def __init__(self, channel: grpc.Channel, root: Path, node_name: str, calls: list):
        self.identity = pb_grpc.IdentityStub(channel)
        self.node = pb_grpc.NodeStub(channel)
        self.root = root  # stands for /var/lib/kubelet
        self.node_name = node_name
        self.calls = calls
        self.driver = ""
        self.node_id = ""
        self.topology: dict = {}
        self.max_volumes = 0
        self.stats_log: list = []

    def _call(self, method: str, request, timeout: float = 60.0, stub=None):
        return logged_call(self.calls, "kubelet", stub or self.node, method, request, timeout)

    def register(self) -> None:
        """node-driver-registrar and the kubelet's plugin watcher: the driver's name, then
        its node id and topology (which the kubelet writes to the CSINode object and the
        Node's labels)."""
        self.driver = self._call("GetPluginInfo", pb.GetPluginInfoRequest(), stub=self.identity).name
        info = self._call("NodeGetInfo", pb.NodeGetInfoRequest())
        self.node_id = info.node_id
        self.topology = dict(info.accessible_topology.segments)
        self.max_volumes = info.max_volumes_per_node

    @property
    def labels(self) -> dict:
        """The Node's labels: what every kubelet sets, and the driver's topology."""
        return {"kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux",
                **self.topology}

    def node_caps(self) -> set:
        caps = self._call("NodeGetCapabilities", pb.NodeGetCapabilitiesRequest())
        return {c.rpc.type for c in caps.capabilities}

    def _pod_dir(self, pod: Pod) -> Path:
        return self.root / "pods" / pod.uid

    def _csi_dir(self, pod: Pod, pv: PersistentVolume) -> Path:
        return self._pod_dir(pod) / "volumes" / "kubernetes.io~csi" / pv.name

    def _staging(self, pv: PersistentVolume) -> Path:
        digest = hashlib.sha256(pv.volume_handle.encode()).hexdigest()
        return self.root / "plugins" / "kubernetes.io" / "csi" / self.driver / digest / "globalmount"

    def mount(self, pod: Pod, pv: PersistentVolume, readonly: bool = False) -> Mounted:
        """MountDevice (stage, when advertised) then SetUp (publish) for one pod volume."""
        if not affinity_admits(pv.topology, self.labels):
            # The scheduler only places a pod on a node that matches the PV's affinity.
            raise RuntimeError(f"PV {pv.name}'s node affinity {pv.topology} excludes node "
                               f"{self.node_name} (labels {self.labels})")
        pod.node_name = self.node_name
        caps = self.node_caps()
        cap = mount_capability(pv.access_mode, pv.mount_options)
        staging = None
        if pb.NodeServiceCapability.RPC.STAGE_UNSTAGE_VOLUME in caps:
            staging = self._staging(pv)
            staging.parent.mkdir(parents=True, exist_ok=True)
            self._call("NodeStageVolume", pb.NodeStageVolumeRequest(
                volume_id=pv.volume_handle, staging_target_path=str(staging),
                volume_capability=cap, volume_context=pv.volume_context))
        csi_dir = self._csi_dir(pod, pv)
        csi_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        # The kubelet records what it mounted next to the target, then leaves creating
        # the target itself to the driver.
        (csi_dir / "vol_data.json").write_text(json.dumps({
            "attachmentID": "", "driverName": self.driver, "nodeName": self.node_name,
            "specVolID": pv.name, "volumeHandle": pv.volume_handle,
            "volumeLifecycleMode": "Persistent"}))
        target = csi_dir / "mount"
        context = dict(pv.volume_context)
        # CSIDriver podInfoOnMount: true.
        context.update({"csi.storage.k8s.io/pod.name": pod.name,
                        "csi.storage.k8s.io/pod.namespace": pod.namespace,
                        "csi.storage.k8s.io/pod.uid": pod.uid,
                        "csi.storage.k8s.io/serviceAccount.name": pod.service_account,
                        "csi.storage.k8s.io/ephemeral": "false"})
        req = pb.NodePublishVolumeRequest(volume_id=pv.volume_handle, target_path=str(target),
                                          volume_capability=cap, readonly=readonly,
                                          volume_context=context)
        if staging is not None:
            req.staging_target_path = str(staging)
        self._call("NodePublishVolume", req)
        return Mounted(pod=pod, pv=pv, target=target, staging=staging, readonly=readonly)

    def volume_stats(self, m: Mounted) -> dict:
        """What the kubelet's volume stats provider asks (capability checked first)."""
        caps = self.node_caps()
        if pb.NodeServiceCapability.RPC.GET_VOLUME_STATS not in caps:
            return {}
        # volume_path is the publish target; the staging path rides along when staged.
        r = self._call("NodeGetVolumeStats", pb.NodeGetVolumeStatsRequest(
            volume_id=m.pv.volume_handle, volume_path=str(m.target),
            staging_target_path=str(m.staging) if m.staging else ""))
        out = {"abnormal": r.volume_condition.abnormal, "message": r.volume_condition.message}
        for u in r.usage:
            unit = "bytes" if u.unit == pb.VolumeUsage.BYTES else "inodes"
            out[unit] = {"total": u.total, "used": u.used, "available": u.available}
        self.stats_log.append((time.time(), out))
        return out

    def unmount(self, m: Mounted, last_on_node: bool = True) -> None:
        """TearDown (unpublish), the kubelet's own clean-up, then UnmountDevice (unstage)
        once no pod on the node uses the volume."""
        self._call("NodeUnpublishVolume", pb.NodeUnpublishVolumeRequest(
            volume_id=m.pv.volume_handle, target_path=str(m.target)))
        csi_dir = m.target.parent
        if m.target.exists():
            os.rmdir(m.target)
        (csi_dir / "vol_data.json").unlink(missing_ok=True)
        os.rmdir(csi_dir)
        if m.staging is not None and last_on_node:
            self._call("NodeUnstageVolume", pb.NodeUnstageVolumeRequest(
                volume_id=m.pv.volume_handle, staging_target_path=str(m.staging)))

    def remove_pod_dir(self, pod: Pod) -> None:
        subprocess.run(["rm", "-rf", "--one-file-system", str(self._pod_dir(pod))], check=False)


class StatsPoller:
    """Polls NodeGetVolumeStats while a pod runs, as the kubelet's stats provider does
    (every minute there; much faster here so short steps are seen)."""

    def __init__(self, kubelet: Kubelet, mounted: Mounted, period: float = 0.5):
        self.kubelet, self.mounted, self.period = kubelet, mounted, period
        self.samples: list = []
        self.errors: list = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.samples.append(self.kubelet.volume_stats(self.mounted))
            except grpc.RpcError as e:
                self.errors.append(f"{e.code().name}: {e.details()}")
            self._stop.wait(self.period)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        try:  # one last sample after the pod is done
            self.samples.append(self.kubelet.volume_stats(self.mounted))
        except grpc.RpcError as e:
            self.errors.append(f"{e.code().name}: {e.details()}")

    def max_used(self) -> int:
        return max((s.get("bytes", {}).get("used", 0) for s in self.samples), default=0)
