"""Checks of the rendered deployment: schemas, and the contracts between the
objects (names, namespaces, sockets, flags, host paths) for the default
deployment and for a rendering with another namespace/name."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import yaml

from tests.deploy import check_peering, check_placement
from tests.deploy.harness import (DEPLOY, REPO, TESTS, Runner, all_containers, container, daemonset_of,
                                  env_values, expect, expanded_args, flag_values, ident, kustomize, mount_for,
                                  objects_of, one, pod_spec, render_sh, run, schema_errors, validate_objects,
                                  volume)

# What each rendering must come out as. The StorageClass is
# <namespace>.<name>.csi; the driver csi.cellar.dev for the default
# deployment and <name>.<namespace>.csi.cellar.dev otherwise.
EXPECTED = {
    "default": {
        "namespace": "cellar-system", "name": "cellar", "driver": "csi.cellar.dev",
        "storage_class": "cellar-system.cellar.csi", "capacity": "4Gi",
    },
    "vineyard": {
        "namespace": "vineyard-system", "name": "vineyardd-sample",
        "driver": "vineyardd-sample.vineyard-system.csi.cellar.dev",
        "storage_class": "vineyard-system.vineyardd-sample.csi", "capacity": "4Gi",
    },
}
VINEYARD_OVERLAY = DEPLOY / "overlays" / "vineyard-system.vineyardd-sample"
CLUSTER_SCOPED = {"Namespace", "CSIDriver", "StorageClass", "ClusterRole", "ClusterRoleBinding"}
SOCKET_CONTAINERS = ["cellar", "csi-provisioner", "node-driver-registrar"]
# The kubelet plugin registration: `cellar registrar` in the container that
# node-driver-registrar used to be (the identity component finds it by name).
REGISTRAR = "node-driver-registrar"
# Containers that run the cellar image, and the subcommand each runs.
CELLAR_SUBCOMMANDS = {"cellar": "node", "fd-holder": "fd-holder", REGISTRAR: "registrar"}
# kubernetes-csi sidecars that Cellar replaces with its own subcommands: their
# modules cannot be fetched here, so their images can be neither built nor
# tested; the pod must not name them.
REPLACED_SIDECARS = {"csi-node-driver-registrar": "cellar registrar", "livenessprobe": "cellar probe"}
# The fd-holder sidecar: `cellar fd-holder --socket HOLDER_SOCKET`, the socket
# on a per-pod emptyDir that the cellar container mounts too.
HOLDER = "fd-holder"
HOLDER_SOCKET = "/run/cellar-holder/holder.sock"
# Pinned images other than the kubernetes-csi sidecars, and the file whose
# header comment documents each.
OTHER_IMAGES = {"registry.k8s.io/pause:3.10": "memory-reservation.yaml"}
# Host paths every deployment may share: they are the kubelet's or the kernel's.
SHARED_HOST_PATHS = {"/dev", "/var/lib/kubelet/pods", "/var/lib/kubelet/plugins_registry"}

# Exactly the API access the pod needs (only csi-provisioner uses the API).
CLUSTER_RULES = {
    ("", "persistentvolumes"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "persistentvolumeclaims"): {"get", "list", "watch", "update"},
    ("storage.k8s.io", "storageclasses"): {"get", "list", "watch"},
    ("", "nodes"): {"get", "list", "watch"},
    ("storage.k8s.io", "csinodes"): {"get", "list", "watch"},
    ("", "events"): {"list", "watch", "create", "update", "patch"},
    ("storage.k8s.io", "volumeattributesclasses"): {"get", "list", "watch"},
}
NAMESPACE_RULES = {
    ("storage.k8s.io", "csistoragecapacities"): {"get", "list", "watch", "create", "update", "patch", "delete"},
    ("", "pods"): {"get"},
}

# A deliberately broken manifest and what the validator must say about it.
BROKEN_FIXTURE = TESTS / "fixtures" / "broken.yaml"
BROKEN_EXPECTED = [
    ("DaemonSet/broken-node", "/spec/template/spec/containers/0/volumeMounts/1/mountPropogation", "unknown field"),
    ("DaemonSet/broken-node", "/spec/template/spec/containers/0/resources/requests/memory", "quantity"),
    ("DaemonSet/broken-node", "/spec/template/spec/containers/0/securityContext/privileged", "boolean"),
    ("DaemonSet/broken-node", "/spec/template/spec/volumes/0/hostPath/typ", "unknown field"),
    ("CSIDriver/broken.csi.cellar.dev", "/spec/volumeLifecycleModes", "array"),
    ("StorageClass/broken.csi", "/", "provisioner"),
    ("Pod/broken-pod", "/spec/containers/0/volumeMounts/0/mountPropagation", "Bidirectional"),
]


class Context:
    """Renderings shared by the checks (name -> list of objects)."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.renders: dict[str, list[dict]] = {}


# ------------------------------------------------------------------ helpers


def daemonset(objs: list[dict]) -> dict:
    """The node plugin DaemonSet (cellar node and its sidecars)."""
    return daemonset_of(objs, "node-plugin")


def reservation(objs: list[dict]) -> dict:
    """The DaemonSet of placeholder pods that reserve the node capacity."""
    return daemonset_of(objs, "memory-reservation")


def socket_path(arg: str) -> str:
    return arg[len("unix://"):] if arg.startswith("unix://") else arg


def exec_command(c: dict, kind: str) -> list[str]:
    """The command of container c's exec probe `kind`, which must run the
    cellar binary (the image's, on PATH)."""
    probe = c.get(kind)
    expect(probe, f"container {c['name']} has no {kind}")
    command = probe.get("exec", {}).get("command", [])
    expect(command, f"container {c['name']} {kind} is not an exec probe: {probe}")
    expect(command[0] in ("cellar", "/usr/local/bin/cellar"),
           f"container {c['name']} {kind} runs {command[0]!r}, not the cellar binary")
    return command


def seconds(duration: str) -> float:
    m = re.fullmatch(r"(\d+)(ms|s|m)?", duration)
    expect(m is not None, f"duration {duration!r} is not <n>ms, <n>s or <n>m")
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[m.group(2)]


def check_probe_timeout(c: dict, kind: str) -> None:
    """The probe command's --timeout ends before the kubelet's timeoutSeconds."""
    command = exec_command(c, kind)
    timeout = flag_values(command).get("timeout")
    expect(timeout, f"container {c['name']} {kind} {command} passes no --timeout")
    limit = c[kind].get("timeoutSeconds", 1)
    expect(seconds(timeout) < limit,
           f"container {c['name']} {kind}: --timeout={timeout} is not below timeoutSeconds {limit}; "
           "the kubelet would kill the probe before it can say why it failed")


def identity_of(objs: list[dict]) -> tuple[str, str]:
    ds = daemonset(objs)
    return ds["metadata"]["namespace"], ds["metadata"]["labels"]["app.kubernetes.io/instance"]


def cellar_flags(objs: list[dict]) -> dict:
    c = container(daemonset(objs), "cellar")
    return flag_values(expanded_args(c, {"spec.nodeName": "node-1"}))


# ------------------------------------------------------- per-rendering checks


def check_schemas(label: str, objs: list[dict]) -> None:
    errors = schema_errors([(label, o) for o in objs])
    expect(not errors, "objects do not validate against the Kubernetes OpenAPI schemas:\n" + "\n".join(errors))


def check_identity(objs: list[dict], exp: dict) -> None:
    ns, name = exp["namespace"], exp["name"]
    sc = one(objs, "StorageClass")
    expect(sc["metadata"]["name"] == f"{ns}.{name}.csi",
           f"StorageClass is {sc['metadata']['name']!r}, want {ns}.{name}.csi (<namespace>.<name>.csi)")
    expect(sc["metadata"]["name"] == exp["storage_class"], f"StorageClass is {sc['metadata']['name']!r}")
    namespaces = objects_of(objs, "Namespace")
    expect(len(namespaces) == 1 and namespaces[0]["metadata"]["name"] == ns,
           f"want one Namespace {ns}, got {[n['metadata']['name'] for n in namespaces]}")
    for o in objs:
        kind, meta = o["kind"], o["metadata"]
        if kind in CLUSTER_SCOPED:
            expect("namespace" not in meta, f"{ident(o)} is cluster-scoped but has a namespace")
        else:
            expect(meta.get("namespace") == ns, f"{ident(o)} is not in namespace {ns}")
        if kind != "Namespace":
            expect(meta.get("labels", {}).get("app.kubernetes.io/instance") == name,
                   f"{ident(o)} lacks label app.kubernetes.io/instance={name}")
        for s in o.get("subjects", []):
            expect(s.get("namespace") == ns, f"{ident(o)} binds a subject in {s.get('namespace')}, not {ns}")
    for ds in objects_of(objs, "DaemonSet"):
        expect(ds["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/instance") == name,
               f"{ident(ds)} selector does not select instance {name}")


def check_csidriver(objs: list[dict], exp: dict) -> None:
    drv = one(objs, "CSIDriver")
    spec = drv["spec"]
    expect(drv["metadata"]["name"] == exp["driver"], f"CSIDriver is {drv['metadata']['name']!r}, want {exp['driver']}")
    expect(spec.get("attachRequired") is False, "CSIDriver attachRequired must be false")
    expect(spec.get("podInfoOnMount") is True, "CSIDriver podInfoOnMount must be true (ephemeral volumes need it)")
    expect(spec.get("storageCapacity") is True, "CSIDriver storageCapacity must be true")
    expect(spec.get("requiresRepublish") is False, "CSIDriver requiresRepublish must be false")
    expect(sorted(spec.get("volumeLifecycleModes", [])) == ["Ephemeral", "Persistent"],
           f"CSIDriver volumeLifecycleModes are {spec.get('volumeLifecycleModes')}")
    expect(spec.get("fsGroupPolicy") in {"None", "File", "ReadWriteOnceWithFSType"},
           f"CSIDriver fsGroupPolicy must be set deliberately, is {spec.get('fsGroupPolicy')!r}")


def check_storageclass(objs: list[dict], exp: dict) -> None:
    sc = one(objs, "StorageClass")
    expect(sc.get("provisioner") == exp["driver"], f"StorageClass provisioner is {sc.get('provisioner')!r}")
    expect(sc.get("volumeBindingMode") == "WaitForFirstConsumer", "StorageClass must bind WaitForFirstConsumer")
    expect(sc.get("allowVolumeExpansion") is True, "StorageClass must allow volume expansion")
    expect(sc.get("reclaimPolicy") == "Delete", "StorageClass reclaimPolicy must be Delete")
    expect("storageclass.kubernetes.io/is-default-class" not in sc["metadata"].get("annotations", {}),
           "the Cellar StorageClass must not be the cluster default")


def check_driver_name(objs: list[dict], exp: dict) -> None:
    ds = daemonset(objs)
    names = {
        "CSIDriver": one(objs, "CSIDriver")["metadata"]["name"],
        "StorageClass.provisioner": one(objs, "StorageClass")["provisioner"],
        "cellar --driver-name": cellar_flags(objs).get("driver-name"),
        "socket-dir hostPath": Path(volume(ds, "socket-dir")["hostPath"]["path"]).name,
    }
    reg = env_values(container(ds, "node-driver-registrar"))
    names["registrar DRIVER_REG_SOCK_PATH"] = Path(reg.get("DRIVER_REG_SOCK_PATH", "")).parent.name
    expect(set(names.values()) == {exp["driver"]},
           "driver names disagree: " + ", ".join(f"{k}={v}" for k, v in names.items()))
    expect(len(exp["driver"]) <= 63, "a CSI driver name has at most 63 characters")


def check_sockets(objs: list[dict]) -> None:
    ds = daemonset(objs)
    where = {}
    for cname in SOCKET_CONTAINERS:
        c = container(ds, cname)
        flags = flag_values(expanded_args(c))
        arg = flags.get("endpoint") if cname == "cellar" else flags.get("csi-address")
        expect(arg, f"container {cname} names no CSI socket (--endpoint/--csi-address)")
        if cname == "cellar":
            expect(arg.startswith("unix://"), f"cellar --endpoint {arg!r} is not unix://")
        path = socket_path(arg)
        found = mount_for(c, path)
        expect(found is not None, f"container {cname}: socket {path} is on no volume mount")
        mount, rel = found
        where[cname] = (mount["name"], rel)
    expect(len(set(where.values())) == 1,
           "the containers use different sockets: " + ", ".join(f"{k}={v[0]}:{v[1]}" for k, v in where.items()))
    vol_name, rel = where["cellar"]
    host_dir = volume(ds, vol_name).get("hostPath", {}).get("path")
    expect(host_dir, f"socket volume {vol_name} is not a hostPath")
    reg = expanded_args(container(ds, "node-driver-registrar"))
    reg_path = flag_values(reg).get("kubelet-registration-path")
    expect(reg_path == f"{host_dir}/{rel}",
           f"registrar tells the kubelet {reg_path}, but the socket is at {host_dir}/{rel} on the host")
    drv = one(objs, "CSIDriver")["metadata"]["name"]
    expect(host_dir == f"/var/lib/kubelet/plugins/{drv}",
           f"socket directory {host_dir} is not /var/lib/kubelet/plugins/{drv}")
    registrar = container(ds, REGISTRAR)
    reg_dir = flag_values(reg).get("plugin-registration-path") or "/registration"
    reg_mount = mount_for(registrar, reg_dir)
    expect(reg_mount is not None and reg_mount[1] == "" and volume(ds, reg_mount[0]["name"])["hostPath"]["path"]
           == "/var/lib/kubelet/plugins_registry",
           f"registrar --plugin-registration-path {reg_dir} must be where /var/lib/kubelet/plugins_registry is mounted")
    # The exec probes of the plugin ask the same socket the plugin serves.
    plugin = container(ds, "cellar")
    for kind in ["livenessProbe", "readinessProbe"]:
        command = exec_command(plugin, kind)
        endpoint = flag_values(command).get("endpoint") or env_values(plugin).get("CSI_ENDPOINT")
        expect(endpoint == flag_values(expanded_args(plugin)).get("endpoint"),
               f"cellar {kind} probes {endpoint}, but cellar node serves {flag_values(expanded_args(plugin)).get('endpoint')}")


def check_node_plugin(objs: list[dict], exp: dict) -> None:
    ds = daemonset(objs)
    spec = pod_spec(ds)
    c = container(ds, "cellar")
    expect(c.get("args", [None])[0] == "node", "the cellar container must run `cellar node`")
    expect(c.get("securityContext", {}).get("privileged") is True, "cellar must be privileged")
    flags = cellar_flags(objs)
    for required in ["endpoint", "node-id", "state-dir", "capacity"]:
        expect(flags.get(required), f"cellar node lacks --{required}")
    expect(flags["node-id"] == "node-1", "--node-id must be the node name (fieldRef spec.nodeName)")
    # The kubelet's target paths, Bidirectional, at the same path inside.
    kubelet = mount_for(c, "/var/lib/kubelet/pods/uid/volumes/kubernetes.io~csi/pv/mount")
    expect(kubelet is not None, "cellar does not see /var/lib/kubelet/pods")
    kmount = kubelet[0]
    expect(kmount.get("mountPropagation") == "Bidirectional", "kubelet directory must be mounted Bidirectional")
    khost = volume(ds, kmount["name"]).get("hostPath", {}).get("path", "")
    expect(khost.rstrip("/") == kmount["mountPath"].rstrip("/"),
           f"kubelet directory is {khost} on the host but {kmount['mountPath']} inside")
    # The state directory: per deployment, Bidirectional, same path inside.
    state = flags["state-dir"]
    expect(state == f"/var/lib/cellar/{exp['namespace']}/{exp['name']}",
           f"--state-dir is {state}, want /var/lib/cellar/{exp['namespace']}/{exp['name']}")
    smount = mount_for(c, state)
    expect(smount is not None and smount[1] == "", f"--state-dir {state} is not a volume mount")
    expect(smount[0].get("mountPropagation") == "Bidirectional", "state directory must be mounted Bidirectional")
    expect(volume(ds, smount[0]["name"])["hostPath"]["path"] == state, "state directory hostPath differs from --state-dir")
    dev = mount_for(c, "/dev/fuse")
    expect(dev is not None and volume(ds, dev[0]["name"])["hostPath"]["path"] == "/dev", "cellar must mount /dev")
    # Capacity from one setting: --capacity and the reservation's request
    # (the plugin's own request is its daemon's memory, see check_reservation).
    cap_env = env_values(c).get("CELLAR_CAPACITY")
    request = container(reservation(objs), "reserve").get("resources", {}).get("requests", {}).get("memory")
    expect(flags["capacity"] == cap_env == request == exp["capacity"],
           f"capacity disagrees: --capacity={flags['capacity']}, reserved={request}, want {exp['capacity']}")
    # Health: liveness and readiness are `cellar probe` (the driver's Probe
    # RPC) run in the cellar container, each giving up before the kubelet
    # does, so that its message reaches the pod's events.
    for kind in ["livenessProbe", "readinessProbe"]:
        command = exec_command(c, kind)
        expect(command[1:2] == ["probe"], f"cellar {kind} runs {command}, want `cellar probe ...`")
        check_probe_timeout(c, kind)
    # Every container asks for resources; graceful termination; every node.
    for k in all_containers(ds):
        req = k.get("resources", {}).get("requests", {})
        expect("cpu" in req and "memory" in req, f"container {k['name']} has no cpu/memory request")
    expect(spec.get("terminationGracePeriodSeconds", 30) >= 30,
           "terminationGracePeriodSeconds is shorter than 30 s (RPCs and a hand-over in progress must finish)")
    expect(any(t.get("operator") == "Exists" and not t.get("key") for t in spec.get("tolerations", [])),
           "the node plugin must tolerate every taint (operator: Exists)")


def host_path_of(ds: dict, c: dict, path: str) -> str | None:
    """Where `path` inside container c is on the host, if on a hostPath."""
    found = mount_for(c, path)
    if found is None:
        return None
    src = volume(ds, found[0]["name"]).get("hostPath")
    return f"{src['path'].rstrip('/')}/{found[1]}".rstrip("/") if src else None


def handover_socket(objs: list[dict]) -> str:
    """The hand-over socket `cellar node` uses: --handover-socket, or its
    default <state-dir>/handover.sock."""
    flags = cellar_flags(objs)
    return flags.get("handover-socket") or f"{flags['state-dir'].rstrip('/')}/handover.sock"


def check_fd_holder(objs: list[dict]) -> None:
    """`cellar fd-holder` as a native sidecar that starts before and stops
    after `cellar node`, on a socket both containers see in a per-pod
    emptyDir; `cellar node --fd-holder` names that socket."""
    ds = daemonset(objs)
    spec = pod_spec(ds)
    inits = spec.get("initContainers", [])
    expect(any(k["name"] == HOLDER for k in inits),
           f"{HOLDER} must be an init container (a native sidecar), not a plain container")
    expect(not any(k["name"] == HOLDER for k in spec["containers"]), f"{HOLDER} is also a plain container")
    holder = container(ds, HOLDER)
    expect(holder.get("restartPolicy") == "Always",
           f"{HOLDER} needs restartPolicy: Always (a native sidecar: restarted, and stopped after the plugin)")
    before = [k["name"] for k in inits[:inits.index(holder)] if k.get("restartPolicy") != "Always"]
    expect(not before, f"init containers {before} run to completion before {HOLDER}")
    args = expanded_args(holder)
    expect(args[:1] == ["fd-holder"], f"{HOLDER} runs {args}, want `cellar fd-holder ...`")
    hflags = flag_values(args[1:])
    expect(hflags.get("socket") == HOLDER_SOCKET, f"{HOLDER} --socket is {hflags.get('socket')!r}, want {HOLDER_SOCKET}")
    positional = [a for a in args[1:] if not a.startswith("--")]
    expect(not positional, f"{HOLDER}: unexpected positional arguments {positional}")
    expect(hflags.get("log-level") == cellar_flags(objs).get("log-level"),
           f"{HOLDER} --log-level {hflags.get('log-level')!r} differs from cellar node's")
    # The socket: on one emptyDir volume, at the same place, in both containers.
    plugin = container(ds, "cellar")
    node_flag = cellar_flags(objs).get("fd-holder") or env_values(plugin).get("CELLAR_FD_HOLDER")
    expect(node_flag, "cellar node has no --fd-holder (nor env CELLAR_FD_HOLDER)")
    in_holder, in_plugin = mount_for(holder, HOLDER_SOCKET), mount_for(plugin, node_flag)
    expect(in_holder is not None, f"{HOLDER}: {HOLDER_SOCKET} is on no volume mount")
    expect(in_plugin is not None, f"cellar: --fd-holder {node_flag} is on no volume mount")
    expect((in_holder[0]["name"], in_holder[1]) == (in_plugin[0]["name"], in_plugin[1]),
           f"fd-holder listens on {in_holder[0]['name']}:{in_holder[1]}, "
           f"cellar node connects to {in_plugin[0]['name']}:{in_plugin[1]}")
    shared = volume(ds, in_holder[0]["name"])
    expect("emptyDir" in shared, f"the holder socket volume {shared['name']} must be a per-pod emptyDir, is {shared}")
    expect(not in_holder[0].get("readOnly") and not in_plugin[0].get("readOnly"),
           "the holder socket volume must be writable in both containers")
    # Started only once the socket exists, so `cellar node` finds it.
    probe = holder.get("startupProbe", {}).get("exec", {}).get("command", [])
    expect(HOLDER_SOCKET in probe, f"{HOLDER} needs a startupProbe that waits for {HOLDER_SOCKET}, has {probe}")
    # Cheap and unprivileged, but root like the plugin.
    sc = holder.get("securityContext", {})
    expect(not sc.get("privileged"), f"{HOLDER} must not be privileged")
    expect(sc.get("runAsUser") == 0, f"{HOLDER} must run as root (runAsUser: 0), like the plugin")
    expect(sc.get("allowPrivilegeEscalation") is False, f"{HOLDER} must set allowPrivilegeEscalation: false")
    expect("ALL" in sc.get("capabilities", {}).get("drop", []), f"{HOLDER} must drop all capabilities")
    requests = holder.get("resources", {}).get("requests", {})
    expect(requests.get("cpu") and requests.get("memory"), f"{HOLDER} needs cpu and memory requests")
    expect(not any(m["name"] in ("state-dir", "dev-dir", "kubelet-pods-dir") for m in holder.get("volumeMounts", [])),
           f"{HOLDER} mounts host paths it does not need")


def check_handover(objs: list[dict], exp: dict) -> None:
    """--after-handover=wait, and the hand-over socket on the deployment's
    state directory (a hostPath that the old and the new pod both see)."""
    flags = cellar_flags(objs)
    expect(flags.get("after-handover") == "wait",
           f"cellar node --after-handover is {flags.get('after-handover')!r}, want wait (an exited old "
           "container would be restarted and take the node back)")
    sock = handover_socket(objs)
    state = f"/var/lib/cellar/{exp['namespace']}/{exp['name']}"
    expect(sock.startswith(state + "/"), f"hand-over socket {sock} is not in the state directory {state}")
    ds = daemonset(objs)
    expect(host_path_of(ds, container(ds, "cellar"), sock) == sock,
           f"hand-over socket {sock} is not at the same path on the host (hostPath)")


def int_or_percent(value) -> str:
    return str(value) if value is not None else "absent"


def check_rollout(objs: list[dict]) -> None:
    """Rolling update with a surge (new pod beside the old one), nothing that
    would stop two plugin pods sharing a node, and readiness/termination as
    the hand-over needs them."""
    ds = daemonset(objs)
    strategy = ds["spec"].get("updateStrategy", {})
    ru = strategy.get("rollingUpdate", {})
    expect(strategy.get("type", "RollingUpdate") == "RollingUpdate", f"updateStrategy is {strategy.get('type')}")
    expect(str(ru.get("maxSurge")) == "1", f"maxSurge is {int_or_percent(ru.get('maxSurge'))}, want 1")
    expect(str(ru.get("maxUnavailable")) == "0", f"maxUnavailable is {int_or_percent(ru.get('maxUnavailable'))}, want 0")
    expect(ds["spec"].get("minReadySeconds", 0) >= 5,
           "minReadySeconds < 5: the old pod could be deleted before the new daemon has taken over")
    # A surge pod must fit beside the old one: no host ports, no host network.
    for d in objects_of(objs, "DaemonSet"):
        spec = pod_spec(d)
        expect(not spec.get("hostNetwork"), f"{ident(d)} uses hostNetwork")
        for c in all_containers(d):
            for port in c.get("ports", []):
                expect("hostPort" not in port, f"{ident(d)}: container {c['name']} port {port} uses a hostPort")
    # Readiness and liveness of the plugin go through the driver's Probe.
    plugin = container(ds, "cellar")
    expect(plugin.get("readinessProbe"), "cellar has no readinessProbe")
    # The old daemon idles until SIGTERM; nothing in the pod may make it exit.
    expect(pod_spec(ds).get("restartPolicy", "Always") == "Always", "the plugin pod must restart containers")
    # The registrar's liveness bounds the registration gap should its socket go.
    reg = container(ds, REGISTRAR).get("livenessProbe", {})
    gap = reg.get("periodSeconds", 10) * reg.get("failureThreshold", 3)
    expect(gap <= 15, f"registrar liveness detects a removed registration socket after {gap} s; keep it <= 15 s")
    # The memory budget must not be asked for twice during a surge.
    mem = container(ds, "cellar").get("resources", {}).get("requests", {}).get("memory", "")
    cap = env_values(container(ds, "cellar")).get("CELLAR_CAPACITY")
    expect(mem != cap, f"the plugin requests the capacity ({cap}) itself; a surge pod would reserve it twice")


def check_registrar(objs: list[dict]) -> None:
    """`cellar registrar` registers the driver with the kubelet, and its
    liveness probe (`cellar registrar --check`) asks about the same
    registration: the same directory, the same endpoint."""
    ds = daemonset(objs)
    reg = container(ds, REGISTRAR)
    args = expanded_args(reg)
    expect(args[:1] == ["registrar"], f"{REGISTRAR} runs {args}, want `cellar registrar ...`")
    flags = flag_values(args[1:])
    for required in ["csi-address", "kubelet-registration-path"]:
        expect(flags.get(required), f"cellar registrar lacks --{required}")
    positional = [a for a in args[1:] if not a.startswith("--")]
    expect(not positional, f"{REGISTRAR}: unexpected positional arguments {positional}")
    expect("check" not in flags, f"{REGISTRAR} runs the check, not the registrar")
    command = exec_command(reg, "livenessProbe")
    expect(command[1:3] == ["registrar", "--check"],
           f"{REGISTRAR} livenessProbe runs {command}, want `cellar registrar --check ...`")
    check_probe_timeout(reg, "livenessProbe")
    # Liveness would restart a registrar that still waits for the driver (no
    # socket yet); a startup probe, if any, must be the same check.
    if "startupProbe" in reg:
        expect(exec_command(reg, "startupProbe") == command,
               f"{REGISTRAR} startupProbe {exec_command(reg, 'startupProbe')} differs from its livenessProbe {command}")
        check_probe_timeout(reg, "startupProbe")
    cflags = flag_values(command[3:])
    # The kubelet does not expand $(VAR) in probe commands: a flag left out is
    # taken from the container's env (DRIVER_REG_SOCK_PATH), a literal one
    # must equal what the registrar serves.
    env = env_values(reg)
    endpoint = cflags.get("kubelet-registration-path") or env.get("DRIVER_REG_SOCK_PATH")
    expect("$(" not in " ".join(command), f"{REGISTRAR} livenessProbe {command} uses $(VAR), which probes do not expand")
    expect(endpoint == flags["kubelet-registration-path"],
           f"the registrar's liveness checks endpoint {endpoint}, the registrar registers {flags['kubelet-registration-path']}")
    directory = cflags.get("plugin-registration-path") or "/registration"
    expect(directory == (flags.get("plugin-registration-path") or "/registration"),
           f"the registrar's liveness looks in {directory}, the registrar serves in {flags.get('plugin-registration-path')}")
    # Root for the kubelet's directory and the driver's socket, nothing more.
    sc = reg.get("securityContext", {})
    expect(not sc.get("privileged"), f"{REGISTRAR} must not be privileged")
    expect(sc.get("runAsUser") == 0, f"{REGISTRAR} must run as root (the kubelet's plugins_registry is root's)")
    expect(sc.get("allowPrivilegeEscalation") is False, f"{REGISTRAR} must set allowPrivilegeEscalation: false")
    expect("ALL" in sc.get("capabilities", {}).get("drop", []), f"{REGISTRAR} must drop all capabilities")
    expect(not reg.get("ports"), f"{REGISTRAR} serves no port (its probe is exec)")
    expect(not any(m["name"] in ("state-dir", "dev-dir", "kubelet-pods-dir") for m in reg.get("volumeMounts", [])),
           f"{REGISTRAR} mounts host paths it does not need")


def check_reservation(objs: list[dict], exp: dict) -> None:
    """The capacity reserved by placeholder pods that never surge, on the
    same nodes as the plugin, and the two DaemonSets never adopting each
    other's pods."""
    ds, res = daemonset(objs), reservation(objs)
    expect(len(objects_of(objs, "DaemonSet")) == 2, "want exactly two DaemonSets (node plugin, memory reservation)")
    ru = res["spec"].get("updateStrategy", {}).get("rollingUpdate", {})
    expect(str(ru.get("maxSurge", 0)) == "0", f"{ident(res)} must not surge (it would reserve the memory twice)")
    spec, pspec = pod_spec(res), pod_spec(ds)
    for key in ["priorityClassName", "nodeSelector", "tolerations"]:
        expect(spec.get(key) == pspec.get(key), f"{ident(res)} {key} differs from the plugin's")
    reserve = container(res, "reserve")
    expect(reserve.get("resources", {}).get("requests", {}).get("memory") == exp["capacity"],
           f"{ident(res)} reserves {reserve.get('resources')}, want memory {exp['capacity']}")
    limit = reserve.get("resources", {}).get("limits", {}).get("memory")
    expect(limit in (None, exp["capacity"]), f"{ident(res)} memory limit {limit} differs from its request")
    expect(spec.get("automountServiceAccountToken") is False, f"{ident(res)} needs no API token")
    for a, b in [(ds, res), (res, ds)]:
        sel = a["spec"]["selector"]["matchLabels"]
        labels = b["spec"]["template"]["metadata"]["labels"]
        expect(not all(labels.get(k) == v for k, v in sel.items()), f"{ident(a)} selects the pods of {ident(b)}")
        own = a["spec"]["template"]["metadata"]["labels"]
        expect(all(own.get(k) == v for k, v in sel.items()), f"{ident(a)} does not select its own pods")


def check_provisioner(objs: list[dict]) -> None:
    ds = daemonset(objs)
    c = container(ds, "csi-provisioner")
    flags = flag_values(c.get("args", []))
    want = {"node-deployment": "true", "capacity-ownerref-level": "0"}
    for key, value in want.items():
        expect(flags.get(key) == value, f"csi-provisioner --{key} is {flags.get(key)!r}, want {value}")
    expect("Topology=true" in (flags.get("feature-gates") or "").split(","),
           "csi-provisioner needs --feature-gates=Topology=true")
    for bare in ["enable-capacity", "extra-create-metadata", "strict-topology"]:
        expect(bare in flags and flags[bare] in (None, "true"), f"csi-provisioner needs --{bare}")
    expect(flags.get("leader-election") in (None, "false"),
           "csi-provisioner must not use leader election with --node-deployment")
    fields = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in c.get("env", [])}
    for name, path in [("NODE_NAME", "spec.nodeName"), ("NAMESPACE", "metadata.namespace"),
                       ("POD_NAME", "metadata.name")]:
        expect(fields.get(name) == path, f"csi-provisioner needs env {name} from fieldRef {path}")


def granted(rules: list[dict]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for r in rules:
        for verb in r.get("verbs", []):
            expect(verb != "*", "RBAC rules must not use verb '*'")
        for g in r.get("apiGroups", []):
            for res in r.get("resources", []):
                expect("*" not in (g, res), "RBAC rules must not use '*'")
                out.setdefault((g, res), set()).update(r.get("verbs", []))
    return out


def check_rbac(objs: list[dict]) -> None:
    ds = daemonset(objs)
    sa_name = pod_spec(ds).get("serviceAccountName")
    ns = ds["metadata"]["namespace"]
    expect(any(sa["metadata"]["name"] == sa_name for sa in objects_of(objs, "ServiceAccount")),
           f"DaemonSet uses ServiceAccount {sa_name}, which is not rendered")
    cr, crb = one(objs, "ClusterRole"), one(objs, "ClusterRoleBinding")
    role, rb = one(objs, "Role"), one(objs, "RoleBinding")
    expect(granted(cr["rules"]) == CLUSTER_RULES,
           f"ClusterRole grants {granted(cr['rules'])}, want exactly {CLUSTER_RULES}")
    expect(granted(role["rules"]) == NAMESPACE_RULES,
           f"Role grants {granted(role['rules'])}, want exactly {NAMESPACE_RULES}")
    for binding, target in [(crb, cr), (rb, role)]:
        ref = binding["roleRef"]
        expect(ref["kind"] == target["kind"] and ref["name"] == target["metadata"]["name"],
               f"{ident(binding)} refers to {ref['kind']}/{ref['name']}, not {ident(target)}")
        expect(binding.get("subjects") == [{"kind": "ServiceAccount", "name": sa_name, "namespace": ns}],
               f"{ident(binding)} does not bind exactly ServiceAccount {ns}/{sa_name}")


def documented_images() -> set[str]:
    """The OTHER_IMAGES whose file documents them in its header comment."""
    out = set()
    for image, name in OTHER_IMAGES.items():
        repo, _, tag = image.rpartition(":")
        text = (DEPLOY / "kubernetes" / "base" / name).read_text()
        if re.search(rf"^#.*{re.escape(repo)}\s+{re.escape(tag)}\b", text, re.M):
            out.add(image)
    return out


def pinned_sidecars() -> dict[str, str]:
    """The sidecar versions named in the comment at the top of daemonset.yaml
    (lines `#   <image name>  v<x.y.z>`)."""
    text = (DEPLOY / "kubernetes" / "base" / "daemonset.yaml").read_text()
    header = text.split("\napiVersion:", 1)[0]
    return dict(re.findall(r"^#\s+([a-z][a-z-]+)\s+(v\d+\.\d+\.\d+)", header, re.M))


def check_images(objs: list[dict], cellar_image: str = "cellar:0.1.0") -> None:
    documented = pinned_sidecars()
    expect(set(documented) == {"csi-provisioner"},
           f"daemonset.yaml documents sidecars {documented}, want csi-provisioner alone")
    for name, replacement in REPLACED_SIDECARS.items():
        expect(name not in documented, f"daemonset.yaml still documents {name}; {replacement} replaces it")
    others = documented_images()
    ds = daemonset(objs)
    for name, subcommand in CELLAR_SUBCOMMANDS.items():
        c = container(ds, name)
        expect(c["image"] == cellar_image, f"{name} must run the cellar image {cellar_image}, runs {c['image']}")
        expect(expanded_args(c)[:1] == [subcommand], f"{name} must run `cellar {subcommand}`")
    for c in [c for d in objects_of(objs, "DaemonSet") for c in all_containers(d)]:
        image = c["image"]
        for name, replacement in REPLACED_SIDECARS.items():
            expect(f"/{name}:" not in image and not image.startswith(f"{name}:"),
                   f"container {c['name']} uses {image}, which cannot be built here; {replacement} replaces it")
        if c["name"] in CELLAR_SUBCOMMANDS:
            continue
        if image in OTHER_IMAGES:
            expect(image in others, f"{image} is not documented in the header of {OTHER_IMAGES[image]}")
            continue
        m = re.fullmatch(r"registry\.k8s\.io/sig-storage/([a-z-]+):(v\d+\.\d+\.\d+)", image)
        expect(m is not None, f"container {c['name']}: image {image} is not a pinned registry.k8s.io/sig-storage release")
        expect(documented.get(m.group(1)) == m.group(2),
               f"{image} differs from the version documented in daemonset.yaml ({documented.get(m.group(1))})")


# ------------------------------------------------------------ cross checks


def footprint(objs: list[dict]) -> dict[str, set]:
    ds = daemonset(objs)
    host_paths = {v["hostPath"]["path"] for v in pod_spec(ds).get("volumes", []) if "hostPath" in v}
    reg = env_values(container(ds, "node-driver-registrar")).get("DRIVER_REG_SOCK_PATH")
    host_paths |= {v["hostPath"]["path"] for d in objects_of(objs, "DaemonSet")
                   for v in pod_spec(d).get("volumes", []) if "hostPath" in v} - SHARED_HOST_PATHS
    return {
        "cluster-scoped objects": {(o["kind"], o["metadata"]["name"]) for o in objs
                                   if o["kind"] in CLUSTER_SCOPED and o["kind"] != "Namespace"},
        "namespaced objects": {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in objs
                               if o["kind"] not in CLUSTER_SCOPED},
        "host paths": (host_paths - SHARED_HOST_PATHS) | {reg},
        "hand-over sockets": {handover_socket(objs)},
        "DaemonSet selectors": {(d["metadata"]["namespace"], tuple(sorted(d["spec"]["selector"]["matchLabels"].items())))
                                for d in objects_of(objs, "DaemonSet")},
    }


def check_no_collision(a: list[dict], b: list[dict]) -> None:
    fa, fb = footprint(a), footprint(b)
    clashes = {k: fa[k] & fb[k] for k in fa if fa[k] & fb[k]}
    expect(not clashes, "two deployments would share: " + "; ".join(f"{k}: {sorted(map(str, v))}"
                                                                  for k, v in clashes.items()))
    expect(fa["cluster-scoped objects"] and fa["host paths"], "empty footprint")


def strip_header(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("#"))


def check_overlay_is_current(ctx: Context) -> None:
    """The committed vineyard overlay is what render.sh writes today."""
    overlay, objs = render_sh("vineyard-system", "vineyardd-sample", workdir=ctx.workdir)
    expect((overlay / "settings.yaml").read_text() == (VINEYARD_OVERLAY / "settings.yaml").read_text(),
           f"{VINEYARD_OVERLAY.relative_to(REPO)}/settings.yaml is stale: rerun deploy/render.sh vineyard-system vineyardd-sample")
    expect(objs == ctx.renders["vineyard"],
           "deploy/render.sh vineyard-system vineyardd-sample renders differently from the committed overlay")


def check_render_default(ctx: Context) -> None:
    _, objs = render_sh("cellar-system", "cellar", workdir=ctx.workdir)
    expect(objs == ctx.renders["default"], "deploy/render.sh cellar-system cellar differs from kubectl kustomize deploy/")


def check_existing_namespace(ctx: Context) -> None:
    _, objs = render_sh("vineyard-system", "vineyardd-sample", "--existing-namespace", workdir=ctx.workdir)
    expect(not objects_of(objs, "Namespace"), "--existing-namespace still renders the Namespace")
    rest = [o for o in ctx.renders["vineyard"] if o["kind"] != "Namespace"]
    expect(objs == rest, "--existing-namespace changes more than the Namespace object")


def check_render_options(ctx: Context) -> None:
    image = "registry.example.com:5000/team/cellar:1.2.3"
    _, objs = render_sh("team-a", "scratch", "--capacity", "512Mi", "--image", image,
                        "--log-level", "debug", workdir=ctx.workdir)
    check_identity(objs, {"namespace": "team-a", "name": "scratch", "storage_class": "team-a.scratch.csi"})
    exp = {"namespace": "team-a", "name": "scratch", "capacity": "512Mi"}
    check_node_plugin(objs, exp)
    check_reservation(objs, exp)
    check_fd_holder(objs)
    check_handover(objs, exp)
    check_rollout(objs)
    check_images(objs, cellar_image=image)
    check_registrar(objs)
    expect(cellar_flags(objs).get("log-level") == "debug", "--log-level did not reach cellar node")
    holder_level = flag_values(expanded_args(container(daemonset(objs), HOLDER))).get("log-level")
    expect(holder_level == "debug", f"--log-level did not reach cellar fd-holder ({holder_level})")
    expect(one(objs, "CSIDriver")["metadata"]["name"] == "scratch.team-a.csi.cellar.dev", "derived driver name")


def check_render_rejects(ctx: Context) -> None:
    bad = [
        (["Bad_NS", "x"], "namespace"),
        (["ns", "a.b"], "name"),
        (["ns", "x", "--capacity", "4GB"], "capacity"),
        (["ns", "x", "--log-level", "loud"], "log level"),
        (["n" * 40, "m" * 40], "longer than 63"),
    ]
    for args, word in bad:
        proc = run([str(DEPLOY / "render.sh"), "--no-print", "--output-dir",
                    str(ctx.workdir / "rejected"), *args], check=False)
        expect(proc.returncode == 2 and word in proc.stderr,
               f"render.sh {' '.join(args)} exited {proc.returncode}, said {proc.stderr.strip()!r}")
    expect(not (ctx.workdir / "rejected").exists(), "render.sh wrote an overlay for rejected input")


def check_broken_manifest_fails() -> None:
    """The validator fails an invalid manifest and names object and field."""
    objs = [o for o in yaml.safe_load_all(BROKEN_FIXTURE.read_text()) if o]
    results = validate_objects([("fixtures/broken.yaml", o) for o in objs])
    expect(all(r["errors"] for r in results),
           "validate.mjs accepted: " + ", ".join(f"{r['kind']}/{r['name']}" for r in results if not r["errors"]))
    lines = schema_errors([("fixtures/broken.yaml", o) for o in objs])
    for obj, path, word in BROKEN_EXPECTED:
        hit = [line for line in lines if f": {obj}: {path}: " in line and word in line]
        expect(hit, f"no error for {obj} at {path} mentioning {word!r}; got:\n" + "\n".join(lines))


def check_requirements_documented() -> None:
    """The Kubernetes version native sidecars need is stated where operators look."""
    readme = (DEPLOY / "README.md").read_text()
    expect("Kubernetes 1.29 or later" in readme, "deploy/README.md does not state Kubernetes 1.29 or later")
    header = (DEPLOY / "kubernetes" / "base" / "daemonset.yaml").read_text()
    expect(">= 1.29" in header, "daemonset.yaml does not state Kubernetes >= 1.29")
    for word in ["maxSurge", "fd-holder", "What failures cost", "node reboot"]:
        expect(word in readme, f"deploy/README.md does not mention {word!r}")


def check_settings_documented() -> None:
    settings = yaml.safe_load((DEPLOY / "settings.yaml").read_text())
    expect(settings["metadata"]["annotations"].get("config.kubernetes.io/local-config") == "true",
           "deploy/settings.yaml must be local-config (never sent to the cluster)")
    comp = yaml.safe_load((DEPLOY / "kubernetes" / "components" / "identity" / "kustomization.yaml").read_text())
    sources = {r["source"]["fieldPath"].split(".", 1)[1] for r in comp["replacements"]}
    expect(sources == set(settings["data"]), f"settings {sorted(settings['data'])} vs replaced {sorted(sources)}")


# ---------------------------------------------------------------- metrics

MONITORING = DEPLOY / "kubernetes" / "components" / "monitoring"
DASHBOARD = DEPLOY / "grafana" / "cellar-dashboard.json"


def metrics_port(objs: list[dict]) -> int:
    """The port of `cellar node --metrics-address`, which the deployment must set."""
    ds = daemonset(objs)
    flags = flag_values(expanded_args(container(ds, "cellar")))
    address = flags.get("metrics-address")
    expect(bool(address), "cellar node has no --metrics-address: /metrics is off")
    port = address.rsplit(":", 1)[-1]
    expect(port.isdigit(), f"--metrics-address={address} has no port")
    return int(port)


def check_metrics_endpoint(objs: list[dict]) -> None:
    """/metrics is on, on a named container port, and the scrape annotations agree."""
    ds = daemonset(objs)
    port = metrics_port(objs)
    ports = {p.get("name"): p for p in container(ds, "cellar").get("ports", [])}
    expect("metrics" in ports and ports["metrics"]["containerPort"] == port,
           f"the cellar container has no port named metrics = {port}: {ports}")
    notes = ds["spec"]["template"]["metadata"].get("annotations", {})
    expect(notes.get("prometheus.io/scrape") == "true", "pod annotation prometheus.io/scrape is not \"true\"")
    expect(notes.get("prometheus.io/port") == str(port), f"prometheus.io/port {notes.get('prometheus.io/port')} != {port}")
    expect(notes.get("prometheus.io/path") == "/metrics", "prometheus.io/path is not /metrics")


def render_with(ctx: Context, settings: Path, component: Path) -> list[dict]:
    """The deployment with `settings` plus an optional component, as an operator adds it
    (after the identity component)."""
    d = Path(tempfile.mkdtemp(prefix=f"{component.name}.", dir=ctx.workdir))
    shutil.copy(settings, d / "settings.yaml")
    # kustomize takes other directories only by relative path.
    base, identity, extra = (os.path.relpath(p, d) for p in (
        DEPLOY / "kubernetes" / "base", DEPLOY / "kubernetes" / "components" / "identity", component))
    (d / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {base}\n  - settings.yaml\n"
        f"components:\n  - {identity}\n  - {extra}\n")
    return kustomize(d)


def check_monitoring_component(ctx: Context, settings: Path, exp: dict) -> None:
    """The optional component's Service selects the plugin pods and their metrics
    port, its ServiceMonitor selects the Service, both in the deployment's namespace
    with its name, for every rendering."""
    objs = render_with(ctx, settings, MONITORING)
    ds = daemonset(objs)
    svc = one(objs, "Service")
    mon = one(objs, "ServiceMonitor")
    for o in (svc, mon):
        expect(o["metadata"]["namespace"] == exp["namespace"], f"{ident(o)} in namespace {o['metadata']['namespace']}")
        expect(o["metadata"]["name"] == f"{exp['name']}-metrics", f"{ident(o)}: want {exp['name']}-metrics")
    pod_labels = ds["spec"]["template"]["metadata"]["labels"]
    expect(all(pod_labels.get(k) == v for k, v in svc["spec"]["selector"].items()),
           f"Service selector {svc['spec']['selector']} does not select the plugin pods {pod_labels}")
    expect(len(svc["spec"]["ports"]) == 1, f"Service ports {svc['spec']['ports']}: want one")
    port = svc["spec"]["ports"][0]
    expect(port["targetPort"] == "metrics" and port["port"] == metrics_port(objs),
           f"Service port {port} is not the plugin's metrics port")
    expect(all(svc["metadata"]["labels"].get(k) == v for k, v in mon["spec"]["selector"]["matchLabels"].items()),
           "the ServiceMonitor does not select the Service")
    expect([e["port"] for e in mon["spec"]["endpoints"]] == ["metrics"], "the ServiceMonitor scrapes another port")
    # The CRD's schema is the operator's; the Service is validated like every object.
    errors = schema_errors([("monitoring component", svc)])
    expect(not errors, "\n".join(errors))


def exported_metrics() -> set[str]:
    """Every series name `cellar node` serves, from the names in csi/'s sources
    (histograms also as _bucket, _sum and _count)."""
    names = set()
    for src in (REPO / "csi").glob("*.cc"):
        if src.name.endswith("_test.cc"):
            continue
        names |= set(re.findall(r'"(cellar_[a-z_]+)"', src.read_text()))
    for n in list(names):
        if n.endswith("_seconds"):
            names |= {n + "_bucket", n + "_sum", n + "_count"}
    return names


def check_dashboard() -> None:
    """The Grafana dashboard parses, and asks only for series Cellar serves."""
    dash = json.loads(DASHBOARD.read_text())
    known = exported_metrics()
    expect("cellar_node_used_bytes" in known, f"found no metric names in csi/: {sorted(known)}")
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    expect(len(exprs) >= 10, f"only {len(exprs)} queries in {DASHBOARD.name}")
    for expr in exprs:
        for name in re.findall(r"\b(cellar_[a-z_]+)", expr):
            expect(name in known, f"{DASHBOARD.name} queries {name}, which cellar node does not serve")
    for family in ["cellar_node_used_bytes", "cellar_volume_used_bytes", "cellar_csi_calls_total",
                   "cellar_fuse_requests_total", "cellar_fuse_opens_total",
                   "cellar_publications_connection_lost"]:
        expect(any(family in e for e in exprs), f"{DASHBOARD.name} has no panel on {family}")


# ------------------------------------------------------------- registration


def register(runner: Runner, ctx: Context) -> None:
    renders = {
        "default": ("kubectl kustomize deploy/", DEPLOY),
        "vineyard": (f"kubectl kustomize {VINEYARD_OVERLAY.relative_to(REPO)}", VINEYARD_OVERLAY),
    }
    for key, (label, directory) in renders.items():
        objs = runner.check(f"render: {label}", kustomize, directory)
        if objs is not None:
            ctx.renders[key] = objs

    for key, objs in ctx.renders.items():
        exp = EXPECTED[key]
        tag = f"[{exp['namespace']}/{exp['name']}]"
        runner.check(f"schema {tag}: every object validates (OpenAPI, no unknown fields)", check_schemas,
                     renders[key][0], objs)
        runner.check(f"contract {tag}: StorageClass {exp['storage_class']}, namespace of every object",
                     check_identity, objs, exp)
        runner.check(f"contract {tag}: CSIDriver {exp['driver']}", check_csidriver, objs, exp)
        runner.check(f"contract {tag}: StorageClass binding/expansion/reclaim", check_storageclass, objs, exp)
        runner.check(f"contract {tag}: driver name agrees everywhere", check_driver_name, objs, exp)
        runner.check(f"contract {tag}: plugin, registrar, provisioner and the plugin's probes share one socket",
                     check_sockets, objs)
        runner.check(f"contract {tag}: `cellar registrar` and its `--check` liveness agree, root without "
                     "capabilities", check_registrar, objs)
        runner.check(f"contract {tag}: node plugin (privileged, mounts, capacity, probes, requests)",
                     check_node_plugin, objs, exp)
        runner.check(f"contract {tag}: fd-holder native sidecar, shared socket volume, cellar --fd-holder",
                     check_fd_holder, objs)
        runner.check(f"contract {tag}: --after-handover=wait, hand-over socket on the state-dir hostPath",
                     check_handover, objs, exp)
        runner.check(f"contract {tag}: rolling update maxSurge 1/maxUnavailable 0, no hostPort, readiness, "
                     "termination", check_rollout, objs)
        runner.check(f"contract {tag}: capacity reserved by a DaemonSet that never surges", check_reservation,
                     objs, exp)
        runner.check(f"contract {tag}: csi-provisioner distributed provisioning flags", check_provisioner, objs)
        runner.check(f"contract {tag}: RBAC is exactly what the provisioner needs", check_rbac, objs)
        runner.check(f"contract {tag}: images pinned, cellar image for cellar/fd-holder/registrar, no "
                     "replaced sidecar", check_images, objs)
        runner.check(f"contract {tag}: /metrics on, named port, scrape annotations agree", check_metrics_endpoint,
                     objs)
        settings = DEPLOY / "settings.yaml" if key == "default" else VINEYARD_OVERLAY / "settings.yaml"
        runner.check(f"contract {tag}: monitoring component: Service and ServiceMonitor select the plugin's "
                     "metrics", check_monitoring_component, ctx, settings, exp)
        runner.check(f"contract {tag}: peering component: relay on the host network to the plugin's "
                     "socket, peer flags, the Secret peer-certs.sh makes, the peers class",
                     check_peering.check_component, render_with(ctx, settings, check_peering.PEERING),
                     exp, ctx.workdir)
        runner.check(f"contract {tag}: placement component: webhook named by the settings, its Service, "
                     "get-only RBAC, the Secret and MutatingWebhookConfiguration webhook-certs.sh prints",
                     lambda: check_placement.check_component(render_with(ctx, settings, check_placement.PLACEMENT),
                                                             exp, ctx.workdir))

    if {"default", "vineyard"} <= ctx.renders.keys():
        runner.check("render.sh: committed vineyard overlay is current", check_overlay_is_current, ctx)
        runner.check("render.sh: cellar-system/cellar equals deploy/", check_render_default, ctx)
        runner.check("render.sh: --existing-namespace leaves out only the Namespace", check_existing_namespace, ctx)
        runner.check("render.sh: default and vineyard deployments do not collide",
                     check_no_collision, ctx.renders["default"], ctx.renders["vineyard"])

        def same_namespace():
            _, other = render_sh("cellar-system", "second", workdir=ctx.workdir)
            check_no_collision(ctx.renders["default"], other)
        runner.check("render.sh: two deployments in one namespace do not collide", same_namespace)
    runner.check("render.sh: --capacity/--image/--log-level reach the objects", check_render_options, ctx)
    runner.check("render.sh: rejects invalid names, sizes and levels", check_render_rejects, ctx)
    runner.check("settings: every setting is replaced, settings never applied", check_settings_documented)
    runner.check("docs: Kubernetes >= 1.29, rollout and failure costs documented", check_requirements_documented)
    runner.check("schema: a broken manifest fails, naming object and field", check_broken_manifest_fails)
    runner.check("grafana: the dashboard parses and queries only what cellar node serves", check_dashboard)


def render_only(runner: Runner, ctx: Context) -> None:
    """Just the renderings, for runs that skip the manifest checks."""
    for key, directory in [("default", DEPLOY), ("vineyard", VINEYARD_OVERLAY)]:
        objs = runner.check(f"render: {directory.relative_to(REPO)}", kustomize, directory)
        if objs is not None:
            ctx.renders[key] = objs
