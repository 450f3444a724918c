"""Runs a command against a real Cellar volume, provisioned and published the way the
external-provisioner and the kubelet do it (tests/lib), then tears it all down:
unpublish, DeleteVolume, stop the node, nothing left mounted. From the repo root:

    python3 -m tests.support.with_volume [--size 1Gi] [--io-mode MODE] [--env NAME]
        [--parameter KEY=VALUE ...] -- CMD...

--io-mode is the node's (auto, passthrough, fuse, direct); --no-passthrough means fuse.
--parameter adds a StorageClass parameter (e.g. cellar.dev/huge-pages=within_size).
Calls nest: each starts a node of its own, so one command can get two volumes.

The published target path is passed to CMD in the environment variable NAME
(CELLAR_VOLUME_DIR by default). The exit status is CMD's.
"""
import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.lib import host, roles
from tests.lib.node import CellarNode
from tests.lib.objects import Pod, StorageClass
from tests.lib.sizes import parse_size


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="1Gi")
    ap.add_argument("--no-passthrough", action="store_true")
    ap.add_argument("--io-mode", choices=("auto", "passthrough", "fuse", "direct"))
    ap.add_argument("--env", default="CELLAR_VOLUME_DIR")
    ap.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("no command given")
    size = parse_size(args.size)
    if any("=" not in p for p in args.parameter):
        ap.error("--parameter takes KEY=VALUE")
    parameters = dict(p.split("=", 1) for p in args.parameter)

    home = Path(tempfile.mkdtemp(prefix="cellar-volume-"))
    node = CellarNode(home=home, capacity=f"{2 * size // (1 << 20) + 64}Mi",
                      passthrough=not args.no_passthrough,
                      extra_args=(f"--io-mode={args.io_mode}",) if args.io_mode else ())
    rc = 1
    try:
        kubelet, provisioner = roles.attach(node.start(), home / "kubelet", node.node_id, [])
        pv = provisioner.provision(StorageClass(parameters=parameters), "test-data", "default", size,
                                   kubelet.topology)
        mounted = kubelet.mount(Pod(name="test"), pv)
        try:
            env = dict(os.environ, **{args.env: str(mounted.target)})
            rc = subprocess.run(command, env=env).returncode
        finally:
            kubelet.unmount(mounted)
            provisioner.delete(pv)
    except Exception as e:  # report, never leave mounts behind
        print(f"with_volume: {e}", file=sys.stderr)
        rc = rc or 1
    finally:
        node.stop()
        host.unmount_below(home)
        subprocess.run(["rm", "-rf", "--one-file-system", str(home)], check=False)
    return rc


if __name__ == "__main__":
    sys.exit(main())
