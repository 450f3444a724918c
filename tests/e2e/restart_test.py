"""Crash and upgrade survival under load: `cellar node` is SIGKILLed and restarted,
stopped and restarted, and taken over by a second process while pods keep reading and
writing their volume; then the FUSE descriptor holder itself dies.

  python3 -m tests.e2e.restart_test [--modes passthrough,fallback,direct] [--pods 3] [--root DIR] [-v]

Per mode:
  load        a holder (`cellar fd-holder`) and a node (`--fd-holder`), one 512 MiB
              volume published for N pods, each running restart_worker.py for the whole
              run; 3 SIGKILL restarts, 1 SIGTERM restart and 3 takeovers with a couple
              of seconds of load between; after each, NodeGetVolumeStats on every
              publication is healthy and a new publication shows the pods' files. Then:
              no I/O error, no corruption, final verification of every file, every pod
              worked after the last takeover; the longest single stall is printed
              (target < 1 s, not enforced); unpublish, DeleteVolume, SIGTERM node and
              holder.
  holder dies with a pod mounted, the holder and then the node are SIGKILLed: a new
              holder and node start in bounded time, the old publication is reported
              abnormal and unpublishes, a new one shows every file closed before, intact.

Prints one line per check, a summary per mode and `N passed, N failed`.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.e2e import run_pipeline as rp
from tests.e2e.pod import PYTHON
from tests.lib import REPO, host, roles
from tests.lib.checks import Runner, expect
from tests.lib.kubelet import Kubelet, Mounted
from tests.lib.node import CellarHolder, CellarNode, tail
from tests.lib.objects import Pod, StorageClass
from tests.lib.provisioner import Provisioner

HERE = Path(__file__).resolve().parent  # the pods' /app: restart_worker.py, pod.py

MIB = 1 << 20
STALL_TARGET = 1.0     # seconds; reported, not enforced
READY_TIMEOUT = 30.0   # a node or holder start, a takeover
LOAD_BETWEEN = 2.0     # seconds of load between two restarts
PROGRESS_TIMEOUT = 30.0


def passed(checks: Runner, name: str, fn) -> bool:
    before = checks.failed
    checks.check(name, fn)
    return checks.failed == before


def with_timeout(seconds: float, what: str, fn, *args):
    """Runs fn in a thread: file system calls on a FUSE mount can block for good, and a
    hang must fail the check, not the run."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            box["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        raise TimeoutError(f"{what}: no answer in {seconds:.0f}s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(MIB):
            h.update(b)
    return h.hexdigest()


class Timeline:
    """Wall-clock events of the run, to say in which phase a worker's error or stall
    happened."""

    def __init__(self):
        self.events: list[tuple[float, str]] = []

    def mark(self, label: str) -> float:
        now = time.time()
        self.events.append((now, label))
        return now

    def phase(self, t: float) -> str:
        label = "before start"
        for when, what in self.events:
            if when > t:
                break
            label = what
        return label


class LoadPod:
    """A pod (pod.py's namespaces and root) running restart_worker.py in the background,
    with its volume at /vineyard and the run's control directory at /control."""

    def __init__(self, name: str, target: Path, control: Path, workdir: Path, extra=()):
        self.name, self.control = name, control
        self.root = tempfile.mkdtemp(prefix=f"cellar-pod-{name}-", dir=workdir)
        spec = {"volumes": {"/vineyard": [str(target), False], "/control": [str(control), False]},
                "argv": [PYTHON, "/app/restart_worker.py", "--name", name, *extra],
                "app": str(HERE), "root": self.root,
                "env": {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp",
                        "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "POD_NAME": name}}
        self.out = open(control / f"{name}.out", "wb")
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--pid", "--fork", "--propagation", "private",
             PYTHON, str(HERE / "pod.py"), "--inside", json.dumps(spec)],
            stdout=self.out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)

    def progress(self) -> dict:
        try:
            return json.loads((self.control / f"{self.name}.progress").read_text())
        except (OSError, ValueError):
            return {"ops": 0}

    def result(self) -> dict | None:
        try:
            return json.loads((self.control / f"{self.name}.result.json").read_text())
        except (OSError, ValueError):
            return None

    def ledger(self) -> dict:
        return json.loads((self.control / f"{self.name}.ledger.json").read_text())

    def output(self) -> str:
        return tail(self.control / f"{self.name}.out", 3000)

    def where(self) -> str:
        """Where the pod's processes are blocked: comm, wchan and the system call
        (from /proc/PID/syscall: number and arguments)."""
        kids: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                kids.setdefault(ppid, []).append(int(entry.name))
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            todo += kids.get(pid, [])
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                wchan = Path(f"/proc/{pid}/wchan").read_text().strip()
                sysc = Path(f"/proc/{pid}/syscall").read_text().split()[:2]
            except OSError:
                continue
            out.append(f"{pid} {comm} wchan={wchan} syscall={' '.join(sysc)}")
        return "; ".join(out)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"pod {self.name} still runs after {timeout:.0f}s "
                               f"({self.where()})") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self.out.close()
        try:
            os.rmdir(self.root)
        except OSError:
            pass


class Node:
    """The node as the test drives it: holder, daemon, kubelet and provisioner (both
    rebuilt on a fresh channel after every restart, as the real ones reconnect)."""

    binary = REPO / "build" / "cellar"

    def __init__(self, home: Path, mode: str):
        self.home = home
        self.mode = mode
        self.holder = CellarHolder(home / "node", binary=self.binary)
        self.node = CellarNode(home=home / "node", binary=self.binary, capacity="1Gi",
                               passthrough=mode != "fallback", fd_holder=self.holder.socket,
                               extra_args=("--io-mode=direct",) if mode == "direct" else (),
                               log_per_start=True)
        self.calls: list = []
        self.channel = None
        self.kubelet: Kubelet | None = None
        self.provisioner: Provisioner | None = None

    def connect(self, channel) -> None:
        if self.channel is not None:
            self.channel.close()
        self.channel = channel
        self.kubelet, self.provisioner = roles.attach(channel, self.home / "kubelet",
                                                      self.node.node_id, self.calls)

    def start(self, timeout: float = READY_TIMEOUT) -> bool:
        self.holder.start(timeout=10.0)
        self.connect(self.node.start(timeout))
        return True

    def logs(self) -> str:
        """The holder's log and every node process's (one file per start)."""
        files = [self.holder.log_path] + sorted(self.node.home.glob("cellar*.log"),
                                                key=lambda f: f.stat().st_mtime)
        return "\n".join(f"--- {f.name}\n{tail(f, 4000)}" for f in files)

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None


def exit_status(rc: int) -> str:
    if rc is not None and rc < 0:
        name = signal.Signals(-rc).name
        why = " (a mapped page could not be read or written)" if -rc == signal.SIGBUS else ""
        return f"{name}{why}"
    return str(rc)


def wait_load(pods: list[LoadPod], since: dict, seconds: float, what: str) -> None:
    """At least `seconds` of load, and every pod has done operations since `since`."""
    start = time.monotonic()
    errors0 = {p.name: p.progress().get("io_errors", 0) for p in pods}
    while True:
        prog = {p.name: p.progress() for p in pods}
        stuck = [p for p in pods if prog[p.name]["ops"] <= since.get(p.name, 0)]
        elapsed = time.monotonic() - start
        if not stuck and elapsed >= seconds:
            return
        failing = [p for p in stuck if prog[p.name].get("io_errors", 0) > errors0[p.name] + 20]
        if failing:  # no success, only errors: no use waiting
            raise AssertionError(f"{what}: only errors in " + "; ".join(
                f"{p.name} ({prog[p.name]['io_errors']} errors, last {prog[p.name]['last_error']})"
                for p in failing))
        if elapsed > PROGRESS_TIMEOUT:
            raise AssertionError(f"{what}: no operation for {PROGRESS_TIMEOUT:.0f}s in "
                                 + "; ".join(f"{p.name} [{p.where()}]" for p in stuck))
        dead = [p for p in pods if p.proc.poll() is not None]
        if dead:
            raise AssertionError(f"{what}: pod {dead[0].name} exited with "
                                 f"{exit_status(dead[0].proc.returncode)}:\n{dead[0].output()}")
        time.sleep(0.1)


def kubelet_view(n: Node, published: list[Mounted], pv, label: str) -> None:
    """NodeGetVolumeStats on every publication is healthy; a new publication of the
    volume works and shows every pod's directory with files."""
    k = n.kubelet
    for m in published:
        st = k.volume_stats(m)
        expect(not st["abnormal"], f"{m.target}: volume condition abnormal: {st['message']}")
        expect(st.get("bytes", {}).get("total") == pv.capacity_bytes, f"stats {st}")
    pod = Pod(name=f"check-{label}", namespace="pipelines")
    m = k.mount(pod, pv)
    try:
        names = with_timeout(20, f"listdir {m.target}", os.listdir, m.target)
        for p in published:
            expect(p.pod.name in names, f"new publication shows {names}, not {p.pod.name}")
            files = with_timeout(20, "listdir", os.listdir, m.target / p.pod.name)
            expect(files, f"{p.pod.name}'s directory is empty in the new publication")
    finally:
        k.unmount(m)
        k.remove_pod_dir(pod)


def io_errors(res: dict, tl: Timeline) -> list[str]:
    """The first errors of a pod, each with its phase, and then counts by op and errno."""
    lines = [f"{res['name']}: {e['op']} {e['path']}: {e['errno']} during '{tl.phase(e['time'])}'"
             for e in res.get("errors", [])[:5]]
    if res.get("error_counts"):
        lines.append(f"{res['name']} errors by op: {res['error_counts']}")
    return lines


def corruptions(res: dict, tl: Timeline) -> list[str]:
    return [f"{res['name']}: {c['file']} differs ({c['how']}) during '{tl.phase(c['time'])}'"
            for c in res.get("corruptions", [])]


def run_load(checks: Runner, mode: str, root: Path, npods: int) -> dict:
    home = root / mode
    rp.cleanup_root(home)
    home.mkdir(parents=True)
    control = home / "control"
    control.mkdir()
    tag = f"[{mode}]"
    n = Node(home, mode)
    tl = Timeline()
    summary = {"mode": mode, "restarts": 0, "takeovers": 0, "outages": []}
    pods: list[LoadPod] = []
    published: list[Mounted] = []
    failed_before = checks.failed
    try:
        if not passed(checks, f"{tag} holder and node start", n.start):
            return summary
        tl.mark("start")
        pv = checks.check(f"{tag} CreateVolume 512Mi", lambda: n.provisioner.provision(
            StorageClass(), "restart-data", "pipelines", 512 * MIB, n.kubelet.topology))
        if pv is None:
            return summary

        def start_pods():
            for i in range(npods):
                pod = Pod(name=f"load-{i}", namespace="pipelines")
                published.append(n.kubelet.mount(pod, pv))
                pods.append(LoadPod(pod.name, published[-1].target, control, home))
            wait_load(pods, {}, 1.0, "first operations")
        if not passed(checks, f"{tag} {npods} pods published and working", start_pods):
            return summary

        def event(kind: str, i: int):
            label = f"{kind} {i}"
            def go():
                wait_load(pods, {}, LOAD_BETWEEN, f"load before {label}")
                t0 = time.monotonic()
                if kind == "takeover":
                    tl.mark(f"{label}: second process started")
                    channel, rc = n.node.takeover(READY_TIMEOUT)
                    expect(rc == 0, f"the old process exited with {rc}")
                    summary["takeovers"] += 1
                    lines = [l for l in n.node.log().splitlines()
                             if "took over" in l or "serving" in l]
                    note = f"; new log: {lines[-1][24:100]!r}" if lines else \
                        "; new log has no 'took over'/'serving' line"
                else:
                    sig = signal.SIGKILL if kind == "SIGKILL" else signal.SIGTERM
                    tl.mark(f"{label}: daemon down")
                    rc = n.node.stop(sig)
                    if sig == signal.SIGTERM:
                        expect(rc == 0, f"SIGTERM: exit code {rc}")
                    channel = n.node.start(READY_TIMEOUT)
                    summary["restarts"] += 1
                    note = ""
                down = time.monotonic() - t0
                tl.mark(f"after {label}")
                summary["outages"].append(round(down, 2))
                summary["last_ready"] = time.monotonic()
                n.connect(channel)
                at_ready = {p.name: p.progress()["ops"] for p in pods}
                kubelet_view(n, published, pv, label.replace(" ", "-"))
                wait_load(pods, at_ready, 0.5, f"load after {label}")
                print(f"     {label}: ready {down:.2f}s after it began{note}", flush=True)
            return go

        steps = [("SIGKILL", i) for i in (1, 2, 3)] + [("SIGTERM", 1)] + \
                [("takeover", i) for i in (1, 2, 3)]
        if all(passed(checks, f"{tag} {kind} {i}: back under load; stats healthy, a new "
                      "publication shows the files", event(kind, i)) for kind, i in steps):
            checks.check(f"{tag} load goes on after the last takeover", lambda: wait_load(
                pods, {p.name: p.progress()["ops"] for p in pods}, LOAD_BETWEEN, "final load"))

        results: dict[str, dict] = {}

        def stop_workers():
            (control / "stop").touch()
            tl.mark("workers stopping")
            bad = []
            for p in pods:
                rc = p.wait(120)
                res = p.result()
                if res is not None:
                    results[p.name] = res
                if rc != 0 or res is None:
                    bad.append(f"pod {p.name} exited with {exit_status(rc)}, "
                               f"{'a' if res else 'no'} result:\n{p.output()}")
            expect(not bad, "\n".join(bad))
        checks.check(f"{tag} workers stop and report", stop_workers)
        rs = list(results.values())

        def no_errors():
            bad = [line for r in rs for line in io_errors(r, tl)]
            expect(all(r["io_errors"] == 0 for r in rs),
                   f"{sum(r['io_errors'] for r in rs)} I/O errors: " + "; ".join(bad))
        def no_corruption():
            bad = [line for r in rs for line in corruptions(r, tl)]
            expect(all(r["corrupted"] == 0 for r in rs),
                   f"{sum(r['corrupted'] for r in rs)} mismatches: " + "; ".join(bad[:10]))
        def verified():
            bad = {r["name"]: r["final"]["problems"] for r in rs if not r["final"]["ok"]}
            expect(not bad, f"final verification: {bad}")
        def worked_after():
            since = math.ceil(summary.get("last_ready", math.inf) * 10)
            after = {r["name"]: sum(c for s, c in r["ops_by_tenth"].items() if int(s) >= since)
                     for r in rs}
            expect(all(v > 0 for v in after.values()),
                   f"operations after the last restart or takeover {after}")
        if rs:
            checks.check(f"{tag} no I/O error in any pod", no_errors)
            checks.check(f"{tag} no checksum mismatch", no_corruption)
            checks.check(f"{tag} final verification of every closed file", verified)
            checks.check(f"{tag} every pod worked after the last restart or takeover", worked_after)
            worst = max(rs, key=lambda r: r["max_latency"])
            slow = [s for r in rs for s in r["slow"]]
            top = max(slow, key=lambda s: s["seconds"]) if slow else None
            summary.update(ops=sum(r["ops"] for r in rs),
                           io_errors=sum(r["io_errors"] for r in rs),
                           corrupted=sum(r["corrupted"] for r in rs),
                           stall=worst["max_latency"],
                           stall_op=f"{worst['name']} {worst['max_op']}",
                           stall_phase=tl.phase(top["ended"] - top["seconds"]) if top else "")
            by_phase: dict[str, float] = {}  # the longest stall that began in each phase
            for sl in slow:
                ph = tl.phase(sl["ended"] - sl["seconds"])
                by_phase[ph] = max(by_phase.get(ph, 0.0), sl["seconds"])
            summary["stalls"] = by_phase

        def teardown():
            for m in published:
                n.kubelet.unmount(m)
                n.kubelet.remove_pod_dir(m.pod)
            published.clear()
            n.provisioner.delete(pv)
            n.close()
            rc = n.node.stop(signal.SIGTERM)
            expect(rc == 0, f"node SIGTERM: exit code {rc}")
            rc = n.holder.stop(signal.SIGTERM)
            expect(rc == 0, f"holder SIGTERM: exit code {rc}")
            left = host.mounts_below(home)
            summary["left_mounted"] = left
            expect(not [mp for mp in left if mp != str(n.node.state_dir / "fuse")],
                   f"left mounted: {left}")
        checks.check(f"{tag} unpublish (published before the restarts), DeleteVolume, "
                     "SIGTERM node and holder", teardown)
        return summary
    finally:
        for p in pods:
            p.kill()
        if checks.failed > failed_before:
            print(f"{tag} logs after a failure:\n{n.logs()}", flush=True)
        n.close()
        n.node.stop(signal.SIGKILL)
        n.holder.stop(signal.SIGKILL)
        rp.cleanup_root(home)


def run_holder_death(checks: Runner, mode: str, root: Path) -> None:
    home = root / f"{mode}-holder-death"
    rp.cleanup_root(home)
    home.mkdir(parents=True)
    control = home / "control"
    control.mkdir()
    tag = f"[{mode} holder death]"
    n = Node(home, mode)
    tl = Timeline()
    v: dict = {}  # pv, old (the pod's publication), pod
    failed_before = checks.failed
    try:
        def setup():
            n.start()
            v["pv"] = n.provisioner.provision(StorageClass(), "victim-data", "pipelines",
                                              128 * MIB, n.kubelet.topology)
            v["old"] = n.kubelet.mount(Pod(name="victim", namespace="pipelines"), v["pv"])
            pod = v["pod"] = LoadPod("victim", v["old"].target, control, home,
                                     ["--budget", str(32 * MIB), "--linger"])
            wait_load([pod], {}, 2.0, "victim's load")
            (control / "stop").touch()
            deadline = time.monotonic() + 60
            while pod.result() is None:
                expect(pod.proc.poll() is None, f"victim exited:\n{pod.output()}")
                expect(time.monotonic() < deadline, f"no result in 60s ({pod.where()})")
                time.sleep(0.1)
            r = pod.result()
            expect(r["io_errors"] == 0 and r["corrupted"] == 0 and r["final"]["ok"],
                   f"victim before the kill: {io_errors(r, tl)} {corruptions(r, tl)} "
                   f"{r['final']}")
            return pod.ledger()
        ledger = checks.check(f"{tag} a pod writes, closes its files and stays mounted", setup)
        if ledger is None:
            return
        pv, old, pod = v["pv"], v["old"], v["pod"]

        def restart():
            n.holder.stop(signal.SIGKILL)
            n.node.stop(signal.SIGKILL)
            n.close()
            t0 = time.monotonic()
            n.start(timeout=30.0)
            return time.monotonic() - t0
        took = checks.check(f"{tag} SIGKILL holder then node; new holder and node start "
                            "within 30s", restart)
        if took is None:
            return
        print(f"     started again in {took:.2f}s", flush=True)

        def still_served():
            # A direct publication is a bind mount of the tmpfs arena: no daemon in its
            # path, so losing both processes must not touch it.
            st = n.kubelet.volume_stats(old)
            expect(not st["abnormal"], f"old publication reported {st}")
            names = set(with_timeout(10, "listdir", os.listdir, old.target / "victim"))
            expect(names == set(ledger), f"old target shows {sorted(names)[:8]}")
            print(f"     still healthy: {st['message']!r}, {len(names)} files", flush=True)
        if n.mode == "direct":
            checks.check(f"{tag} the old publication stays healthy and readable (no daemon "
                         "in a direct mount's path)", still_served)

        def abnormal():
            try:
                with_timeout(10, "stat", os.stat, old.target)
                seen = "stat OK"
            except OSError as e:
                seen = errno.errorcode.get(e.errno, str(e.errno))
            st = n.kubelet.volume_stats(old)
            expect(st["abnormal"] and st["message"] and st["message"] != "healthy",
                   f"old publication reported {st} (stat of the target on the host: {seen})")
            print(f"     abnormal: {st['message']!r}; host stat of the old target: {seen}",
                  flush=True)
        if n.mode != "direct":
            checks.check(f"{tag} NodeGetVolumeStats on the old publication: abnormal, with a "
                         "message", abnormal)
        checks.check(f"{tag} NodeUnpublishVolume on the old publication",
                     lambda: (n.kubelet.unmount(old), n.kubelet.remove_pod_dir(old.pod)))

        def republish():
            m = n.kubelet.mount(Pod(name="after", namespace="pipelines"), pv)
            try:
                d = m.target / "victim"
                names = set(with_timeout(20, f"listdir {d}", os.listdir, d))
                expect(names == set(ledger), f"files {sorted(names)[:8]}, closed before "
                       f"{sorted(ledger)[:8]}")
                bad = [f for f, sha in ledger.items()
                       if with_timeout(20, f"read {f}", sha256_file, d / f) != sha]
                expect(not bad, f"{len(bad)} of {len(ledger)} files differ: {bad[:5]}")
            finally:
                n.kubelet.unmount(m)
                n.kubelet.remove_pod_dir(m.pod)
            return len(ledger)
        count = checks.check(f"{tag} a new publication shows every file closed before, intact",
                             republish)
        if count is not None:
            print(f"     {count} files verified", flush=True)

        def release():
            (control / "victim.exit").touch()
            pod.wait(20)
        checks.check(f"{tag} the old pod exits", release)

        def teardown():
            n.provisioner.delete(pv)
            n.close()
            expect(n.node.stop(signal.SIGTERM) == 0, "node SIGTERM exit code")
            expect(n.holder.stop(signal.SIGTERM) == 0, "holder SIGTERM exit code")
        checks.check(f"{tag} DeleteVolume, SIGTERM node and holder", teardown)
    finally:
        if "pod" in v:
            v["pod"].kill()
        if checks.failed > failed_before:
            print(f"{tag} logs:\n{n.logs()}", flush=True)
        n.close()
        n.node.stop(signal.SIGKILL)
        n.holder.stop(signal.SIGKILL)
        rp.cleanup_root(home)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--modes", default="passthrough,fallback,direct")
    p.add_argument("--pods", type=int, default=3)
    p.add_argument("--root", default="/var/tmp/cellar-restart-test", type=Path)
    p.add_argument("--cellar", default=Node.binary, type=Path)
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("restart_test.py: needs root (mounts, namespaces, FUSE)")
    Node.binary = args.cellar.resolve()

    def on_term(*_):  # unwind through every finally, once
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    checks = Runner(verbose=args.verbose)
    root = args.root.resolve()
    summaries = []
    started = time.monotonic()
    try:
        for mode in args.modes.split(","):
            summaries.append({"mode": mode, "restarts": 0, "takeovers": 0})
            checks.check(f"[{mode}] load through restarts and takeovers: run and clean up",
                         lambda: summaries.__setitem__(-1, run_load(checks, mode, root, args.pods)))
            checks.check(f"[{mode} holder death]: run and clean up",
                         lambda: run_holder_death(checks, mode, root))
    finally:
        rp.cleanup_root(root)
    print()
    for s in summaries:
        if "ops" not in s:
            print(f"[{s['mode']}] no result (restarts {s['restarts']}, takeovers {s['takeovers']})")
            continue
        met = "met" if s["stall"] < STALL_TARGET else "NOT met"
        print(f"[{s['mode']}] ops {s['ops']}, io_errors {s['io_errors']}, corrupted "
              f"{s['corrupted']}, longest stall {s['stall']:.3f}s ({s['stall_op']}, "
              f"{s['stall_phase'] or '-'}; target < {STALL_TARGET:.0f}s {met}), restarts "
              f"{s['restarts']}, takeovers {s['takeovers']}, ready after "
              f"{', '.join(f'{o:.2f}' for o in s['outages'])}s")
        if s.get("stalls"):
            print(f"[{s['mode']}] stalls over 0.2s by phase: " + ", ".join(
                f"{ph}: {sec:.2f}s" for ph, sec in s["stalls"].items()))
    print(f"({time.monotonic() - started:.0f}s)")
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
