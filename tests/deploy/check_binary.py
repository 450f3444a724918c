"""Checks of the manifests against the cellar binary itself: every flag the
DaemonSet passes is one `cellar node --help` (or, for the holder sidecar,
`cellar fd-holder --help`) lists, and so is every flag of `cellar registrar`
and of the exec probes (`cellar probe`, `cellar registrar --check`); and
`cellar node`, started with exactly the rendered arguments (endpoint, state
directory and holder socket moved to a temporary directory, with `cellar
fd-holder` started as the pod would), reports the driver name, topology key
and capabilities the manifests rely on, passes the rendered exec probes, and
is registered by `cellar registrar` started with the rendered arguments,
whose rendered liveness check passes. Runs only when a binary is given, and
then fails (not skips) if it is missing or cannot run."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.deploy.harness import (DEPLOY, Runner, all_containers, container, daemonset_of, env_values,
                                  expanded_args, expect, fail, flag_values, one, run)
from tests.lib import csi
from tests.lib.sizes import parse_size

TOPOLOGY_KEY = csi.TOPOLOGY_KEY
NODE = "deploy-check-node"


def require_binary(binary: str) -> Path:
    path = Path(binary)
    expect(path.is_file(), f"cellar binary {binary} does not exist (build it, or do not pass it)")
    expect(os.access(path, os.X_OK), f"cellar binary {binary} is not executable")
    return path.resolve()


HOLDER = "fd-holder"
REGISTRAR = "node-driver-registrar"
PROBE_KINDS = ["startupProbe", "livenessProbe", "readinessProbe"]


def cellar_args(objs: list[dict]) -> list[str]:
    return expanded_args(container(daemonset_of(objs, "node-plugin"), "cellar"), {"spec.nodeName": NODE})


def holder_args(objs: list[dict]) -> list[str]:
    return expanded_args(container(daemonset_of(objs, "node-plugin"), HOLDER))


def registrar_args(objs: list[dict]) -> list[str]:
    return expanded_args(container(daemonset_of(objs, "node-plugin"), REGISTRAR))


def cellar_probes(objs: list[dict]) -> list[tuple[str, dict, list[str]]]:
    """(label, container, command) of every exec probe that runs the cellar binary."""
    out = []
    for c in all_containers(daemonset_of(objs, "node-plugin")):
        for kind in PROBE_KINDS:
            command = c.get(kind, {}).get("exec", {}).get("command", [])
            if command and Path(command[0]).name == "cellar":
                out.append((f"{c['name']} {kind}", c, command))
    return out


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


def check_subcommand_flags(binary: Path, renders: dict[str, list[dict]]) -> None:
    """`cellar registrar` and every exec probe's cellar command use only flags
    their subcommand's --help lists."""
    accepted: dict[str, set[str]] = {}
    for key, objs in renders.items():
        uses = [(f"{REGISTRAR} args", registrar_args(objs))]
        uses += [(label, command[1:]) for label, _, command in cellar_probes(objs)]
        expect(len(uses) >= 4, f"[{key}] want the registrar and three exec probes, found {[u[0] for u in uses]}")
        for label, args in uses:
            expect(args and not args[0].startswith("-"), f"[{key}] {label}: no subcommand in {args}")
            sub = args[0]
            if sub not in accepted:
                accepted[sub] = help_flags(binary, sub)
                expect(accepted[sub], f"cellar {sub} --help lists no flags")
            unknown = sorted(set(flag_values(args[1:])) - accepted[sub])
            expect(not unknown, f"[{key}] {label} passes flags `cellar {sub} --help` does not list: "
                   + ", ".join(f"--{f}" for f in unknown))
            positional = [a for a in args[1:] if not a.startswith("--")]
            expect(not positional, f"[{key}] {label}: unexpected positional arguments {positional}")


# ------------------------------------------------------------- live checks


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
        """Until Probe on the socket says ready (tests/lib/node.py)."""
        from tests.lib.node import NotReady, wait_ready
        try:
            wait_ready(self.proc, self.socket, timeout).close()
        except NotReady as e:
            fail(f"cellar {' '.join(self.args)}: {e}:\n{self.tail()}")

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


def with_flag(args: list[str], name: str, value: str) -> list[str]:
    """args with --name=... replaced by --name=value (added if absent)."""
    out = [a for a in args if not a.startswith(f"--{name}=")]
    return out + [f"--{name}={value}"]


def container_env(c: dict) -> dict[str, str]:
    """The process environment a command in container c sees (for exec probes:
    the kubelet does not expand $(VAR) in them, the command reads the env)."""
    env = dict(os.environ)
    env.update(env_values(c, {"spec.nodeName": NODE}))
    return env


def check_probes_live(binary: Path, objs: list[dict], plugin: "Plugin") -> None:
    """The plugin's rendered exec probes, run as the kubelet runs them, against
    the live plugin."""
    ds = daemonset_of(objs, "node-plugin")
    for label, c, command in cellar_probes(objs):
        if c["name"] != "cellar":
            continue
        args = with_flag(command[1:], "endpoint", f"unix://{plugin.socket}")
        proc = run([str(binary), *args], check=False, timeout=30, env=container_env(container(ds, "cellar")))
        expect(proc.returncode == 0, f"{label} `cellar {' '.join(args)}` exited {proc.returncode}: "
               f"{(proc.stderr or proc.stdout).strip()}")


def as_confined(c: dict, cmd: list[str]) -> list[str]:
    """cmd run with the capabilities container c keeps: none if it drops ALL
    (as root, the pod's user, but without CAP_DAC_OVERRIDE and the rest)."""
    drop = c.get("securityContext", {}).get("capabilities", {}).get("drop", [])
    if "ALL" not in drop or os.geteuid() != 0:
        return cmd
    return ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", *cmd]


def check_registration_live(binary: Path, objs: list[dict], plugin: "Plugin", driver: str) -> None:
    """`cellar registrar` with the rendered arguments (the CSI socket and the
    registration directory moved to the plugin's temporary directory) and the
    container's capabilities registers the driver under its name, its
    rendered liveness check passes while it serves and fails once SIGTERM has
    removed the socket."""
    reg = container(daemonset_of(objs, "node-plugin"), REGISTRAR)
    env = container_env(reg)
    # A short directory: a unix socket path has at most 107 bytes, and the rendered
    # driver names are long (in the pod it is /registration/<driver>-reg.sock).
    registry = Path(tempfile.mkdtemp(prefix="reg.", dir="/tmp"))
    registry.chmod(0o750)  # as the kubelet makes plugins_registry
    args = with_flag(with_flag(registrar_args(objs), "csi-address", str(plugin.socket)),
                     "plugin-registration-path", str(registry))
    log = plugin.dir / "registrar.log"
    proc = subprocess.Popen(as_confined(reg, [str(binary), *args]), stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True, env=env)
    socket = registry / f"{driver}-reg.sock"
    liveness = next(cmd for _, c, cmd in cellar_probes(objs) if c["name"] == REGISTRAR)
    check_args = with_flag(liveness[1:], "plugin-registration-path", str(registry))
    try:
        deadline = time.monotonic() + 20
        while not socket.exists():
            expect(proc.poll() is None and time.monotonic() < deadline,
                   f"cellar {' '.join(args)} did not create {socket}:\n{log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        check = run(as_confined(reg, [str(binary), *check_args]), check=False, timeout=30, env=env)
        expect(check.returncode == 0, f"the registrar's liveness `cellar {' '.join(check_args)}` exited "
               f"{check.returncode}: {(check.stderr or check.stdout).strip()}")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(10)
        expect(code == 0, f"cellar registrar exited {code} on SIGTERM:\n{log.read_text(errors='replace')[-2000:]}")
        expect(not socket.exists(), "cellar registrar left its registration socket behind after SIGTERM")
        check = run([str(binary), *check_args], check=False, timeout=30, env=env)
        expect(check.returncode == 1, f"the registrar's liveness passed (exit {check.returncode}) with no registrar")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(registry, ignore_errors=True)


def check_live(binary: Path, objs: list[dict], workdir: Path) -> None:
    if os.geteuid() != 0:
        fail("starting cellar node needs root (mounts, /dev/fuse); run tests/deploy/run.sh as root")
    # python3-grpcio and the stubs: imported here, so a missing module fails this check only.
    import grpc
    pb, _ = csi.stubs()

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
        check_probes_live(binary, objs, plugin)
        check_registration_live(binary, objs, plugin, driver["metadata"]["name"])
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
        print("SKIP binary: no cellar binary given (tests/deploy/run.sh build/cellar runs these)", flush=True)
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
        runner.check("binary: every flag of `cellar registrar` and of the exec probes is in its subcommand's --help",
                     check_subcommand_flags, path, ctx.renders)
    for key, objs in ctx.renders.items():
        ns = daemonset_of(objs, "node-plugin")["metadata"]["namespace"]
        name = one(objs, "StorageClass")["metadata"]["name"]
        runner.check(f"binary [{ns}]: cellar fd-holder and cellar node with the rendered args report driver, "
                     f"topology key, capabilities, pass the exec probes; cellar registrar registers them ({name})",
                     check_live, path, objs, ctx.workdir)
