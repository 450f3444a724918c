"""End-to-end checks: the pipeline on a real `cellar node`, driven as Kubernetes
drives it (tests/lib: node, provisioner, kubelet), with pods in their own namespaces
(tests/e2e/pod.py).

  python3 -m tests.e2e.e2e_test [--size 64Mi] [--modes passthrough,fallback,direct] [--root DIR] [-v]

Per mode: registration and topology; GetCapacity; CreateVolume pinned to the node
(and refused for another node); the three steps as pods with checksums compared
across steps; NodeGetVolumeStats while they run; a pod sees only its volume; a
read-only publish gives EROFS to a writer; tear-down in the kubelet's order, then
DeleteVolume, leaves no mount, no arena, the capacity and the node's shared memory
back where they started. Prints one line per check and `N passed, N failed`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import grpc

from tests.e2e import run_pipeline as rp
from tests.e2e.pod import PYTHON
from tests.lib import csi, host
from tests.lib.checks import Runner, expect
from tests.lib.objects import StorageClass, mount_capability
from tests.lib.sizes import parse_size

MIB = 1 << 20
pb, _ = csi.stubs()


def run_mode(checks: Runner, mode: str, size: int, root: Path) -> None:
    home = root / mode
    rp.cleanup_root(home)
    home.mkdir(parents=True)
    request = rp.volume_request(size)
    shm_start = host.shmem_outside_others(root)
    cluster = rp.Cluster(home, mode != "fallback", capacity=2 * request + 64 * MIB,
                         io_mode="direct" if mode == "direct" else None)
    tag = f"[{mode}]"
    try:
        checks.check(f"{tag} node starts and registers", cluster.__enter__)
        if cluster.kubelet is None:
            return
        k, prov = cluster.kubelet, cluster.provisioner

        def registration():
            expect(k.driver == csi.DRIVER, f"GetPluginInfo name {k.driver!r}")
            expect(k.node_id == cluster.node_name, f"NodeGetInfo node_id {k.node_id!r}")
            expect(k.topology == {csi.TOPOLOGY_KEY: cluster.node_name},
                   f"NodeGetInfo topology {k.topology}")
            expect(prov.node_topology == k.topology, "provisioner and kubelet see one topology")
        checks.check(f"{tag} GetPluginInfo / NodeGetInfo report driver and topology", registration)

        capacity0 = checks.check(f"{tag} GetCapacity for the node's segment",
                                 lambda: prov.capacity(StorageClass()))

        def other_node_segment():
            req = pb.GetCapacityRequest(
                volume_capabilities=[mount_capability()])
            req.accessible_topology.segments[csi.TOPOLOGY_KEY] = "some-other-node"
            got = prov.controller.GetCapacity(req).available_capacity
            expect(got == 0, f"another node's segment has {got} bytes")
        checks.check(f"{tag} GetCapacity of another node's segment is 0", other_node_segment)

        def refused_elsewhere():
            try:
                prov.provision(StorageClass(), "elsewhere", "pipelines", request,
                               {csi.TOPOLOGY_KEY: "some-other-node"})
            except grpc.RpcError as e:
                expect(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, f"code {e.code()}")
                return
            raise AssertionError("CreateVolume for another node's topology succeeded")
        checks.check(f"{tag} CreateVolume for another node is refused", refused_elsewhere)

        pv = checks.check(f"{tag} CreateVolume pvc-<uid> pinned to the node",
                          lambda: cluster.provision("pipeline-data", request))
        if pv is None:
            return

        def pinned():
            expect(pv.topology == [k.topology],
                   f"PV affinity {pv.topology}: not only node {k.topology}")
            expect(pv.capacity_bytes >= request, f"capacity {pv.capacity_bytes} < {request}")
            expect(pv.name.startswith("pvc-") and pv.volume_handle != pv.name,
                   f"name {pv.name} handle {pv.volume_handle}")
            now = prov.capacity(StorageClass())
            expect(now == capacity0 - pv.capacity_bytes, f"capacity {now} after create, was "
                   f"{capacity0}, volume {pv.capacity_bytes}")
        checks.check(f"{tag} topology pin and capacity accounting", pinned)

        reports = {}

        def step(name, extra=()):
            def go():
                res, poller = cluster.run_pod(pv, f"pipeline-{name}", rp.step_argv(
                    name, size, False, extra), poll=0.2)
                rep = rp.check_pod(res, name)
                expect(rep["ok"], f"checksum mismatches {rep['mismatches']}")
                expect(not poller.errors, f"NodeGetVolumeStats errors {poller.errors}")
                rep["stats"] = poller.samples
                reports[name] = rep
            return go
        checks.check(f"{tag} pod prepare writes {size // MIB} MiB", step("prepare"))
        checks.check(f"{tag} pod train reads, verifies, fits", step("train"))
        model_sha = reports.get("train", {}).get("checksums", {}).get("model.npy", "")
        checks.check(f"{tag} pod test reads, verifies, evaluates",
                     step("test", ["--model-sha", model_sha]))

        def across():
            p, t, s = reports["prepare"], reports["train"], reports["test"]
            for name in ("train.pkl", "x_train.npy", "raw.bin"):
                expect(t["checksums"][name] == p["checksums"][name], f"{name} differs in train")
            expect(t["checksums"]["raw.bin (bytes read)"] == p["checksums"]["raw.bin"],
                   "raw.bin bytes read differ")
            for name in ("test.pkl", "x_test.npy"):
                expect(s["checksums"][name] == p["checksums"][name], f"{name} differs in test")
            expect(s["metrics"]["r2"] > 0.9, f"model r2 {s['metrics']['r2']}")
        checks.check(f"{tag} checksums agree across steps", across)

        def stats():
            samples = reports["train"]["stats"]
            expect(samples, "no NodeGetVolumeStats sample")
            last = samples[-1]
            expect(not last["abnormal"], f"volume condition {last}")
            used, total = last["bytes"]["used"], last["bytes"]["total"]
            written = reports["prepare"]["bytes_written"]
            expect(used > size and used >= written, f"used {used} <= data {size}/{written}")
            expect(total == pv.capacity_bytes, f"total {total} != capacity {pv.capacity_bytes}")
            expect(last["inodes"]["used"] >= 6, f"inodes {last['inodes']}")
        checks.check(f"{tag} NodeGetVolumeStats: used bytes > data size", stats)

        def isolation():
            script = ("import os, json\n"
                      "m = [l.split() for l in open('/proc/self/mountinfo')]\n"
                      "print(json.dumps({'mounts': [(x[4], x[x.index('-') + 1]) for x in m],"
                      " 'vineyard': sorted(os.listdir('/vineyard')),"
                      " 'pids': sorted(int(p) for p in os.listdir('/proc') if p.isdigit())}))\n")
            res, _ = cluster.run_pod(pv, "inspect", [PYTHON, "-c", script])
            info = rp.check_pod(res, "inspect")
            # direct: the arena's tmpfs itself; otherwise a directory of the FUSE mount.
            fstype = "tmpfs" if mode == "direct" else "fuse"
            volume = [fs for mp, fs in info["mounts"] if mp == "/vineyard"]
            expect(len(volume) == 1 and volume[0].startswith(fstype),
                   f"/vineyard is {volume}, expected one {fstype} mount")
            fuse_mounts = [mp for mp, fs in info["mounts"] if fs.startswith("fuse")]
            expect(fuse_mounts == ([] if mode == "direct" else ["/vineyard"]),
                   f"FUSE mounts seen by the pod {fuse_mounts}")
            leaks = [mp for mp, _ in info["mounts"] if str(home) in mp or "cellar" in mp]
            expect(not leaks, f"the pod sees {leaks}")
            expected = set(reports["prepare"]["checksums"]) | {
                "manifest.json", "model.npy", "predictions.npy", "metrics.json"}
            expect(set(info["vineyard"]) == expected, f"/vineyard shows {info['vineyard']}")
            expect(max(info["pids"]) < 10, f"the pod sees host processes {info['pids'][:8]}")
        checks.check(f"{tag} a pod sees its volume at /vineyard and nothing else", isolation)

        def readonly():
            res, _ = cluster.run_pod(pv, "reader", rp.step_argv(
                "verify", size, False, ["--expect-readonly"]), readonly=True)
            rep = rp.check_pod(res, "reader")
            expect(rep["write_errno"] == "EROFS", f"write gave {rep['write_errno']}")
            expect(rep["ok"], f"reader mismatches {rep['mismatches']}")
        checks.check(f"{tag} read-only publish: reads verify, a write gets EROFS", readonly)

        def kubelet_order():
            calls = [(who, m) for who, m, code, _ in cluster.calls]
            expect(calls[:2] == [("kubelet", "GetPluginInfo"), ("kubelet", "NodeGetInfo")],
                   f"registration {calls[:2]}")
            methods = [m for _, m in calls]
            expect("NodeStageVolume" not in methods, "NodeStageVolume called, not advertised")
            pubs = [i for i, m in enumerate(methods) if m == "NodePublishVolume"]
            unpubs = [i for i, m in enumerate(methods) if m == "NodeUnpublishVolume"]
            expect(len(pubs) == len(unpubs) == 5 and all(a < b for a, b in zip(pubs, unpubs)),
                   f"publish {pubs} unpublish {unpubs}")
            expect(methods.index("CreateVolume") < pubs[0], "published before created")
            bad = [c for c in cluster.calls if c[2] != "OK" and c[1] != "CreateVolume"]
            expect(not bad, f"failed calls {bad}")
        checks.check(f"{tag} the kubelet's RPC order, no NodeStageVolume", kubelet_order)

        arena = cluster.node.state_dir / "arenas" / pv.volume_handle

        def teardown():
            expect(not list((home / "kubelet" / "pods").iterdir()), "pod dirs left behind")
            shm_held = host.shmem_outside_others(root)
            cluster.delete(pv)
            freed = shm_held - host.shmem_outside_others(root)
            written = reports["prepare"]["bytes_written"] if "prepare" in reports else 0
            expect(freed >= written * 9 // 10, f"DeleteVolume freed {freed // MIB} MiB of "
                   f"Shmem, the volume held {written // MIB} MiB")
            left = [mp for mp in host.mounts_below(home)
                    if mp != str(cluster.node.state_dir / "fuse")]
            expect(not left, f"mounts left after DeleteVolume: {left}")
            expect(not arena.exists(), f"arena {arena} still exists")
            now = prov.capacity(StorageClass())
            expect(now == capacity0, f"capacity {now}, started at {capacity0}")
        checks.check(f"{tag} DeleteVolume: memory freed, arena gone, capacity returned", teardown)
    finally:
        cluster.__exit__(None, None, None)

    def clean():
        left = host.mounts_below(root)
        expect(not left, f"mounts under {root}: {left}")
        # "Near" is a quarter of the data. Other tmpfs mounts are left out of the count
        # (others may fill them meanwhile); a transient use gets a few seconds to go.
        for _ in range(25):
            shm_end = host.shmem_outside_others(root)
            if shm_end - shm_start < max(16 * MIB, size // 4):
                return
            time.sleep(0.2)
        raise AssertionError(f"Shmem {shm_start // MIB} MiB at the start, {shm_end // MIB} MiB "
                             "now (is something else on this machine using shared memory?)")
    checks.check(f"{tag} node stopped: nothing mounted, Shmem back near the start", clean)
    rp.cleanup_root(home)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="64Mi")
    p.add_argument("--modes", default="passthrough,fallback,direct")
    p.add_argument("--root", default="/var/tmp/cellar-e2e-test", type=Path)
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()
    checks = Runner(verbose=args.verbose)
    root = args.root.resolve()
    size = parse_size(args.size)
    try:
        for mode in args.modes.split(","):
            run_mode(checks, mode, size, root)
    finally:
        rp.cleanup_root(root)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
