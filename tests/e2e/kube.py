"""Kubernetes, played against a real `cellar node`: the node process, the
external-provisioner and the kubelet, speaking CSI over the node's unix socket.

The RPCs, their order, their parameters and the paths are the ones the real
parties use (csi-provisioner with --node-deployment, --feature-gates=Topology=true,
--enable-capacity and --extra-create-metadata; the kubelet's csi plugin with a
CSIDriver of podInfoOnMount: true and attachRequired: false):

  registration   node-driver-registrar / kubelet: GetPluginInfo, NodeGetInfo
  provisioner    GetPluginInfo, Probe, GetPluginCapabilities, ControllerGetCapabilities,
                 NodeGetInfo (its own node's topology), GetCapacity for that segment,
                 CreateVolume("pvc-<uid>", pvc/pv metadata, requisite = preferred =
                 the selected node), DeleteVolume
  kubelet        NodeGetCapabilities, NodeStageVolume only if STAGE_UNSTAGE_VOLUME is
                 advertised, NodePublishVolume to
                 <root>/pods/<pod-uid>/volumes/kubernetes.io~csi/<pv>/mount with the
                 PV's volume context plus the pod-info attributes, NodeGetVolumeStats,
                 and tear-down: NodeUnpublishVolume, NodeUnstageVolume, removal of the
                 kubelet's own files.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import grpc

REPO = Path(__file__).resolve().parents[2]
PROTO = REPO / "proto" / "csi.proto"
DRIVER = "csi.cellar.dev"
TOPOLOGY_KEY = "topology.csi.cellar.dev/node"


# ---------------------------------------------------------------------------
# Generated stubs: built at run time from proto/csi.proto, never committed.

def load_stubs():
    """Generates the Python CSI stubs (once per proto content) and imports them."""
    digest = hashlib.sha256(PROTO.read_bytes()).hexdigest()[:16]
    out = Path(tempfile.gettempdir()) / f"cellar-e2e-stubs-{digest}"
    if not (out / "csi_pb2_grpc.py").exists():
        tmp = Path(tempfile.mkdtemp(prefix="cellar-e2e-stubs-"))
        subprocess.run(["protoc", f"--python_out={tmp}", f"--grpc_out={tmp}",
                        "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
                        f"-I{PROTO.parent}", str(PROTO)], check=True)
        try:
            os.rename(tmp, out)  # atomic: a concurrent run sees all or nothing
        except OSError:
            subprocess.run(["rm", "-rf", str(tmp)], check=False)
    if str(out) not in sys.path:
        sys.path.insert(0, str(out))
    import csi_pb2  # noqa: E402
    import csi_pb2_grpc  # noqa: E402
    return csi_pb2, csi_pb2_grpc


pb, pb_grpc = load_stubs()


# ---------------------------------------------------------------------------
# Mount helpers (host side).

def mounts_below(root: Path) -> list[str]:
    """Mount points at or below `root` in this namespace, deepest first."""
    root_s = str(root).rstrip("/")
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == root_s or mp.startswith(root_s + "/"):
                found.append(mp)
    return sorted(set(found), key=lambda p: (-p.count("/"), p))


def unmount_below(root: Path) -> None:
    for _ in range(8):
        points = mounts_below(root)
        if not points:
            return
        for mp in points:
            subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL, check=False)


def shmem_bytes() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Shmem:"):
                return int(line.split()[1]) * 1024
    return 0


def shmem_outside_others(root: Path) -> int:
    """Shmem minus what the other tmpfs mounts of this namespace (not under root) hold:
    the shared memory this run is answerable for, steady while others on the machine
    fill and empty their own tmpfs mounts."""
    prefix = str(root).rstrip("/") + "/"
    seen, others = set(), 0
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            mp = fields[4].encode().decode("unicode_escape")
            if fstype != "tmpfs" or mp.startswith(prefix) or fields[2] in seen:
                continue
            seen.add(fields[2])  # one superblock may be mounted at several places
            try:
                st = os.statvfs(mp)
            except OSError:
                continue
            others += (st.f_blocks - st.f_bfree) * st.f_frsize
    return shmem_bytes() - others


def mem_available_bytes() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


# ---------------------------------------------------------------------------
# The node plugin process.

@dataclass
class CellarNode:
    """One `cellar node` process with its socket, state dir and log under `home`."""
    home: Path
    binary: Path = REPO / "build" / "cellar"
    node_id: str = "e2e-node"
    capacity: str = "1Gi"
    passthrough: bool = True
    max_volumes: int = 64
    log_level: str = "info"
    fd_holder: Path | None = None   # --fd-holder: a CellarHolder's socket
    extra_args: tuple = ()          # more flags, after the ones above
    # Each start logs to a file of its own (cellar.log, cellar.2.log, ...), so the two
    # processes of a takeover can be told apart.
    log_per_start: bool = False
    starts: int = 0
    proc: subprocess.Popen | None = None

    @property
    def socket(self) -> Path:
        return self.home / "csi.sock"

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    @property
    def log_path(self) -> Path:
        if self.log_per_start and self.starts > 1:
            return self.home / f"cellar.{self.starts}.log"
        return self.home / "cellar.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "cellar.pid"

    def args(self) -> list[str]:
        args = [str(self.binary), "node", "--endpoint", f"unix://{self.socket}",
                "--node-id", self.node_id, "--state-dir", str(self.state_dir),
                "--capacity", self.capacity, "--max-volumes", str(self.max_volumes),
                "--log-level", self.log_level, "--driver-name", DRIVER]
        if not self.passthrough:
            args.append("--no-passthrough")
        if self.fd_holder is not None:
            args += ["--fd-holder", str(self.fd_holder)]
        return args + list(self.extra_args)

    def _spawn(self) -> subprocess.Popen:
        self.home.mkdir(parents=True, exist_ok=True)
        if self.log_per_start:
            self.starts += 1
        log = open(self.log_path, "ab")
        # Its own session: a Ctrl-C at the terminal reaches the harness, which then
        # tears down in order, not the daemon.
        proc = subprocess.Popen(self.args(), stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        log.close()
        self.pid_file.write_text(f"{proc.pid}\n")
        return proc

    def start(self, timeout: float = 30.0) -> grpc.Channel:
        self.proc = self._spawn()
        return self._wait_ready(timeout)

    def takeover(self, timeout: float = 30.0) -> tuple[grpc.Channel, int]:
        """Starts a second process with the same arguments while this one runs, as an
        upgrade does. Returns once the old process has exited (with its exit code) and
        the new one answers Probe: until the hand-over completes the socket may still
        be answered by the old one."""
        old = self.proc
        if old is None or old.poll() is not None:
            raise RuntimeError("takeover: no running process to take over from")
        self.proc = self._spawn()
        deadline = time.monotonic() + timeout
        while old.poll() is None:
            if self.proc.poll() is not None:
                self.proc, new = old, self.proc
                raise RuntimeError(f"the new cellar node exited with {new.returncode} while "
                                   f"taking over:\n{self.log()}")
            if time.monotonic() > deadline:
                new, self.proc = self.proc, old
                new.kill()
                new.wait()
                raise RuntimeError(f"the old cellar node (pid {old.pid}) still runs {timeout}s "
                                   f"after a takeover started:\n{self.log()}")
            time.sleep(0.02)
        return self._wait_ready(max(1.0, deadline - time.monotonic())), old.returncode

    def _wait_ready(self, timeout: float) -> grpc.Channel:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cellar node exited with {self.proc.returncode}:\n{self.log()}")
            if self.socket.exists():
                # A fresh channel per attempt: the socket may be a stale one (a restart)
                # or the old process's (a takeover), and a channel that failed to connect
                # backs off for seconds before it looks again.
                channel = grpc.insecure_channel(f"unix://{self.socket}")
                try:
                    r = pb_grpc.IdentityStub(channel).Probe(pb.ProbeRequest(), timeout=1.0)
                    if not r.HasField("ready") or r.ready.value:
                        return channel
                except grpc.RpcError:
                    pass
                channel.close()
            time.sleep(0.05)
        self.stop(sig=signal.SIGKILL)
        raise RuntimeError(f"cellar node did not become ready in {timeout}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        rc = end_process(self.proc, sig, timeout)
        self.proc = None
        self.pid_file.unlink(missing_ok=True)
        return rc

    def log(self) -> str:
        return tail(self.log_path)


def end_process(proc: subprocess.Popen | None, sig: int, timeout: float) -> int | None:
    """Sends sig, waits, SIGKILLs after timeout; the exit code (None: no process)."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def tail(path: Path, chars: int = 6000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@dataclass
class CellarHolder:
    """One `cellar fd-holder` process: it holds the FUSE connection's descriptors for
    the `cellar node` started with `--fd-holder <socket>`, so the connection outlives a
    crash of the node."""
    home: Path
    binary: Path = REPO / "build" / "cellar"
    log_level: str = "info"
    proc: subprocess.Popen | None = None

    @property
    def socket(self) -> Path:
        return self.home / "holder.sock"

    @property
    def log_path(self) -> Path:
        return self.home / "holder.log"

    def _socket_id(self):
        try:
            st = os.lstat(self.socket)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_ctime_ns) if stat.S_ISSOCK(st.st_mode) else None

    def start(self, timeout: float = 10.0) -> None:
        """Starts it and waits for its socket. A socket left by a holder that died is
        there already; readiness is a socket that was not there before."""
        self.home.mkdir(parents=True, exist_ok=True)
        before = self._socket_id()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(self.binary), "fd-holder", "--socket", str(self.socket),
                                      "--log-level", self.log_level],
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cellar fd-holder exited with {self.proc.returncode}:\n"
                                   f"{self.log()}")
            now = self._socket_id()
            if now is not None and now != before:
                return
            time.sleep(0.02)
        self.stop(sig=signal.SIGKILL)
        raise RuntimeError(f"cellar fd-holder made no socket in {timeout}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        rc = end_process(self.proc, sig, timeout)
        self.proc = None
        return rc

    def log(self) -> str:
        return tail(self.log_path)


def stale_nodes(root: Path, commands=(b"node", b"fd-holder")) -> list[int]:
    """Pids of `cellar node` (and `cellar fd-holder`) processes whose state dir or socket
    lies under root: what an interrupted run left behind (its pid file may be gone with
    it)."""
    prefix = str(root).rstrip("/").encode() + b"/"
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and argv[0].endswith(b"cellar") and argv[1] in commands and any(
                a.startswith(prefix) or a.startswith(b"unix://" + prefix) for a in argv):
            pids.append(int(entry.name))
    return pids


def kill_stale_node(home: Path) -> None:
    """Stops every daemon an interrupted run left under home (its pid file is only a
    hint; the command line says which state dir a process serves, and pids get reused)."""
    (home / "cellar.pid").unlink(missing_ok=True)
    for pid in stale_nodes(home):
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                try:  # reap it if it is our child; otherwise just wait
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                time.sleep(0.05)
            if not Path(f"/proc/{pid}").exists():
                break


# ---------------------------------------------------------------------------
# Objects of the Kubernetes API that the harness needs.

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


# ---------------------------------------------------------------------------
# The external-provisioner (distributed: one per node, in the DaemonSet pod).

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
        start = time.monotonic()
        try:
            resp = getattr(stub, method)(request, timeout=timeout)
            self.calls.append(("provisioner", method, "OK", time.monotonic() - start))
            return resp
        except grpc.RpcError as e:
            self.calls.append(("provisioner", method, e.code().name, time.monotonic() - start))
            raise

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
        topo = dict(v.accessible_topology[0].segments) if v.accessible_topology else {}
        return PersistentVolume(name=pv_name, volume_handle=v.volume_id,
                                capacity_bytes=v.capacity_bytes,
                                volume_context=dict(v.volume_context), access_mode=access_mode,
                                mount_options=tuple(sc.mount_options), topology=topo,
                                claim=f"{namespace}/{claim}")

    def delete(self, pv: PersistentVolume) -> None:
        self._call(self.controller, "DeleteVolume", pb.DeleteVolumeRequest(volume_id=pv.volume_handle),
                   timeout=120.0)


# ---------------------------------------------------------------------------
# The kubelet's CSI volume plugin.

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
        start = time.monotonic()
        try:
            resp = getattr(stub or self.node, method)(request, timeout=timeout)
            self.calls.append(("kubelet", method, "OK", time.monotonic() - start))
            return resp
        except grpc.RpcError as e:
            self.calls.append(("kubelet", method, e.code().name, time.monotonic() - start))
            raise

    def register(self) -> None:
        """node-driver-registrar and the kubelet's plugin watcher: the driver's name, then
        its node id and topology (which the kubelet writes to the CSINode object and the
        Node's labels)."""
        self.driver = self._call("GetPluginInfo", pb.GetPluginInfoRequest(), stub=self.identity).name
        info = self._call("NodeGetInfo", pb.NodeGetInfoRequest())
        self.node_id = info.node_id
        self.topology = dict(info.accessible_topology.segments)
        self.max_volumes = info.max_volumes_per_node

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
        if pv.topology and pv.topology != self.topology:
            # The scheduler only places a pod on a node that matches the PV's affinity.
            raise RuntimeError(f"PV {pv.name} is pinned to {pv.topology}, not this node "
                               f"{self.topology}")
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
