"""Checks of the manifests against the cellar binary itself: every flag the
DaemonSet passes is one `cellar node --help` (or, for the holder sidecar,
`cellar fd-holder --help`) lists; and `cellar node`, started with exactly the
rendered arguments (endpoint, state directory and holder socket moved to a
temporary directory, with `cellar fd-holder` started as the pod would),
reports the driver name, topology key and capabilities the manifests rely on. Runs only when a binary is given, and then fails (not
skips) if it is missing or cannot run."""

from __future__ import annotations

import importlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import (DEPLOY, REPO, Runner, container, daemonset_of, expanded_args, expect, fail,
                     flag_values, one, run)

TOPOLOGY_KEY = "topology.csi.cellar.dev/node"
NODE = "deploy-check-node"
SIZE_UNITS = {"": 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti)?", text)
    expect(m is not None, f"size {text!r}")
    return int(m.group(1)) * SIZE_UNITS[m.group(2) or ""]


def require_binary(binary: str) -> Path:
    path = Path(binary)
    expect(path.is_file(), f"cellar binary {binary} does not exist (build it, or do not pass it)")
    expect(os.access(path, os.X_OK), f"cellar binary {binary} is not executable")
    return path.resolve()


HOLDER = "fd-holder"


def cellar_args(objs: list[dict]) -> list[str]:
    return expanded_args(container(daemonset_of(objs, "node-plugin"), "cellar"), {"spec.nodeName": NODE})


def holder_args(objs: list[dict]) -> list[str]:
    return expanded_args(container(daemonset_of(objs, "node-plugin"), HOLDER))


def help_flags(binary: Path, subcommand: str = "node") -> set[str]:
    proc = run([str(binary), subcommand, "--help"], timeout=20)
    text = proc.stdout + proc.stderr
    return set(re.findall(r"(?<![\w-])--([a-zA-Z][a-zA-Z0-9-]*)", text))


def check_version(binary: Path) -> None:
    proc = run([str(binary), "--version"], timeout=20)
    expect((proc.stdout + proc.stderr).strip(), "cellar --version printed nothing")


def check_flags(binary: Path, renders: dict[str, list[dict]]) -> None:
    accepted = help_flags(binary)
    expect(accepted, "cellar node --help lists no flags")
    for key, objs in renders.items():
        args = cellar_args(objs)
        expect(args and args[0] == "node", f"[{key}] the DaemonSet does not run `cellar node`")
        used = set(flag_values(args[1:]))
        unknown = sorted(used - accepted)
        expect(not unknown, f"[{key}] the DaemonSet passes flags `cellar node --help` does not list: "
               + ", ".join(f"--{f}" for f in unknown) + f"\n(listed: {', '.join(sorted(accepted))})")
        positional = [a for a in args[1:] if not a.startswith("--")]
        expect(not positional, f"[{key}] unexpected positional arguments {positional}")


def check_holder_flags(binary: Path, renders: dict[str, list[dict]]) -> None:
    accepted = help_flags(binary, HOLDER)
    expect(accepted, f"cellar {HOLDER} --help lists no flags")
    for key, objs in renders.items():
        args = holder_args(objs)
        expect(args[:1] == [HOLDER], f"[{key}] the {HOLDER} sidecar does not run `cellar {HOLDER}`")
        unknown = sorted(set(flag_values(args[1:])) - accepted)
        expect(not unknown, f"[{key}] the {HOLDER} sidecar passes flags `cellar {HOLDER} --help` does not list: "
               + ", ".join(f"--{f}" for f in unknown) + f"\n(listed: {', '.join(sorted(accepted))})")


# ------------------------------------------------------------- live checks


def csi_modules(workdir: Path):
    """csi_pb2 generated from proto/csi.proto with protoc."""
    out = workdir / "csi_pb"
    if not (out / "csi_pb2.py").exists():
        out.mkdir(exist_ok=True)
        include = ["-I", "/usr/include"] if Path("/usr/include/google/protobuf/descriptor.proto").exists() else []
        run(["protoc", "-I", str(REPO / "proto"), *include, f"--python_out={out}", str(REPO / "proto" / "csi.proto")])
    if str(out) not in sys.path:
        sys.path.insert(0, str(out))
    # python3-grpcio: imported here, so a missing module fails this check only.
    importlib.import_module("grpc")
    return importlib.import_module("csi_pb2")


class Plugin:
    """`cellar node` running in a private mount namespace on a temporary
    socket and state directory."""

    def __init__(self, binary: Path, args: list[str], workdir: Path, holder: list[str] | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="plugin.", dir=workdir))
        self.socket = self.dir / "csi.sock"
        self.log = self.dir / "cellar.log"
        self.holder_socket = self.dir / "holder.sock"
        self.holder = None
        self.args = []
        for a in args:
            if a.startswith("--endpoint="):
                a = f"--endpoint=unix://{self.socket}"
            elif a.startswith("--state-dir="):
                a = f"--state-dir={self.dir / 'state'}"
            elif a.startswith("--fd-holder="):
                a = f"--fd-holder={self.holder_socket}"
            elif a.startswith("--handover-socket="):
                a = f"--handover-socket={self.dir / 'state' / 'handover.sock'}"
            self.args.append(a)
        (self.dir / "state").mkdir()
        if holder is not None:
            # The sidecar as the pod starts it, before the plugin: its socket first.
            hargs = [f"--socket={self.holder_socket}" if a.startswith("--socket=") else a for a in holder]
            self.holder_log = self.dir / "holder.log"
            self.holder = subprocess.Popen([str(binary), *hargs], stdout=self.holder_log.open("w"),
                                           stderr=subprocess.STDOUT, start_new_session=True)
            deadline = time.monotonic() + 10
            while not self.holder_socket.exists():
                if self.holder.poll() is not None or time.monotonic() > deadline:
                    log = self.holder_log.read_text(errors="replace")[-2000:]
                    self.stop_holder()
                    fail(f"cellar {' '.join(hargs)} did not create {self.holder_socket}:\n{log}")
                time.sleep(0.05)
        cmd = [str(binary), *self.args]
        if os.geteuid() == 0:
            # Mounts the plugin makes (arenas, FUSE) vanish with the namespace.
            cmd = ["unshare", "--mount", "--propagation", "private", *cmd]
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-25:])

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.socket.exists():
                return
            if self.proc.poll() is not None:
                fail(f"cellar {' '.join(self.args)} exited {self.proc.returncode} before serving:\n{self.tail()}")
            time.sleep(0.1)
        fail(f"cellar did not create {self.socket} within {timeout}s:\n{self.tail()}")

    def stop_holder(self) -> int | None:
        if self.holder is None:
            return None
        if self.holder.poll() is None:
            self.holder.send_signal(signal.SIGTERM)
            try:
                self.holder.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.holder.pid, signal.SIGKILL)
                self.holder.wait()
                return None
        return self.holder.returncode

    def stop(self, timeout: float = 20) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                return None
        return self.proc.returncode


def call(channel, pb, service: str, method: str, request):
    response_type = getattr(pb, f"{method}Response")
    stub = channel.unary_unary(f"/csi.v1.{service}/{method}",
                               request_serializer=type(request).SerializeToString,
                               response_deserializer=response_type.FromString)
    return stub(request, timeout=10)


def check_live(binary: Path, objs: list[dict], workdir: Path) -> None:
    if os.geteuid() != 0:
        fail("starting cellar node needs root (mounts, /dev/fuse); run tests/deploy/run.sh as root")
    pb = csi_modules(workdir)
    import grpc

    driver = one(objs, "CSIDriver")
    sc = one(objs, "StorageClass")
    flags = flag_values(cellar_args(objs)[1:])
    holder = holder_args(objs)[:] if "fd-holder" in flags else None
    plugin = Plugin(binary, cellar_args(objs), workdir, holder)
    try:
        plugin.wait_ready()
        with grpc.insecure_channel(f"unix://{plugin.socket}") as ch:
            info = call(ch, pb, "Identity", "GetPluginInfo", pb.GetPluginInfoRequest())
            expect(info.name == driver["metadata"]["name"] == sc["provisioner"],
                   f"GetPluginInfo says {info.name!r}; CSIDriver {driver['metadata']['name']!r}, "
                   f"StorageClass provisioner {sc['provisioner']!r}")
            expect(info.vendor_version, "GetPluginInfo has no vendor_version")
            call(ch, pb, "Identity", "Probe", pb.ProbeRequest())

            plugin_caps = call(ch, pb, "Identity", "GetPluginCapabilities", pb.GetPluginCapabilitiesRequest())
            services = {c.service.type for c in plugin_caps.capabilities if c.HasField("service")}
            Service = pb.PluginCapability.Service
            expect(Service.CONTROLLER_SERVICE in services,
                   "no CONTROLLER_SERVICE: csi-provisioner cannot create volumes")
            expect(Service.VOLUME_ACCESSIBILITY_CONSTRAINTS in services,
                   "no VOLUME_ACCESSIBILITY_CONSTRAINTS: --feature-gates=Topology/--strict-topology would pin nothing")

            ctrl = call(ch, pb, "Controller", "ControllerGetCapabilities", pb.ControllerGetCapabilitiesRequest())
            rpcs = {c.rpc.type for c in ctrl.capabilities}
            RPC = pb.ControllerServiceCapability.RPC
            expect(RPC.CREATE_DELETE_VOLUME in rpcs, "no CREATE_DELETE_VOLUME for the provisioner")
            expect(RPC.GET_CAPACITY in rpcs, "no GET_CAPACITY, but --enable-capacity and storageCapacity: true")
            expect(RPC.PUBLISH_UNPUBLISH_VOLUME not in rpcs,
                   "PUBLISH_UNPUBLISH_VOLUME is advertised, but attachRequired is false (and no RBAC for attachments)")
            node_caps = call(ch, pb, "Node", "NodeGetCapabilities", pb.NodeGetCapabilitiesRequest())
            node_rpcs = {c.rpc.type for c in node_caps.capabilities}
            if sc.get("allowVolumeExpansion"):
                expect(RPC.EXPAND_VOLUME in rpcs or pb.NodeServiceCapability.RPC.EXPAND_VOLUME in node_rpcs,
                       "allowVolumeExpansion is true but neither controller nor node EXPAND_VOLUME is advertised")

            node = call(ch, pb, "Node", "NodeGetInfo", pb.NodeGetInfoRequest())
            expect(node.node_id == NODE, f"NodeGetInfo node_id is {node.node_id!r}, want the --node-id {NODE!r}")
            segments = dict(node.accessible_topology.segments)
            expect(segments == {TOPOLOGY_KEY: NODE},
                   f"NodeGetInfo topology is {segments}, want {{{TOPOLOGY_KEY!r}: {NODE!r}}}")

            request = pb.GetCapacityRequest()
            request.accessible_topology.segments[TOPOLOGY_KEY] = NODE
            capacity = call(ch, pb, "Controller", "GetCapacity", request).available_capacity
            limit = parse_size(flags["capacity"])
            expect(0 < capacity <= limit, f"GetCapacity says {capacity} bytes for --capacity={flags['capacity']}")
    except grpc.RpcError as e:
        fail(f"{e.code()}: {e.details()}\n{plugin.tail()}")
    finally:
        code = plugin.stop()
        holder_code = plugin.stop_holder()
    expect(code == 0, f"cellar node exited {code} on SIGTERM (want 0):\n{plugin.tail()}")
    expect(not plugin.socket.exists(), "cellar node left its socket behind after SIGTERM")
    if holder is not None:
        expect(holder_code == 0, f"cellar fd-holder exited {holder_code} on SIGTERM (want 0)")


def check_topology_documented() -> None:
    readme = (DEPLOY / "README.md").read_text()
    expect(TOPOLOGY_KEY in readme, f"deploy/README.md does not name the topology key {TOPOLOGY_KEY}")


def register(runner: Runner, ctx, binary: str | None) -> None:
    runner.check("binary: deploy/README.md documents the topology key", check_topology_documented)
    if not binary:
        print("skip binary: no cellar binary given (tests/deploy/run.sh build/cellar runs these)", flush=True)
        runner.skipped += 1
        return
    path = runner.check(f"binary: {binary} exists", require_binary, binary)
    if path is None:
        return
    runner.check("binary: cellar --version", check_version, path)
    if ctx.renders:
        runner.check("binary: every flag the DaemonSet passes is in `cellar node --help`",
                     check_flags, path, ctx.renders)
        runner.check(f"binary: every flag the {HOLDER} sidecar passes is in `cellar {HOLDER} --help`",
                     check_holder_flags, path, ctx.renders)
    for key, objs in ctx.renders.items():
        ns = daemonset_of(objs, "node-plugin")["metadata"]["namespace"]
        name = one(objs, "StorageClass")["metadata"]["name"]
        runner.check(f"binary [{ns}]: cellar fd-holder and cellar node with the rendered args report driver, "
                     f"topology key, capabilities ({name})", check_live, path, objs, ctx.workdir)
