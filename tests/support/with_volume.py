#!/usr/bin/python3
"""Runs a command against a real Cellar volume, provisioned and published the way the
external-provisioner and the kubelet do it (tests/e2e/kube.py), then tears it all
down: unpublish, DeleteVolume, stop the node, nothing left mounted.

    tests/support/with_volume.py [--size 1Gi] [--io-mode MODE] [--env NAME] -- CMD...

--io-mode is the node's (auto, passthrough, fuse, direct); --no-passthrough means fuse.

The published target path is passed to CMD in the environment variable NAME
(CELLAR_VOLUME_DIR by default). The exit status is CMD's.
"""
import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
import kube  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="1Gi")
    ap.add_argument("--no-passthrough", action="store_true")
    ap.add_argument("--io-mode", choices=("auto", "passthrough", "fuse", "direct"))
    ap.add_argument("--env", default="CELLAR_VOLUME_DIR")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("no command given")
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}
    size = int(args.size[:-2]) * units[args.size[-2:]] if args.size[-2:] in units else int(args.size)

    home = Path(tempfile.mkdtemp(prefix="cellar-volume-"))
    node = kube.CellarNode(home=home, capacity=f"{2 * size // (1 << 20) + 64}Mi",
                           passthrough=not args.no_passthrough,
                           extra_args=(f"--io-mode={args.io_mode}",) if args.io_mode else ())
    rc = 1
    try:
        channel = node.start()
        calls: list = []
        provisioner = kube.Provisioner(channel, calls)
        provisioner.connect()
        kubelet = kube.Kubelet(channel, home / "kubelet", node.node_id, calls)
        kubelet.register()
        pv = provisioner.provision(kube.StorageClass(), "test-data", "default", size,
                                   kubelet.topology)
        mounted = kubelet.mount(kube.Pod(name="test"), pv)
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
        kube.unmount_below(home)
        subprocess.run(["rm", "-rf", "--one-file-system", str(home)], check=False)
    return rc


if __name__ == "__main__":
    sys.exit(main())
