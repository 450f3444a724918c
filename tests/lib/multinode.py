"""A cluster of several Cellar nodes on one machine, for cross-node reads (issue 15).

Each node is a network namespace (tests/lib/netns.py) with its own address, running its
own `cellar node` (its state dir, CSI socket, --node-id, and --peer-listen /
--peer-advertise <address>:7443 / --peer-tls-dir with the run's certificates from
deploy/peer-certs.sh), and has its own kubelet and external-provisioner (tests/lib)
talking to that node's socket. Pods scheduled on a node run in its namespace.

    with MultiNodeCluster(root, nodes=3, capacity="512Mi") as c:
        pv = c.provision(c.nodes[0], "claim-x", 64 << 20)    # CreateVolume on node 1
        res = c.run_pod(c.nodes[2], "reader", argv, {"/x": pv})  # published on node 3

Clean-up: leaving the `with` (also on an exception), at exit (atexit) and on SIGTERM /
SIGINT (raised as KeyboardInterrupt so every `finally` runs) stops the nodes, deletes
the namespaces, unmounts and removes everything under the run's directory. A run that
was killed outright is cleaned by the next one: `cleanup_stale(root)` removes the
directories and namespaces of every run whose harness no longer runs.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc

from tests.e2e.pod import run_pod
from tests.lib import REPO, csi, netns, roles
from tests.lib.kubelet import Kubelet, Mounted
from tests.lib.node import (  # noqa: F401 - multinode.install_signal_handlers for the suites
    CellarNode, cleanup_root, install_signal_handlers)
from tests.lib.objects import PersistentVolume, Pod, StorageClass
from tests.lib.provisioner import Provisioner

pb, pb_grpc = csi.stubs()

PEER_PORT = 7443
PEER_CERTS = REPO / "deploy" / "peer-certs.sh"
OWNER_NODE_KEY = "cellar.dev/owner-node"
OWNER_PEER_KEY = "cellar.dev/owner-peer"


def make_certs(directory: Path) -> Path:
    """A CA and a certificate with SAN DNS:cellar-peer signed by it: ca.crt, tls.crt,
    tls.key, as the cluster's Secret holds them."""
    subprocess.run(["bash", str(PEER_CERTS), str(directory), "--days", "2"], check=True,
                   capture_output=True)
    return directory


@dataclasses.dataclass
class PeerNode(CellarNode):
    """`cellar node` in a network namespace, serving its volumes to the others."""
    ns: str = ""
    address: str = ""               # the node's IP in its namespace
    tls_dir: Path | None = None
    # Serve peers on a unix socket behind `cellar peer-relay` at the node's address, as
    # deploy/'s peering component does, instead of on the address itself.
    relayed: bool = False

    @property
    def peer(self) -> str:
        return f"{self.address}:{PEER_PORT}"

    @property
    def peer_socket(self) -> Path:
        return self.state_dir / "peer.sock"

    def args(self) -> list[str]:
        listen = f"unix://{self.peer_socket}" if self.relayed else self.peer
        # nsenter execs cellar in place: the pid stays the daemon's, its argv cellar's.
        return netns.enter(self.ns) + super().args() + [
            "--peer-listen", listen, "--peer-advertise", self.peer,
            "--peer-tls-dir", str(self.tls_dir)]

    def relay_args(self) -> list[str]:
        return netns.enter(self.ns) + [str(self.binary), "peer-relay", "--listen", self.peer,
                                       "--to", str(self.peer_socket)]

    def arena(self, volume_id: str) -> Path:
        return self.state_dir / "arenas" / volume_id


@dataclasses.dataclass
class Node:
    """One node of the cluster: its namespace, daemon, kubelet and provisioner."""
    index: int
    name: str
    daemon: PeerNode
    home: Path
    kubelet: Kubelet | None = None
    provisioner: Provisioner | None = None
    channel: grpc.Channel | None = None

    @property
    def ns(self) -> str:
        return self.daemon.ns

    @property
    def address(self) -> str:
        return self.daemon.address

    def probe(self) -> bool:
        r = pb_grpc.IdentityStub(self.channel).Probe(pb.ProbeRequest(), timeout=5.0)
        return not r.HasField("ready") or r.ready.value

    def capacity(self) -> int:
        return self.provisioner.capacity(StorageClass())


def run_id() -> str:
    return str(os.getpid())


def cleanup_stale(base: Path) -> list[str]:
    """Cleans what runs killed outright left: their namespaces (and what runs in them)
    and their directories under base (base/<run>). Returns the runs cleaned."""
    cleaned = set()
    for run in netns.stale_runs():
        netns.delete_run(run)
        cleaned.add(run)
    if base.exists():
        for d in base.iterdir():
            if d.is_dir() and not netns._harness_alive(d.name):
                cleanup_root(d)
                cleaned.add(d.name)
    return sorted(cleaned)


class MultiNodeCluster:
    def __init__(self, base: Path, nodes: int = 3, capacity: str = "512Mi",
                 io_mode: str | None = None, log_level: str = "info", relay_first: bool = True):
        self.run = run_id()
        self.root = base / self.run
        self.base = base
        self.count = nodes
        self.capacity = capacity
        self.io_mode = io_mode
        self.log_level = log_level
        self.relays: list[subprocess.Popen] = []
        self.relay_first = relay_first
        self.net = netns.Network(self.run, subnet=int(self.run) % 250 + 1)
        self.nodes: list[Node] = []
        self.calls: list = []
        self.pvs: list[tuple[Node, PersistentVolume]] = []
        self.certs: Path | None = None
        self._closed = False
        self._lock = threading.Lock()

    # -- life cycle -------------------------------------------------------------------

    def __enter__(self):
        cleanup_stale(self.base)
        self.root.mkdir(parents=True)
        atexit.register(self.close)
        try:
            self.certs = make_certs(self.root / "peer-tls")
            self.net.create_switch()
            for i in range(1, self.count + 1):
                self.nodes.append(self._node(i))
            for n in self.nodes:
                if n.daemon.relayed:
                    self._start_relay(n)
                self.start(n)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def _node(self, i: int) -> Node:
        ns = self.net.add_node(i)
        name = f"mn-node-{i}"
        home = self.root / name
        extra = (f"--io-mode={self.io_mode}",) if self.io_mode else ()
        # Node 1 serves peers the way deploy/ sets a node up (behind the relay, unless
        # relay_first is off), the others on their address: both paths take every check.
        daemon = PeerNode(home=home / "node", node_id=name, capacity=self.capacity,
                          log_level=self.log_level, extra_args=extra, ns=ns,
                          address=self.net.address(i), tls_dir=self.certs,
                          relayed=self.relay_first and i == 1)
        return Node(index=i, name=name, daemon=daemon, home=home)

    def _start_relay(self, node: Node) -> None:
        """`cellar peer-relay` in the node's namespace; it outlives the node's daemon, as
        the relay pod outlives plugin pods. Returns once it listens."""
        node.home.mkdir(parents=True, exist_ok=True)
        with open(node.home / "relay.log", "ab") as log:
            proc = subprocess.Popen(node.daemon.relay_args(), stdout=log, stderr=log)
        self.relays.append(proc)
        # /proc/<pid>/net/tcp lists the sockets of the process's network namespace:
        # local address as hex IP:PORT, state 0A is LISTEN.
        port = f":{PEER_PORT:04X}"
        table = Path(f"/proc/{proc.pid}/net/tcp")

        def listening() -> bool:
            rows = [line.split() for line in table.read_text().splitlines()[1:]]
            return any(r[1].endswith(port) and r[3] == "0A" for r in rows)
        wait_for(lambda: proc.poll() is not None or listening(), 10.0,
                 what=f"the relay of {node.name} listening")
        if proc.poll() is not None:
            raise RuntimeError(f"the relay of {node.name} exited {proc.returncode}: "
                               f"{(node.home / 'relay.log').read_text()[-2000:]}")

    def start(self, node: Node, timeout: float = 30.0) -> None:
        """Starts (or restarts, same state dir) the node's daemon; its kubelet registers
        it and its provisioner connects."""
        node.channel = node.daemon.start(timeout)
        node.kubelet, node.provisioner = roles.attach(node.channel, node.home / "kubelet",
                                                      node.name, self.calls)

    def kill(self, node: Node, sig: int = signal.SIGKILL) -> int | None:
        rc = node.daemon.stop(sig=sig, timeout=10.0)
        if node.channel is not None:
            node.channel.close()
            node.channel = None
        return rc

    def close(self) -> None:
        """Idempotent: volumes deleted where their node still runs, nodes stopped,
        namespaces deleted, mounts and files under the run's directory removed."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            for node, pv in list(self.pvs):
                if node.daemon.proc is None or node.daemon.proc.poll() is not None:
                    continue
                try:
                    node.provisioner.delete(pv)
                except Exception as e:  # noqa: BLE001 - keep tearing down
                    print(f"warning: DeleteVolume {pv.volume_handle} on {node.name}: {e}",
                          file=sys.stderr)
            self.pvs.clear()
            for node in self.nodes:
                node.daemon.stop()
            for relay in self.relays:
                relay.terminate()
                relay.wait(10)
        finally:
            self.net.destroy()
            cleanup_root(self.root)
            try:
                self.base.rmdir()
            except OSError:
                pass

    # -- what the provisioner and the kubelet do ---------------------------------------

    def provision(self, node: Node, claim: str, request: int,
                  nodes: str = "peers") -> PersistentVolume:
        """WaitForFirstConsumer with the first pod on `node`: CreateVolume there, of a
        class whose cellar.dev/nodes is `nodes` (peers: other nodes may mount it)."""
        sc = StorageClass(parameters={"cellar.dev/nodes": nodes})
        pv = node.provisioner.provision(sc, claim, "pipelines", request, node.kubelet.topology)
        self.pvs.append((node, pv))
        return pv

    def delete(self, pv: PersistentVolume) -> None:
        for i, (node, p) in enumerate(self.pvs):
            if p is pv:
                node.provisioner.delete(pv)
                del self.pvs[i]
                return

    def owner_of(self, pv: PersistentVolume) -> Node:
        return next(n for n, p in self.pvs if p is pv)

    def publish(self, node: Node, pv: PersistentVolume, pod: Pod | None = None,
                readonly: bool = False) -> Mounted:
        """The kubelet of `node` publishes the PV for a pod placed there; it refuses, as
        the scheduler would, a node the PV's affinity excludes."""
        pod = pod or Pod(name=f"pod-{pv.name[-6:]}", namespace="pipelines")
        return node.kubelet.mount(pod, pv, readonly=readonly)

    def unpublish(self, node: Node, mounted: Mounted) -> None:
        node.kubelet.unmount(mounted)
        node.kubelet.remove_pod_dir(mounted.pod)

    def run_pod(self, node: Node, name: str, argv: list[str],
                volumes: dict[str, PersistentVolume], timeout: float = 300.0,
                env: dict | None = None):
        """A pod on `node`: every volume published there, the pod run in the node's
        network namespace, then torn down in the kubelet's order."""
        pod = Pod(name=name, namespace="pipelines")
        mounted: list[Mounted] = []
        try:
            for pv in volumes.values():
                mounted.append(self.publish(node, pv, pod))
            paths = {path: (str(m.target), False) for path, m in zip(volumes, mounted)}
            return run_pod(name, argv, paths, env=env, timeout=timeout,
                           workdir=str(node.home), netns=node.ns)
        finally:
            for m in mounted:
                node.kubelet.unmount(m)
            node.kubelet.remove_pod_dir(pod)


def fetch_in_progress(node: Node, volume_id: str, final_names: set[str],
                      min_bytes: int = 1 << 20) -> Path | None:
    """A file being fetched into node's replica of the volume: one in its arena that is
    not one of the volume's files (fetches write under a temporary name and rename when
    whole) and already holds min_bytes. None when there is none."""
    arena = node.daemon.arena(volume_id)
    try:
        entries = list(os.scandir(arena))
    except OSError:
        return None
    for e in entries:
        try:
            if e.name not in final_names and e.is_file(follow_symlinks=False) and \
                    e.stat(follow_symlinks=False).st_size >= min_bytes:
                return Path(e.path)
        except OSError:
            continue
    return None


def wait_for(predicate, timeout: float, period: float = 0.01, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(period)
    raise TimeoutError(f"{what} not seen in {timeout:.0f} s")
