"""Cross-node reads (issue 15) on several real `cellar node`s, each in a network namespace
of its own on this machine (tests/lib/multinode.py), driven as Kubernetes drives them:
CreateVolume on the owner node's socket, NodePublishVolume by the reader node's kubelet
with the PV's volume context (cellar.dev/owner-node, cellar.dev/owner-peer), pods as
processes in their own mount namespaces inside their node's network namespace.

  python3 -m tests.multinode.multinode_test [--size 32Mi] [--big-size 256Mi]
      [--modes auto,fuse,direct] [--transfer-seconds 8] [--root DIR] [-v]

  1 fan-in: step A writes claim X on node 1, step B claim Y on node 2, step C on node 3
    reads both and writes its result to claim Z (checksums); the replicas are read-only
    (EROFS), the last unpublish frees them (capacity back, arena gone), a pod on node 1
    reads Z back from node 3, a re-publish after the owner changed X sees the change
  2 the owner SIGKILLed mid-transfer: UNAVAILABLE naming volume and owner within 30 s,
    nothing left on the reader, the reader healthy; after a restart the retry succeeds
  3 the owner's network cut mid-transfer (iptables DROP): the same, then healed
  4 a reader racing a writer: a file open for writing is never sent torn: the publish
    waits for the close or fails naming the file; a writer opening a file mid-transfer
    makes the transfer retry
  5 scheduling: the claims' node affinity, through upstream's own code (scheduling.py)
  6 security: no client certificate, another CA's, plaintext: refused; an unknown
    volume NOT_FOUND; paths out of the volume refused; a pod without the certificates
    gets nothing from a peer port

--big-size is the volume whose transfers get interrupted; the owner's sending is slowed
(tc tbf) so that its transfer lasts about --transfer-seconds, which makes "mid-transfer"
certain at any size, then unslowed for the retries. Prints one line per check and
`N passed, N failed`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc

from tests.e2e import run_pipeline as rp
from tests.e2e.pod import PYTHON
from tests.lib import REPO, host, netns
from tests.lib.checks import Runner, Skip, expect
from tests.lib.multinode import (OWNER_NODE_KEY, OWNER_PEER_KEY, MultiNodeCluster, Node,
                                 fetch_in_progress, install_signal_handlers, make_certs,
                                 wait_for)
from tests.lib.objects import Pod
from tests.lib.sizes import parse_size
from tests.multinode import scheduling

MIB = 1 << 20
HERE = Path(__file__).resolve().parent
STEPS = (HERE / "pod_steps.py").read_text()
FETCH_PREFIX = ".cellar-fetch."
BOUND_S = 30.0  # the longest a failing publish may take (the kubelet's own deadline is 2 min)


def step(*args) -> list[str]:
    return [PYTHON, "-c", STEPS, *map(str, args)]


def pipeline(name: str, size: int, seed: int) -> list[str]:
    return rp.step_argv(name, size, False, ["--seed", str(seed)])


def pod_json(res, what: str) -> dict:
    rep = rp.check_pod(res, what)
    expect(rep.get("ok", True), f"{what}: {rep}")
    return rep


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class Background:
    """fn() in a thread: its value or its exception, and how long it took."""

    def __init__(self, fn):
        self.value = self.error = None
        self.started = time.monotonic()
        self.ended = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn):
        try:
            self.value = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the waiter
            self.error = e
        self.ended = time.monotonic()

    def wait(self, timeout: float):
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"still running after {timeout:.0f} s")
        return self

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()


def rpc_error(bg: Background) -> grpc.RpcError:
    expect(bg.error is not None, f"the publish succeeded: {bg.value}")
    expect(isinstance(bg.error, grpc.RpcError), f"not a gRPC error: {bg.error!r}")
    return bg.error


def leftovers(node: Node, volume_id: str, target: Path | None) -> list[str]:
    """What a failed publish of volume_id may not leave on node: a replica (arena,
    mount), a half-fetched file, a mounted target."""
    found = []
    arena = node.daemon.arena(volume_id)
    if arena.exists():
        found.append(f"arena {arena}")
    found += [f"mount {m}" for m in host.mounts_below(node.daemon.state_dir / "arenas")
              if volume_id in m]
    if target is not None and host.mounts_below(target):
        found.append(f"target {target} mounted")
    for base, _, names in os.walk(node.daemon.state_dir / "arenas"):
        found += [f"temp file {base}/{n}" for n in names if n.startswith(FETCH_PREFIX)]
    return found


def snapshot(root: Path) -> dict:
    """What a copy must keep of every entry below root (bytes names: any name Linux
    allows): type, mode, owner, size, content and mtime of files, symlink targets."""
    out = {}
    base = os.fsencode(root)
    for d, dirs, files in os.walk(base):
        for name in dirs + files:
            p = os.path.join(d, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, base)
            entry = {"mode": oct(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}
            if os.path.islink(p):
                entry["target"] = os.readlink(p)
            elif os.path.isfile(p):
                entry.update(size=st.st_size, mtime_ns=st.st_mtime_ns, sha=sha256(Path(p.decode(
                    errors="surrogateescape"))))
            out[rel] = entry
    return out


def compare(owner: dict, replica: dict) -> list[str]:
    diffs = [f"{k!r}: missing" for k in owner if k not in replica]
    diffs += [f"{k!r}: not on the owner" for k in replica if k not in owner]
    for k in owner.keys() & replica.keys():
        for field in owner[k]:
            if owner[k][field] != replica[k].get(field):
                diffs.append(f"{k!r} {field}: owner {owner[k][field]}, replica "
                             f"{replica[k].get(field)}")
    return diffs


def target_of(node: Node, pod_uid: str, pv) -> Path:
    csi_dir = node.kubelet.root / "pods" / pod_uid / "volumes" / "kubernetes.io~csi"
    return csi_dir / pv.name / "mount"


class Suite:
    def __init__(self, checks: Runner, c: MultiNodeCluster, size: int, big: int,
                 transfer_s: float, tag: str):
        self.checks, self.c, self.size, self.big, self.tag = checks, c, size, big, tag
        self.n1, self.n2, self.n3 = c.nodes
        # The owner's sending rate that makes the big volume's transfer last transfer_s
        # (0: full speed).
        self.mbit = max(8, int(big * 8 / transfer_s / 1e6)) if transfer_s > 0 else 0
        self.reports: dict = {}
        self.pv: dict = {}
        self.big_sha = ""

    def check(self, name, fn, *args):
        return self.checks.check(f"{self.tag} {name}", fn, *args)

    def slow_owner(self) -> None:
        if self.mbit:
            netns.throttle(self.n1.ns, self.mbit)

    def unslow_owner(self) -> None:
        if self.mbit:
            netns.unthrottle(self.n1.ns)

    # -- 1 -------------------------------------------------------------------------------

    def fan_in(self) -> None:
        c, n1, n2, n3 = self.c, self.n1, self.n2, self.n3
        request = rp.volume_request(self.size)

        def contexts():
            self.pv["x"] = c.provision(n1, "claim-x", request)
            self.pv["y"] = c.provision(n2, "claim-y", request)
            self.pv["z"] = c.provision(n3, "claim-z", 16 * MIB)
            for key, node in (("x", n1), ("y", n2), ("z", n3)):
                ctx = self.pv[key].volume_context
                expect(ctx.get(OWNER_NODE_KEY) == node.name,
                       f"claim {key}: {OWNER_NODE_KEY} = {ctx.get(OWNER_NODE_KEY)!r}")
                expect(ctx.get(OWNER_PEER_KEY) == node.daemon.peer,
                       f"claim {key}: {OWNER_PEER_KEY} = {ctx.get(OWNER_PEER_KEY)!r}, "
                       f"the node advertises {node.daemon.peer}")
        if self.check("CreateVolume on each owner: context names owner node and peer address",
                      contexts) is None and "z" not in self.pv:
            raise Skip("no volumes")

        def write(key, node, seed):
            def go():
                res = c.run_pod(node, f"step-{key}", pipeline("prepare", self.size, seed),
                                {"/vineyard": self.pv[key]})
                self.reports[key] = pod_json(res, f"prepare on {node.name}")
            return go
        self.check(f"step A on node 1 writes claim X ({self.size // MIB} MiB)", write("x", n1, 42))
        self.check(f"step B on node 2 writes claim Y ({self.size // MIB} MiB)", write("y", n2, 7))

        cap3 = n3.capacity()

        def fan_in_step():
            res = c.run_pod(n3, "step-c", step("fanin", "/x,/y", "/out"),
                            {"/x": self.pv["x"], "/y": self.pv["y"], "/out": self.pv["z"]})
            rep = pod_json(res, "fan-in on node 3")
            self.reports["c"] = rep
            for key in ("x", "y"):
                wrote = self.reports[key]["checksums"]
                got = rep["inputs"][f"/{key}"]
                for name, digest in wrote.items():
                    expect(got.get(name) == digest, f"/{key}/{name}: {got.get(name)} on node 3, "
                           f"{digest} as written")
            expect(not rep["mismatches"], f"mismatches {rep['mismatches']}")
        self.check("step C on node 3 reads X (node 1) and Y (node 2): checksums as written",
                   fan_in_step)

        def read_only():
            rep = self.reports["c"]
            expect(rep["write_errno"] == {"/x": "EROFS", "/y": "EROFS"},
                   f"a write into the replicas gave {rep['write_errno']}")
        self.check("the replicas are read-only: a write gets EROFS", read_only)

        def freed():
            for key in ("x", "y"):
                left = leftovers(n3, self.pv[key].volume_handle, None)
                expect(not left, f"replica of {key} after the last unpublish: {left}")
            now = n3.capacity()
            expect(now == cap3, f"node 3 capacity {now}, {cap3} before the publish")
        self.check("the last unpublish frees the replicas: arena gone, capacity back", freed)

        def back_to_node1():
            res = c.run_pod(n1, "step-d", step("tree", "/z"), {"/z": self.pv["z"]})
            rep = pod_json(res, "reader of Z on node 1")
            got = rep["files"].get("result.json")
            expect(got == self.reports["c"]["result_sha"],
                   f"result.json on node 1 {got}, written on node 3 as "
                   f"{self.reports['c']['result_sha']}")
        self.check("a pod on node 1 reads step C's result from node 3", back_to_node1)

        self.republish(cap3)

    def republish(self, cap3: int) -> None:
        c, n1, n3 = self.c, self.n1, self.n3
        x = self.pv["x"]
        held = {}

        def hold():
            held["m1"] = c.publish(n3, x)
            got = sha256(held["m1"].target / "raw.bin")
            expect(got == self.reports["x"]["checksums"]["raw.bin"], f"raw.bin {got}")
            used = cap3 - n3.capacity()
            expect(used >= x.capacity_bytes,
                   f"node 3 capacity fell by {used} bytes for a replica of {x.capacity_bytes}")
            stats = n3.kubelet.volume_stats(held["m1"])
            expect(not stats["abnormal"], f"NodeGetVolumeStats of the replica: {stats}")
            expect(stats["bytes"]["used"] >= self.reports["x"]["bytes_written"],
                   f"NodeGetVolumeStats of the replica: {stats}")
        self.check("a held replica: counted against the reader's capacity, healthy stats", hold)
        if "m1" not in held:
            return
        try:
            self.security(held_replica=True)
            changed = {}

            def owner_changes():
                res = c.run_pod(n1, "mutate-x", step("mutate", "/vineyard"), {"/vineyard": x})
                changed.update(pod_json(res, "mutate on node 1"))
            self.check("the owner changes X: raw.bin rewritten, extra.txt added, test.pkl gone",
                       owner_changes)

            def republish():
                log_from = len(n3.daemon.log())
                held["m2"] = c.publish(n3, x)
                for m in (held["m2"], held["m1"]):
                    names = sorted(p.name for p in m.target.iterdir())
                    expect("test.pkl" not in names and "extra.txt" in names,
                           f"{m.target}: {names}")
                    got = sha256(m.target / "raw.bin")
                    expect(got == changed["raw.bin"], f"raw.bin {got}, owner wrote "
                           f"{changed['raw.bin']}")
                    expect(not [n for n in names if n.startswith(FETCH_PREFIX)],
                           f"temp files in {names}")
                # What was unchanged is kept, not fetched again (size and mtime match).
                log = n3.daemon.log()[max(0, log_from - 6000):]
                m = re.findall(r"(\d+) files fetched.*?(\d+) unchanged, (\d+) removed", log)
                expect(m, f"no refresh line in node 3's log:\n{log[-1500:]}")
                fetched, kept, removed = map(int, m[-1])
                expect((fetched, removed) == (2, 1) and kept >= 4,
                       f"refresh fetched {fetched}, kept {kept}, removed {removed}; expected "
                       "2 fetched (raw.bin, extra.txt), the rest kept, 1 removed")
            self.check("a re-publish after the owner changed X sees the change (both mounts), "
                       "fetching only what changed", republish)
        finally:
            for key in ("m2", "m1"):
                if key in held:
                    c.unpublish(n3, held[key])

        def freed_again():
            left = leftovers(n3, x.volume_handle, None)
            expect(not left, f"after both unpublishes: {left}")
            expect(n3.capacity() == cap3, f"capacity {n3.capacity()}, {cap3} before")
        self.check("the replica lives until its last unpublish, then is freed", freed_again)

    # -- 5 -------------------------------------------------------------------------------

    def security(self, held_replica: bool) -> None:
        c, n1, n2, n3 = self.c, self.n1, self.n2, self.n3
        x = self.pv["x"]
        other = make_certs(c.root / "other-ca")
        ok_names = {}

        def links():
            res = c.run_pod(n1, "links", step("links", "/vineyard"), {"/vineyard": x})
            pod_json(res, "links on node 1")
        self.check("a pod on node 1 puts symlinks to /etc/passwd and /etc into X", links)

        def probe(cases: list[dict], ns: str) -> dict:
            for case in cases:
                case.setdefault("address", n1.daemon.peer)
                case.setdefault("tls", str(c.certs))
                case.setdefault("other", str(other))
                case.setdefault("volume", x.volume_handle)
            res = subprocess.run(
                netns.enter(ns) + [PYTHON, "-m", "tests.multinode.peer_probe", json.dumps(cases)],
                capture_output=True, text=True, timeout=120, cwd=str(REPO))
            expect(res.returncode == 0, f"peer_probe: {res.stderr[-2000:]}")
            return json.loads(res.stdout.strip().splitlines()[-1])

        results = {}

        def run_probes():
            results.update(probe([
                {"name": "peer describe", "credentials": "peer", "call": "describe"},
                {"name": "peer read", "credentials": "peer", "call": "read", "path": "raw.bin"},
                {"name": "no cert", "credentials": "no-cert", "call": "describe"},
                {"name": "other ca", "credentials": "other-ca", "call": "describe"},
                {"name": "plaintext", "credentials": "plaintext", "call": "describe"},
                {"name": "unknown volume", "credentials": "peer", "call": "describe",
                 "volume": "0" * 32},
                {"name": "dotdot", "credentials": "peer", "call": "read",
                 "path": "../../../../etc/passwd"},
                {"name": "absolute", "credentials": "peer", "call": "read", "path": "/etc/passwd"},
                {"name": "symlink", "credentials": "peer", "call": "read", "path": "passwd-link"},
                {"name": "through symlink", "credentials": "peer", "call": "read",
                 "path": "etc-link/passwd"},
                {"name": "replica", "credentials": "peer", "call": "describe",
                 "address": n3.daemon.peer},
            ], n2.ns))
            ok_names.update(results)
        if self.check("peer probes run from node 2's namespace", run_probes) is None and \
                not results:
            return

        def positive():
            d, r = results["peer describe"], results["peer read"]
            expect(d["code"] == "OK" and d.get("node_id") == n1.name, f"Describe: {d}")
            expect(d["entries"].get("raw.bin") == "FILE", f"entries {d.get('entries')}")
            expect(r["code"] == "OK" and r["sha256"] == sha256(n1.daemon.arena(x.volume_handle)
                                                              / "raw.bin"), f"ReadFile: {r}")
        self.check("a client with the cluster's certificate may Describe and ReadFile", positive)

        def refused():
            for name in ("no cert", "other ca", "plaintext"):
                got = results[name]
                expect(got["code"] == "UNAVAILABLE", f"{name}: {got}")
        self.check("no client certificate / another CA's / plaintext: refused (UNAVAILABLE)",
                   refused)

        def unknown():
            got = results["unknown volume"]
            expect(got["code"] == "NOT_FOUND", f"{got}")
            expect("0" * 32 in got["details"] and n1.name in got["details"],
                   f"the message names neither volume nor node: {got['details']}")
        self.check("a volume the peer does not hold: NOT_FOUND naming volume and node", unknown)

        def escapes():
            for name in ("dotdot", "absolute", "symlink", "through symlink"):
                got = results[name]
                expect(got["code"] == "INVALID_ARGUMENT", f"{name}: {got}")
        self.check("paths out of the volume ('..', absolute, symlinks): INVALID_ARGUMENT",
                   escapes)

        def replica():
            if not held_replica:
                raise Skip("no replica held")
            got = results["replica"]
            expect(got["code"] == "FAILED_PRECONDITION", f"{got}")
        self.check("a node asked for a volume it holds only a replica of: FAILED_PRECONDITION",
                   replica)

        def pod_without_certs():
            res = c.run_pod(n2, "intruder", step("no-cert-probe", n1.daemon.peer), {})
            rep = pod_json(res, "probe pod on node 2")
            for how in ("plaintext", "tls"):
                got = rep[how]
                expect(not got.get("h2_settings"),
                       f"{how}: the peer port answered HTTP/2 to a pod without certificates: {got}")
            expect("error" in rep["tls"] or rep["tls"].get("bytes") == 0,
                   f"TLS without a client certificate got data: {rep['tls']}")
        self.check("a pod in node 2's namespace without the certificates gets no answer",
                   pod_without_certs)

    # -- 2, 3 ----------------------------------------------------------------------------

    def big_volume(self) -> bool:
        c, n1 = self.c, self.n1

        def write():
            self.pv["big"] = c.provision(n1, "claim-big", self.big + 32 * MIB)
            res = c.run_pod(n1, "big-writer", ["/bin/sh", "-c",
                            f"{PYTHON} -c \"$0\" fill /vineyard big.bin {self.big} 1 && "
                            f"echo small > /vineyard/small.txt", STEPS],
                            {"/vineyard": self.pv["big"]})
            self.big_sha = pod_json(res, "big writer")["sha"]
        self.check(f"a pod on node 1 writes a {self.big // MIB} MiB file", write)
        return bool(self.big_sha)

    def publish_mid_fetch(self, reader: Node, pod: Pod) -> "Background":
        """Starts publishing the big volume on `reader` (the owner slowed) and returns once
        its fetch is under way, the publish still running."""
        big = self.pv["big"]
        vid = big.volume_handle
        bg = Background(lambda: self.c.publish(reader, big, pod))
        wait_for(lambda: bg.done or fetch_in_progress(reader, vid, {"big.bin", "small.txt"}),
                 BOUND_S, what=f"the fetch of {vid} on {reader.name}")
        expect(not bg.done, f"the publish ended before its fetch could be interrupted: "
               f"{bg.error or bg.value}")
        return bg

    def interrupted(self, reader: Node, label: str, interrupt, restore) -> None:
        """A publish of the big volume on `reader`, interrupted by interrupt() once the
        fetch is under way; then restore() and a retry."""
        c, n1 = self.c, self.n1
        big = self.pv["big"]
        vid = big.volume_handle
        cap0 = reader.capacity()
        pod = Pod(name=f"reader-{label}", namespace="pipelines")
        target = target_of(reader, pod.uid, big)
        state = {}

        def fails():
            self.slow_owner()
            try:
                bg = self.publish_mid_fetch(reader, pod)
                at = time.monotonic()
                state["interrupt"] = interrupt()
                bg.wait(BOUND_S + 30)
                took = bg.ended - at
                state["took"] = took
                e = rpc_error(bg)
                print(f"     {label}: NodePublishVolume failed {took:.1f} s after the "
                      f"interruption: {e.code().name}: {e.details()}", flush=True)
                expect(took < BOUND_S, f"the publish failed only {took:.1f} s after it")
                expect(e.code() == grpc.StatusCode.UNAVAILABLE, f"{e.code()}: {e.details()}")
                expect(vid in e.details() and n1.name in e.details(),
                       f"the message names not both volume {vid} and owner {n1.name}: "
                       f"{e.details()}")
            finally:
                self.unslow_owner()
        if self.check(f"{label}: NodePublishVolume fails with UNAVAILABLE naming volume and "
                      f"owner within {BOUND_S:.0f} s", fails) is None and "took" not in state:
            restore()
            return

        def clean():
            left = leftovers(reader, vid, target)
            expect(not left, f"left on {reader.name}: {left}")
            now = reader.capacity()
            expect(now == cap0, f"{reader.name} capacity {now}, {cap0} before")
        self.check(f"{label}: no replica, arena, temp file or mount left on the reader", clean)

        def healthy():
            expect(reader.probe(), "Probe not ready")
            own = self.pv["y"] if reader is self.n2 else self.pv["z"]
            res = c.run_pod(reader, f"own-{label}", step("tree", "/v"), {"/v": own})
            rep = pod_json(res, "reader's own volume")
            expect(rep["files"], "the reader's own volume shows no files")
        self.check(f"{label}: the reader is healthy (Probe, its own volume published and read)",
                   healthy)

        restore()

        def retry():
            attempts = 0
            deadline = time.monotonic() + BOUND_S
            while True:
                attempts += 1
                try:
                    m = c.publish(reader, big, pod)
                    break
                except grpc.RpcError as e:
                    # The kubelet retries a failed publish (backoff from 0.5 s).
                    if time.monotonic() > deadline:
                        raise AssertionError(f"{attempts} retries failed, last: "
                                             f"{e.code().name}: {e.details()}") from None
                    time.sleep(1.0)
            try:
                got = sha256(m.target / "big.bin")
                expect(got == self.big_sha, f"big.bin {got}, owner has {self.big_sha}")
                if attempts > 1:
                    print(f"     {label}: the retry succeeded at attempt {attempts}", flush=True)
            finally:
                c.unpublish(reader, m)
            expect(not leftovers(reader, vid, None), "replica left after the unpublish")
        self.check(f"{label}: after that, a retry succeeds and the data is intact", retry)

    def owner_killed(self) -> None:
        def kill():
            return self.c.kill(self.n1)

        def restart():
            self.c.start(self.n1)
        self.interrupted(self.n2, "owner SIGKILLed", kill, restart)

    def network_cut(self) -> None:
        def cut():
            netns.cut(self.n1.ns)

        def heal():
            netns.heal(self.n1.ns)
        self.interrupted(self.n3, "network cut", cut, heal)

    def reader_killed(self) -> None:
        """The reader dies mid-transfer: its half-fetched replica must not outlive the
        restart (no pod will ever unpublish it: its publish never succeeded)."""
        c, reader = self.c, self.n3
        big = self.pv["big"]
        vid = big.volume_handle
        cap0 = reader.capacity()
        pod = Pod(name="reader-killed", namespace="pipelines")

        def orphan():
            self.slow_owner()
            try:
                bg = self.publish_mid_fetch(reader, pod)
                c.kill(reader)
                bg.wait(BOUND_S)
            finally:
                self.unslow_owner()
            c.start(reader)
            left = leftovers(reader, vid, None)
            now = reader.capacity()
            expect(not left and now == cap0,
                   f"after the restart {reader.name} holds {left or 'nothing'} and has "
                   f"{now} bytes free, {cap0} before: a replica no publish will ever free")
        self.check("reader SIGKILLed mid-transfer: after its restart no half-fetched replica "
                   "is left", orphan)

        def retry():
            m = c.publish(reader, big, pod)
            try:
                got = sha256(m.target / "big.bin")
                expect(got == self.big_sha, f"big.bin {got}, owner has {self.big_sha}")
            finally:
                c.unpublish(reader, m)
            left = leftovers(reader, vid, None)
            expect(not left and reader.capacity() == cap0,
                   f"after the unpublish: {left}, capacity {reader.capacity()} (was {cap0})")
        self.check("reader SIGKILLed mid-transfer: the kubelet's retry after the restart "
                   "succeeds, its unpublish frees the replica", retry)

    # -- what a volume may hold ----------------------------------------------------------

    def shapes(self) -> None:
        """Volumes a pod on the owner filled with what any filesystem may hold; each is
        published on node 2 and must be the owner's, entry by entry."""
        c, n1, n2 = self.c, self.n1, self.n2

        def case(label, argv, request=16 * MIB):
            def go():
                pv = c.provision(n1, f"claim-{label.split()[0]}", request)
                try:
                    pod_json(c.run_pod(n1, "shaper", argv, {"/vineyard": pv}), label)
                    m = c.publish(n2, pv)
                    try:
                        diffs = compare(snapshot(n1.daemon.arena(pv.volume_handle)),
                                        snapshot(m.target))
                        expect(not diffs, "the replica differs: " + "; ".join(diffs[:8]))
                    finally:
                        c.unpublish(n2, m)
                finally:
                    c.delete(pv)
            return go
        self.check("nested directories, an empty file, modes, owners, mtimes, a symlink: "
                   "the replica is the owner's, entry by entry",
                   case("shapes", step("shapes", "/vineyard")))
        self.check("file names in UTF-8 beyond ASCII or with a newline are copied",
                   case("utf8-names", step("odd-names", "/vineyard", "utf8")))
        self.check("a file name that is not UTF-8 (latin-1 'caf\\xe9.txt') is copied",
                   case("byte-names", step("odd-names", "/vineyard", "bytes")))
        self.check("a sparse file larger than the volume (it fits on the owner) is copied",
                   case("sparse", step("sparse", "/vineyard", 256 * MIB)))

    # -- 4 -------------------------------------------------------------------------------

    def writer_race(self) -> None:
        c, n1, n2 = self.c, self.n1, self.n2
        x = self.pv["x"]
        arena = n1.daemon.arena(x.volume_handle)

        def writer(name, seconds):
            return Background(lambda: pod_json(c.run_pod(
                n1, f"writer-{name.split('.')[0]}", step("slow-write", "/vineyard", name, seconds),
                {"/vineyard": x}), "slow writer"))

        def expect_as_written(m, w, name, how, why=""):
            """Node 2's `name` (published as m, unpublished here) is writer w's file."""
            try:
                w.wait(60)
                expect(w.error is None, f"writer: {w.error}")
                got = sha256(m.target / name)
                size = f" ({w.value['size']} bytes)" if "size" in w.value else ""
                expect(got == w.value["sha"], f"{name} on node 2 {got} "
                       f"({(m.target / name).stat().st_size} bytes), {how} {w.value['sha']}"
                       f"{size}{why}")
            finally:
                c.unpublish(n2, m)

        def waits_for_close():
            w = writer("slow.bin", 3)
            wait_for(lambda: (arena / "slow.bin").exists() or w.done, 30,
                     what="the writer's file")
            start = time.monotonic()
            m = c.publish(n2, x)
            took = time.monotonic() - start
            print(f"     the publish took {took:.1f} s (the writer wrote for 3 s)", flush=True)
            expect_as_written(m, w, "slow.bin", "closed as")
            expect(took >= 1.0, f"the publish took {took:.2f} s: it did not wait for the "
                   "writer's close")
        self.check("a publish while a writer has a file open waits for its close and gets "
                   "exactly the closed file", waits_for_close)

        def fails_naming_file():
            w = writer("slow2.bin", 16)
            try:
                wait_for(lambda: (arena / "slow2.bin").exists() or w.done, 30,
                         what="the writer's file")
                start = time.monotonic()
                bg = Background(lambda: c.publish(n2, x)).wait(60)
                took = bg.ended - start
                e = rpc_error(bg)
                print(f"     NodePublishVolume failed after {took:.1f} s: {e.code().name}: "
                      f"{e.details()}", flush=True)
                expect(e.code() == grpc.StatusCode.UNAVAILABLE, f"{e.code()}: {e.details()}")
                expect("slow2.bin" in e.details() and "open for writing" in e.details(),
                       f"the message does not name the file as open for writing: {e.details()}")
                expect(took < BOUND_S, f"took {took:.1f} s")
                left = leftovers(n2, x.volume_handle, None)
                expect(not left, f"left on node 2: {left}")
            finally:
                w.wait(60)
            expect_as_written(c.publish(n2, x), w, "slow2.bin", "closed as", " (after the close)")
        self.check("a file kept open for writing longer than the reader waits: UNAVAILABLE "
                   "naming the file; after its close the publish gets it whole",
                   fails_naming_file)

        def mapped_writer():
            w = Background(lambda: pod_json(c.run_pod(
                n1, "mapper", step("mmap-write", "/vineyard", "mapped.bin", 3), {"/vineyard": x}),
                "mmap writer"))
            wait_for(lambda: (arena / "mapped.bin").exists() or w.done, 30,
                     what="the mapped file")
            time.sleep(0.3)  # the descriptor is closed by now; the mapping writes on
            try:
                m = c.publish(n2, x)
            except grpc.RpcError as e:
                w.wait(60)
                expect(e.code() == grpc.StatusCode.UNAVAILABLE and "mapped.bin" in e.details(),
                       f"{e.code()}: {e.details()}")
                return
            expect_as_written(m, w, "mapped.bin", "as unmapped",
                              ": a file still mapped for writing was sent torn")
        self.check("a writer that closed its descriptor but writes through a shared mapping: "
                   "the publish gets the file as unmapped (or fails naming it)", mapped_writer)

        def opened_mid_transfer():
            big = self.pv["big"]
            vid = big.volume_handle
            self.slow_owner()
            try:
                bg = Background(lambda: c.publish(n2, big))
                wait_for(lambda: bg.done or fetch_in_progress(n2, vid, {"big.bin", "small.txt"}),
                         BOUND_S, what="the fetch")
                expect(not bg.done, f"the publish ended early: {bg.error or bg.value}")
                res = c.run_pod(n1, "overwriter", step("overwrite", "/vineyard", "big.bin", 2),
                                {"/vineyard": big})
                new_sha = pod_json(res, "overwriter")["sha"]
            finally:
                self.unslow_owner()
            bg.wait(120)
            expect(bg.error is None, f"the publish failed: {bg.error}")
            m = bg.value
            try:
                got = sha256(m.target / "big.bin")
                which = {self.big_sha: "old", new_sha: "new"}.get(got)
                print(f"     the replica has the {which or 'TORN'} big.bin", flush=True)
                expect(which is not None, f"big.bin {got} is neither the old {self.big_sha} nor "
                       f"the new {new_sha}")
            finally:
                c.unpublish(n2, m)
            self.big_sha = new_sha
        if "big" in self.pv and self.big_sha:
            self.check("a writer opening a file mid-transfer: the transfer retries, the "
                       "replica holds a whole file (old or new)", opened_mid_transfer)

    # -- end -----------------------------------------------------------------------------

    def teardown(self) -> None:
        c = self.c

        def delete():
            caps = {n.name: None for n in c.nodes}
            for node, pv in list(c.pvs):
                c.delete(pv)
            for n in c.nodes:
                left = [p.name for p in (n.daemon.state_dir / "arenas").iterdir()]
                expect(not left, f"{n.name} still has arenas {left}")
                caps[n.name] = n.capacity()
            expect(len(set(caps.values())) == 1, f"capacities after DeleteVolume: {caps}")
        self.check("DeleteVolume on each owner: no arena left, every node's capacity back",
                   delete)


def run_mode(checks: Runner, args, mode: str) -> None:
    tag = f"[{mode}]"
    size, big = parse_size(args.size), parse_size(args.big_size)
    capacity = 2 * big + 4 * rp.volume_request(size) + 256 * MIB
    cluster = MultiNodeCluster(args.root.resolve(), nodes=3, capacity=str(capacity),
                               io_mode=None if mode == "auto" else mode,
                               log_level=args.log_level)
    try:
        if checks.check(f"{tag} 3 nodes start in their network namespaces and serve peers",
                        cluster.__enter__) is None:
            return
        suite = Suite(checks, cluster, size, big, args.transfer_seconds, tag)
        try:
            suite.fan_in()
        except Skip:
            return
        if mode == "auto":  # placement does not depend on the I/O mode
            scheduling.run(checks, cluster, tag)
        if suite.big_volume():
            suite.owner_killed()
            suite.network_cut()
            suite.reader_killed()
        suite.shapes()
        suite.writer_race()
        suite.teardown()
    finally:
        cluster.close()

    def clean():
        ours = [n for n in netns.names() if n.startswith(f"{netns.PREFIX}{cluster.run}-")]
        expect(not ours, f"namespaces left: {ours}")
        left = host.mounts_below(cluster.root)
        expect(not left, f"mounts left {left}")
        expect(not cluster.root.exists(), f"{cluster.root} left")
    checks.check(f"{tag} after the run: no namespace, mount or file of it left", clean)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="32Mi", help="pipeline data per claim")
    p.add_argument("--big-size", default="256Mi", help="the volume whose transfers break")
    p.add_argument("--transfer-seconds", type=float, default=8.0,
                   help="slow the owner so that the big volume's transfer lasts this long "
                   "(0: full speed)")
    p.add_argument("--modes", default="auto,fuse,direct",
                   help="the nodes' --io-mode, one cluster each (auto: passthrough here)")
    p.add_argument("--root", default="/var/tmp/cellar-multinode", type=Path)
    p.add_argument("--log-level", default="info")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("multinode_test: needs root (namespaces, mounts, FUSE)")
    install_signal_handlers()
    checks = Runner(verbose=args.verbose)
    try:
        for mode in args.modes.split(","):
            run_mode(checks, args, mode.strip())
    except KeyboardInterrupt:
        print("interrupted: cleaned up", file=sys.stderr)
        checks.summary()
        return 130
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
