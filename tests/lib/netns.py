"""Network namespaces as the nodes of a cluster on one machine: one namespace per node
(`cellar-mn-<run>-<i>`, address 10.231.<k>.<i>/24 on its eth0), joined by veth pairs to
a bridge that lives in a namespace of its own (`cellar-mn-<run>-sw`), so that nothing of
the host's network changes. Also what a test does to a node's network: drop everything
it receives (iptables), slow its sending down (tc tbf).

Only the network is namespaced: a process runs in a node's namespace with
`nsenter --net=/run/netns/<name>` and stays in the host's mount namespace (not `ip netns
exec`, which makes a private mount namespace: the node's tmpfs arenas, FUSE mount and
bind mounts would then be invisible to the kubelet and the pods).

A run's names carry its id (the harness's pid); `stale_runs` finds those of runs whose
harness is gone, `delete_run` removes them and kills what still runs inside.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "cellar-mn-"
NETNS_DIR = Path("/run/netns")
PORT_NAME = "eth0"


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(list(argv), capture_output=True, text=True)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {res.returncode}: {res.stderr.strip()}")
    return res


def names() -> list[str]:
    """Every network namespace `ip netns` knows."""
    out = _run("ip", "netns", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def enter(ns: str) -> list[str]:
    """The command prefix that runs a program in namespace ns (network only)."""
    return ["nsenter", f"--net={NETNS_DIR / ns}", "--"]


def pids_in(ns: str) -> list[int]:
    res = _run("ip", "netns", "pids", ns, check=False)
    return [int(p) for p in res.stdout.split() if p.isdigit()]


def _kill_all(pids: list[int], timeout: float = 5.0) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    for pid in pids:
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            try:  # reap it if it is our child
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.02)


def delete(ns: str) -> None:
    """Kills what runs in ns, then deletes it (its veth goes with it)."""
    _kill_all(pids_in(ns))
    _run("ip", "netns", "delete", ns, check=False)


def _harness_alive(run: str) -> bool:
    if not run.isdigit():
        return False
    try:
        cmdline = Path(f"/proc/{run}/cmdline").read_bytes()
    except OSError:
        return False
    return b"tests.multinode" in cmdline or b"tests/multinode" in cmdline


def stale_runs() -> list[str]:
    """Ids of runs that left namespaces behind and whose harness no longer runs."""
    runs = set()
    for ns in names():
        m = re.fullmatch(re.escape(PREFIX) + r"(\w+)-(\w+)", ns)
        if m and not _harness_alive(m.group(1)):
            runs.add(m.group(1))
    return sorted(runs)


def delete_run(run: str) -> None:
    for ns in names():
        if ns.startswith(f"{PREFIX}{run}-"):
            delete(ns)


@dataclass
class Network:
    """The switch of one run and the nodes plugged into it."""
    run: str
    subnet: int                      # k of 10.231.k.0/24
    nodes: list[str] = field(default_factory=list)

    @property
    def switch(self) -> str:
        return f"{PREFIX}{self.run}-sw"

    def node_ns(self, i: int) -> str:
        return f"{PREFIX}{self.run}-{i}"

    def address(self, i: int) -> str:
        return f"10.231.{self.subnet}.{i}"

    def create_switch(self) -> None:
        _run("ip", "netns", "add", self.switch)
        _run("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", self.switch, "link", "set", "br0", "up")

    def add_node(self, i: int) -> str:
        """Namespace i with its address, plugged into the switch; its name."""
        ns = self.node_ns(i)
        _run("ip", "netns", "add", ns)
        self.nodes.append(ns)
        _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "-n", ns, "link", "add", PORT_NAME, "type", "veth", "peer", "name", f"n{i}",
             "netns", self.switch)
        _run("ip", "-n", self.switch, "link", "set", f"n{i}", "master", "br0", "up")
        _run("ip", "-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", PORT_NAME)
        _run("ip", "-n", ns, "link", "set", PORT_NAME, "up")
        return ns

    def destroy(self) -> None:
        for ns in reversed(self.nodes):
            delete(ns)
        self.nodes.clear()
        if self.switch in names():
            delete(self.switch)


# What a test does to one node's network.

def cut(ns: str) -> None:
    """The node receives nothing any more (its sends still leave: a one-sided cut, as a
    broken link or a dead host looks to the others)."""
    _run("ip", "netns", "exec", ns, "iptables", "-w", "-A", "INPUT", "-j", "DROP")


def heal(ns: str) -> None:
    _run("ip", "netns", "exec", ns, "iptables", "-w", "-D", "INPUT", "-j", "DROP")


def throttle(ns: str, mbit: int) -> None:
    """Limits what the node sends to mbit/s, so that a transfer from it lasts long
    enough to be interrupted halfway, without volumes of gigabytes."""
    _run("tc", "-n", ns, "qdisc", "replace", "dev", PORT_NAME, "root", "tbf", "rate",
         f"{mbit}mbit", "burst", "256kb", "latency", "100ms")


def unthrottle(ns: str) -> None:
    _run("tc", "-n", ns, "qdisc", "del", "dev", PORT_NAME, "root", check=False)
