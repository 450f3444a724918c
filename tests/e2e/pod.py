"""A pod, played by a process in its own mount and PID namespaces.

Like a container runtime, the pod gets a root of its own: a tmpfs with the host's
/usr and /etc read-only (the "image": Debian's python3, numpy and pandas), /dev, a
fresh /proc, a private /tmp, the step code read-only at /app, and its volumes
bind-mounted where the pod spec puts them (`/vineyard`). After pivot_root the host's
mount tree is detached, so nothing else of Cellar (its state dir, arenas, FUSE mount,
socket, other pods' targets) is reachable from inside.

Host side:   run_pod(name, volumes={"/vineyard": (target, read_only)}, argv=[...])
Inside:      python3 pod.py --inside SPEC_JSON  (run by unshare; sets up the root,
             then execs the command as the namespace's PID 1)
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = "/usr/bin/python3"  # Debian's, with numpy and pandas: the pods' "image"

MS_RDONLY, MS_NOSUID, MS_NODEV = 1, 2, 4
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2


@dataclass
class PodResult:
    name: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def json(self) -> dict:
        """The last line of stdout that parses as a JSON object (what a step reports)."""
        for line in reversed(self.stdout.strip().splitlines()):
            line = line.strip()
            if line.startswith("{"):
                return json.loads(line)
        raise ValueError(f"pod {self.name} printed no JSON:\n{self.stdout}\n{self.stderr}")


def run_pod(name: str, argv: list[str], volumes: dict[str, tuple[str, bool]],
            env: dict | None = None, timeout: float = 1800.0,
            workdir: str | None = None, netns: str | None = None) -> PodResult:
    """Runs argv in a new pod; `volumes` maps a path in the pod to (host path, read-only).
    A volume's read-only flag is the volumeMount's readOnly; a read-only publish is
    enforced by the driver's own mount whatever the pod asks. netns: the named network
    namespace (/run/netns/<netns>) of the node the pod runs on; default: the host's."""
    spec = {"volumes": {k: [str(v[0]), bool(v[1])] for k, v in volumes.items()},
            "argv": argv, "app": str(HERE), "root": "",
            "env": {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",
                    "PYTHONDONTWRITEBYTECODE": "1", "POD_NAME": name, **(env or {})}}
    # The stand-in for the pod's root: an empty directory, under the run's own root when
    # given so that a run killed outright leaves nothing elsewhere.
    root = tempfile.mkdtemp(prefix=f"cellar-pod-{name}-", dir=workdir)
    spec["root"] = root
    cmd = ["unshare", "--mount", "--pid", "--fork", "--propagation", "private",
           PYTHON, str(HERE / "pod.py"), "--inside", json.dumps(spec)]
    if netns is not None:
        cmd = ["nsenter", f"--net=/run/netns/{netns}", "--"] + cmd
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        # Timeout or Ctrl-C: the pod dies with its namespace's PID 1.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        raise
    finally:
        os.rmdir(root)
    return PodResult(name, proc.returncode, out, err, time.monotonic() - start)


# ---------------------------------------------------------------------------
# Inside the namespaces.

def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                           ctypes.c_char_p]
    return libc


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(libc, src, dst, fstype, flags, data=None):
    _check(libc.mount(src.encode() if src else None, dst.encode(),
                      fstype.encode() if fstype else None, flags,
                      data.encode() if data else None), f"mount {src} on {dst}")


def _bind(libc, src: str, dst: str, readonly: bool, recursive: bool = False) -> None:
    _mount(libc, src, dst, None, MS_BIND | (MS_REC if recursive else 0))
    if readonly:
        _mount(libc, None, dst, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def _pivot_root(libc, new_root: str, put_old: str) -> None:
    numbers = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
    nr = numbers.get(platform.machine())
    if nr is not None:
        _check(libc.syscall(nr, new_root.encode(), put_old.encode()), "pivot_root")
    else:
        subprocess.run(["pivot_root", new_root, put_old], check=True)


def inside(spec: dict) -> None:
    libc = _libc()
    # Nothing this pod mounts may leak back to the host, even if unshare's own
    # propagation change was skipped.
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    root = spec["root"]  # an empty host directory: a fresh tmpfs goes over it, in here only
    _mount(libc, "pod-root", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=755")
    for d in ("usr", "etc", "dev", "proc", "tmp", "app", ".oldroot"):
        os.mkdir(f"{root}/{d}")
    for link in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink(f"/{link}"):
            os.symlink(os.readlink(f"/{link}"), f"{root}/{link}")
    _bind(libc, "/usr", f"{root}/usr", readonly=True, recursive=True)
    _bind(libc, "/etc", f"{root}/etc", readonly=True)
    _bind(libc, "/dev", f"{root}/dev", readonly=False, recursive=True)
    # A pod's /dev/shm is its own, not the host's.
    _mount(libc, "shm", f"{root}/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=64m")
    _bind(libc, spec["app"], f"{root}/app", readonly=True)
    _mount(libc, "tmp", f"{root}/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=256m,mode=1777")
    for path, (host, ro) in spec["volumes"].items():
        dst = f"{root}{path}"
        os.makedirs(dst, exist_ok=True)
        _bind(libc, host, dst, readonly=ro)
    # A fresh /proc of this PID namespace: the pod sees its own processes only.
    _mount(libc, "proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV)
    os.chdir(root)
    _pivot_root(libc, ".", ".oldroot")
    os.chdir("/")
    _check(libc.umount2(b"/.oldroot", MNT_DETACH), "umount /.oldroot")
    os.rmdir("/.oldroot")
    # The root itself read-only, as an image is; /tmp and the volumes stay as mounted.
    _mount(libc, None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.execve(spec["argv"][0], spec["argv"], spec["env"])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--inside":
        inside(json.loads(sys.argv[2]))
    else:
        sys.exit("usage: pod.py --inside SPEC_JSON (run by run_pod)")
