"""The peers' servers as real local processes: vineyardd (from the vineyard-bdist wheel)
on a unix socket, and MinIO (built from its Go module) on loopback. Context managers:
each server is stopped, by its own pid, and its data removed on the way out."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

MINIO_USER, MINIO_PASSWORD = "minio", "minio123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(ready, what: str, proc: subprocess.Popen, log: Path, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        if ready():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready after {timeout}s: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_CLEAR = """
import sys, vineyard
client = vineyard.connect(sys.argv[1])
ids = [meta.id for meta in client.list_metadatas("*", limit=100000)]
for name in client.list_names("*", limit=100000):
    client.drop_name(name)
if ids:
    client.delete(ids, force=True, deep=True)
client.close()
"""


class Vineyardd:
    """`python -m vineyard --meta=local`: vineyardd alone, no etcd. The socket is named
    vineyard.sock because vineyard.csi looks for that name above the object's path."""

    def __init__(self, home: Path, size_bytes: int, python: str = sys.executable):
        self.home = home
        self.socket = home / "vineyard.sock"
        self.size = size_bytes
        self.python = python  # a venv's python with vineyard and vineyard-bdist

    def __enter__(self):
        self.home.mkdir(parents=True, exist_ok=True)
        self.log = self.home / "vineyardd.log"
        self.proc = subprocess.Popen(
            [self.python, "-m", "vineyard", f"--socket={self.socket}", "--meta=local",
             f"--size={self.size}"],
            stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        wait_for(self.socket.exists, "vineyardd", self.proc, self.log)
        return self

    def clear(self) -> None:
        """Deletes every object (and so every name), so the next method starts with the
        memory free. Run in the server's python, which has vineyard."""
        subprocess.run([self.python, "-c", _CLEAR, str(self.socket)], check=True)

    def __exit__(self, *exc):
        stop(self.proc)
        shutil.rmtree(self.home, ignore_errors=True)


class MinIO:
    """`minio server` on 127.0.0.1 with its data in DATA_DIR (tmpfs here: the transport is
    what is measured, not a disk)."""

    def __init__(self, binary: Path, data_dir: Path):
        self.binary = binary
        self.data_dir = data_dir

    def __enter__(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        self.log = self.data_dir.parent / "minio.log"
        env = dict(os.environ, MINIO_ROOT_USER=MINIO_USER, MINIO_ROOT_PASSWORD=MINIO_PASSWORD,
                   MINIO_BROWSER="off")
        self.proc = subprocess.Popen(
            [str(self.binary), "server", "--quiet", "--address", f"127.0.0.1:{port}",
             "--console-address", f"127.0.0.1:{free_port()}", str(self.data_dir)],
            stdout=self.log.open("w"), stderr=subprocess.STDOUT, env=env)
        wait_for(self._ready, "minio", self.proc, self.log)
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint + "/minio/health/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def __exit__(self, *exc):
        stop(self.proc)
        shutil.rmtree(self.data_dir, ignore_errors=True)
