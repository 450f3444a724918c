"""The peering component (deploy/kubernetes/components/peering), rendered after the
identity component: what cross-node reads need to hold together in a cluster.

- the relay DaemonSet runs the plugin's image, on the host network at the node's address, on a host port,
  and carries connections to the socket the node plugin serves: same state directory
  (hostPath and env), same file;
- the node plugin listens on that socket, advertises the node's address on the relay's
  port, and reads its credentials from the Secret deploy/peer-certs.sh makes for this
  deployment's name;
- the peers StorageClass is <namespace>.<name>.peers.csi, of this driver, with
  cellar.dev/nodes=peers;
- every object validates against the API schema."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.deploy.harness import (DEPLOY, container, daemonset_of, env_values, expanded_args, expect,
                                  flag_values, objects_of, schema_errors)

PEERING = DEPLOY / "kubernetes" / "components" / "peering"
NODE_IP = "10.0.0.5"


def host_path(ds: dict, volume: str) -> str:
    return next(v["hostPath"]["path"] for v in ds["spec"]["template"]["spec"]["volumes"]
                if v["name"] == volume)


def secret_peer_certs_makes(name: str, namespace: str, workdir: Path) -> dict:
    out = subprocess.run(["bash", str(DEPLOY / "peer-certs.sh"), str(workdir / f"peer-tls.{name}"),
                          "--secret", namespace, "--name", name],
                         capture_output=True, text=True, check=True).stdout
    return yaml.safe_load(out)


def check_component(objs: list[dict], exp: dict, workdir: Path) -> None:
    plugin = daemonset_of(objs, "node-plugin")
    relay = daemonset_of(objs, "peer-relay")
    fields = {"status.hostIP": NODE_IP, "spec.nodeName": "node-1"}

    expect(relay["metadata"]["namespace"] == exp["namespace"]
           and relay["metadata"]["name"] == f"{exp['name']}-peer",
           f"relay is {relay['metadata']['namespace']}/{relay['metadata']['name']}")
    spec = relay["spec"]["template"]["spec"]
    expect(spec.get("hostNetwork") is True, "the relay is not on the host network")
    expect(relay["spec"]["updateStrategy"]["rollingUpdate"].get("maxSurge", 0) == 0,
           "the relay surges: two pods cannot hold one host port")
    r = container(relay, "relay")
    plugin_image = container(plugin, "cellar")["image"]
    expect(r["image"] == plugin_image and r.get("imagePullPolicy") == "IfNotPresent",
           f"relay image {r['image']} ({r.get('imagePullPolicy')}), the plugin runs {plugin_image}")
    rflags = flag_values(expanded_args(r, fields))
    expect(rflags.get("listen") == f"{NODE_IP}:7443", f"relay --listen={rflags.get('listen')}")
    expect([p.get("hostPort") for p in r.get("ports", [])] == [7443], "relay host port is not 7443")

    c = container(plugin, "cellar")
    state_dir = env_values(c)["CELLAR_STATE_DIR"]
    expect(env_values(r)["CELLAR_STATE_DIR"] == state_dir
           and host_path(relay, "state-dir") == host_path(plugin, "state-dir") == state_dir,
           "the relay and the plugin do not share the state directory")
    flags = flag_values(expanded_args(c, fields))
    socket = f"{state_dir}/peer.sock"
    expect(flags.get("peer-listen") == f"unix://{socket}", f"--peer-listen={flags.get('peer-listen')}")
    expect(rflags.get("to") == socket, f"relay --to={rflags.get('to')}, plugin serves {socket}")
    expect(flags.get("peer-advertise") == rflags.get("listen"),
           f"--peer-advertise={flags.get('peer-advertise')}, relay at {rflags.get('listen')}")

    tls_dir = flags.get("peer-tls-dir")
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    expect(tls_dir in mounts, f"--peer-tls-dir={tls_dir} is not a mount of the cellar container")
    volume = next(v for v in plugin["spec"]["template"]["spec"]["volumes"] if v["name"] == mounts[tls_dir])
    secret = secret_peer_certs_makes(exp["name"], exp["namespace"], workdir)
    expect(volume.get("secret", {}).get("secretName") == secret["metadata"]["name"]
           and secret["metadata"]["namespace"] == exp["namespace"],
           f"the plugin mounts {volume}, peer-certs.sh makes {secret['metadata']}")
    expect(set(secret["data"]) == {"ca.crt", "tls.crt", "tls.key"}, f"Secret keys {sorted(secret['data'])}")

    classes = {o["metadata"]["name"]: o for o in objects_of(objs, "StorageClass")}
    want = f"{exp['namespace']}.{exp['name']}.peers.csi"
    expect(set(classes) == {exp["storage_class"], want}, f"StorageClasses {sorted(classes)}")
    sc = classes[want]
    expect(sc["provisioner"] == exp["driver"] and sc.get("parameters") == {"cellar.dev/nodes": "peers"}
           and sc.get("volumeBindingMode") == "WaitForFirstConsumer",
           f"{want}: provisioner {sc['provisioner']}, parameters {sc.get('parameters')}")
    expect("parameters" not in classes[exp["storage_class"]], "the deployment's own class changed")

    errors = schema_errors([("peering component", o) for o in (relay, plugin, sc)])
    expect(not errors, "\n".join(errors))
