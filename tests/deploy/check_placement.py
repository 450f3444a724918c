"""The placement component (deploy/kubernetes/components/placement), rendered after the
identity component, and what deploy/webhook-certs.sh prints beside it:

- the webhook's Deployment, Service and ServiceAccount are <name>-webhook in the
  deployment's namespace, its ClusterRole(Binding) <namespace>.<name>.webhook, the
  Deployment runs `cellar webhook` for this driver on the image the node plugin runs,
  as a restricted container (no privilege, all capabilities dropped, read-only root);
- the Service selects the Deployment's pods and reaches the port `--listen` serves,
  which the readiness probe checks over HTTPS at /healthz;
- the RBAC is exactly get on persistentvolumeclaims and persistentvolumes;
- the script's Secret is the one the Deployment mounts, its certificate is for the
  Service's DNS name and signed by the CA the MutatingWebhookConfiguration trusts, and
  that configuration calls the Service at /mutate for pod CREATE only, never blocks
  (failurePolicy Ignore, 2 s) and skips kube-system and the deployment's namespace;
- every object validates against the API schema."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import yaml

from tests.deploy.harness import (DEPLOY, container, daemonset_of, expanded_args, expect, flag_values,
                                  ident, objects_of, schema_errors)

PLACEMENT = DEPLOY / "kubernetes" / "components" / "placement"
COMPONENT = "placement-webhook"


def webhook_objects(objs: list[dict]) -> dict[str, dict]:
    """The component's objects by kind (one each)."""
    found: dict[str, dict] = {}
    for o in objs:
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == COMPONENT:
            expect(o["kind"] not in found, f"two {o['kind']} objects of the placement component")
            found[o["kind"]] = o
    want = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment", "Service"}
    expect(set(found) == want, f"the placement component renders {sorted(found)}, want {sorted(want)}")
    return found


def script_output(namespace: str, name: str, workdir: Path) -> tuple[Path, dict[str, dict]]:
    """deploy/webhook-certs.sh's objects by kind, and the directory it wrote."""
    out_dir = workdir / f"webhook-tls.{namespace}.{name}"
    out = subprocess.run(["bash", str(DEPLOY / "webhook-certs.sh"), str(out_dir), "--namespace", namespace,
                          "--name", name], capture_output=True, text=True, check=True, timeout=60).stdout
    objs = [o for o in yaml.safe_load_all(out) if o]
    kinds = {o["kind"]: o for o in objs}
    expect(len(objs) == 2 and set(kinds) == {"Secret", "MutatingWebhookConfiguration"},
           f"webhook-certs.sh prints {[o['kind'] for o in objs]}")
    return out_dir, kinds


def check_component(objs: list[dict], exp: dict, workdir: Path) -> None:
    ns, name = exp["namespace"], exp["name"]
    w = webhook_objects(objs)
    sa, cr, crb, deploy, svc = (w[k] for k in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding",
                                                 "Deployment", "Service"))
    for o in (sa, deploy, svc):
        expect(o["metadata"]["namespace"] == ns and o["metadata"]["name"] == f"{name}-webhook",
               f"{ident(o)}: want {ns}/{name}-webhook")
    for o in (cr, crb):
        expect(o["metadata"]["name"] == f"{ns}.{name}.webhook", f"{ident(o)}: want {ns}.{name}.webhook")
    for o in w.values():
        expect(o["metadata"]["labels"].get("app.kubernetes.io/instance") == name,
               f"{ident(o)} has instance label {o['metadata']['labels'].get('app.kubernetes.io/instance')}")

    # RBAC: exactly get on claims and volumes, bound to the webhook's account.
    rules = cr["rules"]
    expect(len(rules) == 1 and rules[0].get("apiGroups") == [""]
           and sorted(rules[0].get("resources", [])) == ["persistentvolumeclaims", "persistentvolumes"]
           and rules[0].get("verbs") == ["get"] and not rules[0].get("resourceNames"),
           f"{ident(cr)} grants {rules}, want exactly get on persistentvolumeclaims, persistentvolumes")
    expect(crb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                              "name": cr["metadata"]["name"]}, f"{ident(crb)} refers to {crb['roleRef']}")
    expect(crb["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": ns}],
           f"{ident(crb)} binds {crb['subjects']}")

    # The Deployment: `cellar webhook` for this driver, on the plugin's image.
    spec = deploy["spec"]["template"]["spec"]
    expect(spec.get("serviceAccountName") == sa["metadata"]["name"],
           f"the webhook runs as {spec.get('serviceAccountName')}")
    c = container(deploy, "webhook")
    args = expanded_args(c)
    flags = flag_values(args)
    expect(args[:1] == ["webhook"], f"the container runs {args[:1]}, not `cellar webhook`")
    expect(flags.get("driver-name") == exp["driver"], f"--driver-name={flags.get('driver-name')}")
    expect(flags.get("log-level") == "info", f"--log-level={flags.get('log-level')}")
    plugin_image = container(daemonset_of(objs, "node-plugin"), "cellar")["image"]
    expect(c["image"] == plugin_image and c.get("imagePullPolicy") == "IfNotPresent",
           f"webhook image {c['image']} ({c.get('imagePullPolicy')}), the node plugin runs {plugin_image}")
    sc = c.get("securityContext", {})
    expect(sc.get("allowPrivilegeEscalation") is False and sc.get("readOnlyRootFilesystem") is True
           and sc.get("capabilities", {}).get("drop") == ["ALL"] and not sc.get("privileged")
           and not sc.get("capabilities", {}).get("add"),
           f"the webhook container is not restricted: {sc}")
    expect(spec.get("securityContext", {}).get("runAsNonRoot") is True, "the webhook pod may run as root")
    expect(not spec.get("hostNetwork"), "the webhook is on the host network")

    # The port: --listen, the named container port, the Service's target, the probe.
    listen_port = int(flags.get("listen", "").rsplit(":", 1)[-1] or 0)
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    labels = deploy["spec"]["template"]["metadata"]["labels"]
    expect(all(labels.get(k) == v for k, v in deploy["spec"]["selector"]["matchLabels"].items()),
           "the Deployment's selector does not select its own pods")
    expect(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()),
           f"Service selector {svc['spec']['selector']} does not select the webhook pods {labels}")
    other_pods = [o for o in objs if o["kind"] in ("DaemonSet", "Deployment") and o is not deploy]
    for o in other_pods:
        pod_labels = o["spec"]["template"]["metadata"]["labels"]
        expect(not all(pod_labels.get(k) == v for k, v in svc["spec"]["selector"].items()),
               f"the webhook Service also selects the pods of {ident(o)}")
    expect(len(svc["spec"]["ports"]) == 1, f"Service ports {svc['spec']['ports']}: want one")
    sport = svc["spec"]["ports"][0]
    target = sport["targetPort"]
    target_port = target if isinstance(target, int) else ports.get(target)
    expect(sport["port"] == 443 and target_port == listen_port == 8443,
           f"Service port {sport} does not reach --listen port {listen_port} (container ports {ports})")
    probe = c.get("readinessProbe", {}).get("httpGet", {})
    expect(probe.get("scheme") == "HTTPS" and probe.get("path") == "/healthz"
           and ports.get(probe.get("port"), probe.get("port")) == listen_port,
           f"readiness probe {probe}: want HTTPS /healthz on {listen_port}")

    # The script's Secret and configuration.
    out_dir, made = script_output(ns, name, workdir)
    secret, mwc = made["Secret"], made["MutatingWebhookConfiguration"]
    tls_dir = flags.get("tls-dir")
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    expect(tls_dir in mounts, f"--tls-dir={tls_dir} is not a mount of the webhook container")
    vol = next(v for v in spec["volumes"] if v["name"] == mounts[tls_dir])
    expect(vol.get("secret", {}).get("secretName") == secret["metadata"]["name"] == f"{name}-webhook-tls"
           and secret["metadata"]["namespace"] == ns,
           f"the webhook mounts {vol}, webhook-certs.sh makes {secret['metadata']}")
    expect({"tls.crt", "tls.key"} <= set(secret["data"]), f"Secret keys {sorted(secret['data'])}")

    expect(mwc["metadata"]["name"] == f"{ns}.{name}.placement", f"configuration {mwc['metadata']['name']}")
    expect(len(mwc["webhooks"]) == 1, f"{len(mwc['webhooks'])} webhooks in the configuration")
    hook = mwc["webhooks"][0]
    expect(len(hook["name"].split(".")) >= 3, f"webhook name {hook['name']} is not qualified")
    expect(hook["clientConfig"]["service"] == {"name": svc["metadata"]["name"], "namespace": ns,
                                               "path": "/mutate", "port": sport["port"]},
           f"the configuration calls {hook['clientConfig']['service']}")
    expect(hook["rules"] == [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                              "resources": ["pods"], "scope": "Namespaced"}], f"rules {hook['rules']}")
    for key, want in [("failurePolicy", "Ignore"), ("sideEffects", "None"), ("admissionReviewVersions", ["v1"]),
                      ("timeoutSeconds", 2), ("reinvocationPolicy", "Never")]:
        expect(hook.get(key) == want, f"{key} is {hook.get(key)!r}, want {want!r}")
    expect(hook.get("namespaceSelector") == {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", ns]}]},
        f"namespaceSelector {hook.get('namespaceSelector')}")

    # The certificate: for the name the API server dials, signed by the caBundle.
    ca = out_dir / "bundle.crt"
    ca.write_bytes(base64.b64decode(hook["clientConfig"]["caBundle"]))
    cert = out_dir / "secret.crt"
    cert.write_bytes(base64.b64decode(secret["data"]["tls.crt"]))
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(ca), "-verify_hostname",
                             f"{svc['metadata']['name']}.{ns}.svc", str(cert)],
                            capture_output=True, text=True, timeout=30)
    expect(verify.returncode == 0, f"the Secret's certificate does not verify for the Service: {verify.stdout}"
           f"{verify.stderr}")

    errors = schema_errors([("placement component", o) for o in w.values()] +
                           [("webhook-certs.sh", o) for o in made.values()])
    expect(not errors, "\n".join(errors))
