"""The node plugin's processes: `cellar node` (start, ready when Probe says so, takeover,
stop) and `cellar fd-holder`, and the clean-up of what an interrupted run left."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

from tests.lib import REPO, csi, host

pb, pb_grpc = csi.stubs()


@dataclass
class _Daemon:
    """A `cellar` subcommand run in its own session, its files under `home`."""
    home: Path
    binary: Path = REPO / "build" / "cellar"
    log_level: str = "info"
    proc: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        raise NotImplementedError

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        """Sends sig, waits, SIGKILLs after timeout; the exit code (None: not running)."""
        rc = end_process(self.proc, sig, timeout)
        self.proc = None
        return rc

    def log(self) -> str:
        return tail(self.log_path)


@dataclass
class CellarNode(_Daemon):
    """One `cellar node` process with its socket, state dir and log under `home`."""
    node_id: str = "e2e-node"
    capacity: str = "1Gi"
    passthrough: bool = True
    max_volumes: int = 64
    fd_holder: Path | None = None   # --fd-holder: a CellarHolder's socket
    extra_args: tuple = ()          # more flags, after the ones above
    # Each start logs to a file of its own (cellar.log, cellar.2.log, ...), so the two
    # processes of a takeover can be told apart.
    log_per_start: bool = False
    starts: int = 0

    @property
    def socket(self) -> Path:
        return self.home / "csi.sock"

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    @property
    def log_path(self) -> Path:
        if self.log_per_start and self.starts > 1:
            return self.home / f"cellar.{self.starts}.log"
        return self.home / "cellar.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "cellar.pid"

    def args(self) -> list[str]:
        args = [str(self.binary), "node", "--endpoint", f"unix://{self.socket}",
                "--node-id", self.node_id, "--state-dir", str(self.state_dir),
                "--capacity", self.capacity, "--max-volumes", str(self.max_volumes),
                "--log-level", self.log_level, "--driver-name", csi.DRIVER]
        if not self.passthrough:
            args.append("--no-passthrough")
        if self.fd_holder is not None:
            args += ["--fd-holder", str(self.fd_holder)]
        return args + list(self.extra_args)

    def _spawn(self) -> subprocess.Popen:
        self.home.mkdir(parents=True, exist_ok=True)
        if self.log_per_start:
            self.starts += 1
        log = open(self.log_path, "ab")
        # Its own session: a Ctrl-C at the terminal reaches the harness, which then
        # tears down in order, not the daemon.
        proc = subprocess.Popen(self.args(), stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        log.close()
        self.pid_file.write_text(f"{proc.pid}\n")
        return proc

    def start(self, timeout: float = 30.0) -> grpc.Channel:
        self.proc = self._spawn()
        return self._wait_ready(timeout)

    def takeover(self, timeout: float = 30.0) -> tuple[grpc.Channel, int]:
        """Starts a second process with the same arguments while this one runs, as an
        upgrade does. Returns once the old process has exited (with its exit code) and
        the new one answers Probe: until the hand-over completes the socket may still
        be answered by the old one."""
        old = self.proc
        if old is None or old.poll() is not None:
            raise RuntimeError("takeover: no running process to take over from")
        self.proc = self._spawn()
        deadline = time.monotonic() + timeout
        while old.poll() is None:
            if self.proc.poll() is not None:
                self.proc, new = old, self.proc
                raise RuntimeError(f"the new cellar node exited with {new.returncode} while "
                                   f"taking over:\n{self.log()}")
            if time.monotonic() > deadline:
                new, self.proc = self.proc, old
                new.kill()
                new.wait()
                raise RuntimeError(f"the old cellar node (pid {old.pid}) still runs {timeout}s "
                                   f"after a takeover started:\n{self.log()}")
            time.sleep(0.02)
        return self._wait_ready(max(1.0, deadline - time.monotonic())), old.returncode

    def _wait_ready(self, timeout: float) -> grpc.Channel:
        try:
            return wait_ready(self.proc, self.socket, timeout)
        except NotReady as e:
            if e.exited is None:
                self.stop(sig=signal.SIGKILL)
            raise RuntimeError(f"{e}:\n{self.log()}") from None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        rc = super().stop(sig, timeout)
        self.pid_file.unlink(missing_ok=True)
        return rc


class NotReady(RuntimeError):
    """The plugin exited (exited: its code) or did not answer Probe in time (None)."""

    def __init__(self, message: str, exited: int | None):
        super().__init__(message)
        self.exited = exited


def wait_ready(proc: subprocess.Popen, socket: Path, timeout: float) -> grpc.Channel:
    """Waits until the plugin `proc` serves on `socket` and Probe says it is ready (no
    `ready` field counts as ready, as the spec says); returns a channel to it. NotReady
    when the process exits first or the time runs out (the process is left running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise NotReady(f"cellar node exited with {proc.returncode}", proc.returncode)
        if socket.exists():
            # A fresh channel per attempt: the socket may be a stale one (a restart) or
            # the old process's (a takeover), and a channel that failed to connect backs
            # off for seconds before it looks again.
            channel = grpc.insecure_channel(f"unix://{socket}")
            try:
                r = pb_grpc.IdentityStub(channel).Probe(pb.ProbeRequest(), timeout=1.0)
                if not r.HasField("ready") or r.ready.value:
                    return channel
            except grpc.RpcError:
                pass
            channel.close()
        time.sleep(0.05)
    raise NotReady(f"cellar node did not become ready in {timeout}s", None)


def end_process(proc: subprocess.Popen | None, sig: int, timeout: float) -> int | None:
    """Sends sig, waits, SIGKILLs after timeout; the exit code (None: no process)."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def tail(path: Path, chars: int = 6000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@dataclass
class CellarHolder(_Daemon):
    """One `cellar fd-holder` process: it holds the FUSE connection's descriptors for
    the `cellar node` started with `--fd-holder <socket>`, so the connection outlives a
    crash of the node."""

    @property
    def socket(self) -> Path:
        return self.home / "holder.sock"

    @property
    def log_path(self) -> Path:
        return self.home / "holder.log"

    def _socket_id(self):
        try:
            st = os.lstat(self.socket)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_ctime_ns) if stat.S_ISSOCK(st.st_mode) else None

    def start(self, timeout: float = 10.0) -> None:
        """Starts it and waits for its socket. A socket left by a holder that died is
        there already; readiness is a socket that was not there before."""
        self.home.mkdir(parents=True, exist_ok=True)
        before = self._socket_id()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(self.binary), "fd-holder", "--socket", str(self.socket),
                                      "--log-level", self.log_level],
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cellar fd-holder exited with {self.proc.returncode}:\n"
                                   f"{self.log()}")
            now = self._socket_id()
            if now is not None and now != before:
                return
            time.sleep(0.02)
        self.stop(sig=signal.SIGKILL)
        raise RuntimeError(f"cellar fd-holder made no socket in {timeout}s:\n{self.log()}")


def stale_nodes(root: Path, commands=(b"node", b"fd-holder")) -> list[int]:
    """Pids of `cellar node` (and `cellar fd-holder`) processes whose state dir or socket
    lies under root: what an interrupted run left behind (its pid file may be gone with
    it)."""
    prefix = str(root).rstrip("/").encode() + b"/"
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and argv[0].endswith(b"cellar") and argv[1] in commands and any(
                a.startswith(prefix) or a.startswith(b"unix://" + prefix) for a in argv):
            pids.append(int(entry.name))
    return pids


def kill_stale_node(home: Path) -> None:
    """Stops every daemon an interrupted run left under home (its pid file is only a
    hint; the command line says which state dir a process serves, and pids get reused)."""
    (home / "cellar.pid").unlink(missing_ok=True)
    for pid in stale_nodes(home):
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                try:  # reap it if it is our child; otherwise just wait
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                time.sleep(0.05)
            if not Path(f"/proc/{pid}").exists():
                break


def cleanup_root(root: Path) -> None:
    """Removes what a run (finished or interrupted) left under root: its daemons, its
    mounts, its files."""
    kill_stale_node(root)
    host.unmount_below(root)
    if host.mounts_below(root):
        raise RuntimeError(f"could not unmount {host.mounts_below(root)}")
    if root.exists():
        subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=True)


def install_signal_handlers() -> None:
    """SIGTERM (a wrapper's timeout) and SIGINT unwind as KeyboardInterrupt, through
    every finally; a second signal must not cut the clean-up short. A SIGINT ignored at
    start (a background job) stays ignored."""
    def on_signal(*_):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, on_signal)
