#!/usr/bin/python3
"""A pod's load while the node plugin is killed, restarted and taken over
(restart_test.py). Runs inside a pod: its files under /vineyard/<pod>, its control
files (stop flag, progress, result) under a second, host-disk volume /control.

  restart_worker.py --name NAME [--budget BYTES] [--linger] [--volume /vineyard] [--control /control]

Loop, until /control/stop exists: create a file (4 KiB..8 MiB, write() in chunks,
fsync sometimes, or ftruncate + a MAP_SHARED mapping written through), read it back
with read() and compare sha256, rename it, verify another file through a read-only
mapping or with read(), unlink the oldest while over the budget. The ledger holds
name -> sha256 of every file closed. Every syscall-level step is timed; any OSError
is counted with its op and errno, every checksum mismatch as corruption. Then a
final verification of the whole ledger against the directory, and one JSON result
on stdout and in /control/<name>.result.json (ledger in /control/<name>.ledger.json).
With --linger it then waits for /control/<name>.exit, keeping its mount busy.
"""

from __future__ import annotations

import argparse
import errno
import faulthandler
import hashlib
import json
import mmap
import os
import random
import sys
import time

KIB, MIB = 1 << 10, 1 << 20
SLOW = 0.2  # an op slower than this is listed with its time, to match against restarts


class Worker:
    def __init__(self, name: str, volume: str, control: str, budget: int, seed: int):
        self.name = name
        self.dir = f"{volume}/{name}"
        self.control = control
        self.budget = budget
        self.rng = random.Random(seed)
        self.pool = os.urandom(16 * MIB)
        self.ledger: dict[str, tuple[str, int]] = {}  # name -> (sha256, size), oldest first
        self.seq = 0
        self.ops = 0
        self.io_errors = 0
        self.errors: list[dict] = []  # the first 50
        self.error_counts: dict[str, int] = {}  # "op ERRNO" -> count
        self.last_error = ""
        self.corrupted = 0
        self.corruptions: list[dict] = []
        self.max_latency = 0.0
        self.max_op = ""
        self.slow: list[dict] = []
        self.ops_by_tenth: dict[int, int] = {}  # int(10 * CLOCK_MONOTONIC) -> ops ended then
        self.counts: dict[str, int] = {}
        self.last_progress = 0.0

    # -- bookkeeping --------------------------------------------------------------

    def timed(self, op: str, fn, *args):
        """Runs one syscall-level step; its latency counts whether it fails or not, the
        operation only when it succeeds."""
        start = time.monotonic()
        ok = False
        try:
            value = fn(*args)
            ok = True
            return value
        finally:
            end = time.monotonic()
            dt = end - start
            if ok:
                self.ops += 1
                self.counts[op] = self.counts.get(op, 0) + 1
                tenth = int(end * 10)
                self.ops_by_tenth[tenth] = self.ops_by_tenth.get(tenth, 0) + 1
            if dt > self.max_latency:
                self.max_latency, self.max_op = dt, op
            if dt > SLOW and len(self.slow) < 100:
                self.slow.append({"op": op, "seconds": round(dt, 3), "ended": time.time()})

    def io_error(self, op: str, path: str, e: OSError) -> None:
        self.io_errors += 1
        code = errno.errorcode.get(e.errno, str(e.errno))
        key = f"{op} {code}"
        self.error_counts[key] = self.error_counts.get(key, 0) + 1
        self.last_error = f"{op} {path}: {code}"
        if len(self.errors) < 50:
            self.errors.append({"op": op, "path": path, "errno": code, "message": str(e),
                                "time": time.time()})
        print(f"{self.name}: {op} {path}: {e}", file=sys.stderr, flush=True)

    def corrupt(self, how: str, name: str, want: str, got: str) -> None:
        self.corrupted += 1
        if len(self.corruptions) < 50:
            self.corruptions.append({"how": how, "file": name, "want": want, "got": got,
                                     "time": time.time()})
        print(f"{self.name}: CORRUPT {how} {name}: {got} != {want}", file=sys.stderr, flush=True)

    def progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_progress < 0.25:
            return
        self.last_progress = now
        tmp = f"{self.control}/{self.name}.progress.tmp"
        with open(tmp, "w") as f:
            json.dump({"ops": self.ops, "io_errors": self.io_errors, "last_error": self.last_error,
                       "corrupted": self.corrupted, "files": len(self.ledger),
                       "time": time.time()}, f)
        os.replace(tmp, f"{self.control}/{self.name}.progress")

    # -- the steps ------------------------------------------------------------------

    def path(self, name: str) -> str:
        return f"{self.dir}/{name}"

    def content(self) -> bytes:
        size = int(2 ** self.rng.uniform(12, 23))  # 4 KiB .. 8 MiB, log-uniform
        off = self.rng.randrange(0, len(self.pool) - size + 1)
        head = f"{self.name}:{self.seq}:{self.rng.getrandbits(64)}:".encode()
        return (head + self.pool[off + len(head):off + size])[:size]

    def write_file(self, name: str, data: bytes) -> None:
        path = self.path(name)
        fd = self.timed("open-create", os.open, path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view, pos = memoryview(data), 0
            while pos < len(data):
                chunk = self.rng.choice((64 * KIB, 256 * KIB, MIB))
                pos += self.timed("write", os.write, fd, view[pos:pos + chunk])
            if self.rng.random() < 0.25:
                self.timed("fsync", os.fsync, fd)
        finally:
            self.timed("close", os.close, fd)

    def mmap_write_file(self, name: str, data: bytes) -> None:
        path = self.path(name)
        fd = self.timed("open-rdwr", os.open, path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            self.timed("ftruncate", os.ftruncate, fd, len(data))
            m = self.timed("mmap-shared", mmap.mmap, fd, len(data), mmap.MAP_SHARED,
                           mmap.PROT_READ | mmap.PROT_WRITE)
            try:
                def fill():
                    m[:] = data
                self.timed("mmap-store", fill)
                if self.rng.random() < 0.5:
                    self.timed("msync", m.flush)
            finally:
                self.timed("munmap", m.close)
        finally:
            self.timed("close", os.close, fd)

    def read_sha(self, name: str) -> str:
        fd = self.timed("open-read", os.open, self.path(name), os.O_RDONLY)
        try:
            h = hashlib.sha256()
            while True:
                b = self.timed("read", os.read, fd, MIB)
                if not b:
                    return h.hexdigest()
                h.update(b)
        finally:
            self.timed("close", os.close, fd)

    def mmap_sha(self, name: str) -> str:
        fd = self.timed("open-read", os.open, self.path(name), os.O_RDONLY)
        try:
            size = self.timed("fstat", os.fstat, fd).st_size
            if size == 0:
                # Every file written here has >= 4 KiB, so an empty one is corruption:
                # let verify report it (mmap(2) would refuse it and kill the worker).
                return hashlib.sha256(b"").hexdigest()
            m = self.timed("mmap-read", mmap.mmap, fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
            try:
                return self.timed("mmap-load", lambda: hashlib.sha256(m).hexdigest())
            finally:
                self.timed("munmap", m.close)
        finally:
            self.timed("close", os.close, fd)

    def verify(self, how: str, name: str) -> bool:
        want = self.ledger[name][0]
        got = self.mmap_sha(name) if how == "mmap" else self.read_sha(name)
        if got != want:
            self.corrupt(how, name, want, got)
            return False
        return True

    def step(self) -> None:
        self.seq += 1
        data = self.content()
        sha = hashlib.sha256(data).hexdigest()
        new = f"new-{self.seq}"
        op = "create"
        try:
            if self.rng.random() < 0.3:
                op = "mmap-write"
                self.mmap_write_file(new, data)
            else:
                self.write_file(new, data)
            self.ledger[new] = (sha, len(data))
            op = "read-back"
            self.verify("read", new)
            op = "rename"
            final = f"f-{self.seq}"
            self.timed("rename", os.rename, self.path(new), self.path(final))
            del self.ledger[new]
            self.ledger[final] = (sha, len(data))
            if len(self.ledger) > 1:
                old = self.rng.choice(list(self.ledger)[:-1])
                op = "reverify"
                self.verify(self.rng.choice(("read", "mmap")), old)
            while sum(s for _, s in self.ledger.values()) > self.budget and len(self.ledger) > 1:
                oldest = next(iter(self.ledger))
                op = "unlink"
                self.timed("unlink", os.unlink, self.path(oldest))
                del self.ledger[oldest]
        except OSError as e:
            self.io_error(op, e.filename or new, e)

    def final_verification(self) -> dict:
        problems = []
        try:
            names = set(self.timed("listdir", os.listdir, self.dir))
        except OSError as e:
            self.io_error("final-listdir", self.dir, e)
            return {"ok": False, "files": len(self.ledger), "problems": [str(e)]}
        missing = sorted(set(self.ledger) - names)
        extra = sorted(names - set(self.ledger))
        if missing:
            problems.append(f"missing {missing[:10]}")
        if extra:
            problems.append(f"unexpected {extra[:10]}")
        bad = 0
        for name in self.ledger:
            if name in missing:
                continue
            try:
                if not self.verify("final", name):
                    bad += 1
            except OSError as e:
                self.io_error("final-read", name, e)
                bad += 1
        if bad:
            problems.append(f"{bad} files fail verification")
        return {"ok": not problems, "files": len(self.ledger),
                "bytes": sum(s for _, s in self.ledger.values()), "problems": problems}

    def run(self, linger: bool) -> dict:
        os.makedirs(self.dir, exist_ok=True)
        started = time.monotonic()
        stop = f"{self.control}/stop"
        while not os.path.exists(stop):
            self.step()
            self.progress()
        final = self.final_verification()
        result = {"name": self.name, "ops": self.ops, "iterations": self.seq,
                  "io_errors": self.io_errors, "errors": self.errors,
                  "error_counts": self.error_counts,
                  "corrupted": self.corrupted, "corruptions": self.corruptions,
                  "max_latency": round(self.max_latency, 4), "max_op": self.max_op,
                  "slow": self.slow, "counts": self.counts,
                  "ops_by_tenth": self.ops_by_tenth, "final": final,
                  "seconds": round(time.monotonic() - started, 2)}
        with open(f"{self.control}/{self.name}.ledger.json", "w") as f:
            json.dump({k: v[0] for k, v in self.ledger.items()}, f)
        with open(f"{self.control}/{self.name}.result.json", "w") as f:
            json.dump(result, f)
        self.progress(force=True)
        print(json.dumps(result), flush=True)
        if linger:
            os.chdir(self.dir)  # hold the mount busy, as a pod's working directory would
            while not os.path.exists(f"{self.control}/{self.name}.exit"):
                time.sleep(0.1)
        return result


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--volume", default="/vineyard")
    p.add_argument("--control", default="/control")
    p.add_argument("--budget", type=int, default=96 * MIB, help="live bytes to keep at most")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--linger", action="store_true")
    args = p.parse_args()
    faulthandler.enable()  # a SIGBUS from a mapping: say where
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(8), "little")
    Worker(args.name, args.volume, args.control, args.budget, seed).run(args.linger)
    return 0


if __name__ == "__main__":
    sys.exit(main())
