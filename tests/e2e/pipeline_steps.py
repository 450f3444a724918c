"""The Kubeflow example's three steps (prepare data -> train -> test), sized for
measurement, passing their intermediate data as plain files in one directory
(`/vineyard` in a pod):

  prepare  draws a regression data set of about --size bytes and writes it with the
           tools pipelines use: DataFrame.to_pickle (train.pkl, test.pkl), np.save
           (x_train.npy, the largest array, and x_test.npy) and a raw write (raw.bin,
           e.g. images); records the sha256 of every file in manifest.json.
  train    reads them back: read_pickle, np.load(mmap_mode='r') of x_train (the
           zero-copy case: the load itself, then one touch of every page), raw read;
           verifies the checksums; fits a linear regression with numpy; writes model.npy.
  test     reads the model, test.pkl and np.load (plain) of x_test; verifies; evaluates;
           writes predictions.npy and metrics.json.
  verify   a reader: checks every file against the manifest; with --expect-readonly it
           also tries to write and reports the errno (EROFS on a read-only publish).

Each step prints one JSON line: its write and read seconds (each file from open to
close, fsync included when --fsync), per-file operations, and checksums. Hashing and
computation are timed apart from I/O. --fsync makes every written file (and the
directory) durable before it is closed, as a disk-backed store would.

Standalone on purpose (numpy and pandas only): it runs inside the pods.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import os
import sys
import time

import numpy as np
import pandas as pd

FEATURES = 16
BLOCK_ROWS = 1 << 16
TRUE_COEF = np.linspace(-2.0, 3.0, FEATURES)
TRUE_INTERCEPT = 4.0
MANIFEST = "manifest.json"


def byte_count(text: str) -> int:
    """--size: a plain number of bytes. The harnesses read sizes like "64Mi" by one rule
    (tests/lib/sizes.py) and pass the result here, so a step in a pod needs no copy of it."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(
            f"size {text!r} is not a number of bytes (the harness converts 64Mi and the like)")
    return int(text)


def sha256_file(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class Step:
    """Times I/O per file and keeps the report."""

    def __init__(self, name: str, data_dir: str, fsync: bool = False):
        self.name, self.dir, self.fsync = name, data_dir, fsync
        self.ops: list[dict] = []
        self.compute_s = 0.0
        self.hash_s = 0.0
        self.checksums: dict[str, str] = {}
        self.mismatches: list[str] = []
        self.extra: dict = {}

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def write(self, name: str, kind: str, writer) -> None:
        path = self.path(name)
        start = time.perf_counter()
        with open(path, "wb") as f:
            writer(f)
            if self.fsync:
                f.flush()
                os.fsync(f.fileno())
        seconds = time.perf_counter() - start
        self.ops.append({"op": "write", "kind": kind, "file": name,
                         "bytes": os.path.getsize(path), "s": seconds})

    def read(self, name: str, kind: str, reader):
        start = time.perf_counter()
        value = reader(self.path(name))
        seconds = time.perf_counter() - start
        self.ops.append({"op": "read", "kind": kind, "file": name,
                         "bytes": os.path.getsize(self.path(name)), "s": seconds})
        return value

    def timed_compute(self, fn):
        start = time.perf_counter()
        value = fn()
        self.compute_s += time.perf_counter() - start
        return value

    def fsync_dir(self) -> None:
        if self.fsync:
            fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def hash_files(self, names) -> dict:
        start = time.perf_counter()
        out = {n: sha256_file(self.path(n)) for n in names}
        self.hash_s += time.perf_counter() - start
        return out

    def verify(self, names, manifest: dict) -> None:
        got = self.hash_files(names)
        for n, digest in got.items():
            self.checksums[n] = digest
            if manifest["files"].get(n) != digest:
                self.mismatches.append(n)

    def report(self) -> dict:
        def total(op):
            return sum(o["s"] for o in self.ops if o["op"] == op)

        def nbytes(op):
            return sum(o["bytes"] for o in self.ops if o["op"] == op)
        return {"step": self.name, "write_s": total("write"), "read_s": total("read"),
                "io_s": total("write") + total("read"), "compute_s": self.compute_s,
                "hash_s": self.hash_s, "bytes_written": nbytes("write"),
                "bytes_read": nbytes("read"), "fsync": self.fsync, "ops": self.ops,
                "checksums": self.checksums, "mismatches": self.mismatches,
                "ok": not self.mismatches, **self.extra}


def _fill(rows: int, make_block) -> np.ndarray:
    """A large array made of varied copies of a small random block: drawing hundreds
    of millions of normals would time the generator, not the pipeline."""
    block = make_block(min(rows, BLOCK_ROWS))
    out = np.empty((rows,) + block.shape[1:], dtype=block.dtype)
    for i, start in enumerate(range(0, rows, BLOCK_ROWS)):
        stop = min(rows, start + BLOCK_ROWS)
        out[start:stop] = block[: stop - start]
        if block.dtype.kind == "f":
            out[start:stop] *= 1.0 + (i % 97) * 1e-3
    return out


def _raw_writer(buf):
    return lambda f: f.write(memoryview(buf))


def prepare(args) -> dict:
    st = Step("prepare", args.data_dir, args.fsync)
    size = args.size
    rng = np.random.default_rng(args.seed)
    n = max(1024, size // 2 // (8 * FEATURES))   # x_train: about half the data
    m = max(256, n // 5)

    def make():
        x = _fill(n + m, lambda b: rng.normal(size=(b, FEATURES)))
        noise = _fill(n + m, lambda b: rng.normal(scale=0.5, size=b))
        y = x @ TRUE_COEF + TRUE_INTERCEPT + noise
        extra = _fill(n + m, lambda b: rng.normal(size=(b, 4)))
        train = pd.DataFrame({"y": y[:n], "weight": extra[:n, 0], "age": extra[:n, 1],
                              "score": extra[:n, 2], "region": extra[:n, 3]})
        test = pd.DataFrame({"y": y[n:], "weight": extra[n:, 0], "age": extra[n:, 1],
                             "score": extra[n:, 2], "region": extra[n:, 3]})
        so_far = 8 * FEATURES * (n + m) + train.memory_usage().sum() + test.memory_usage().sum()
        raw = _fill(max(4096, size - int(so_far)),
                    lambda b: rng.integers(0, 256, size=b, dtype=np.uint8))
        return x[:n], x[n:], train, test, raw

    x_train, x_test, train, test, raw = st.timed_compute(make)
    st.write("train.pkl", "to_pickle", lambda f: train.to_pickle(f))
    st.write("test.pkl", "to_pickle", lambda f: test.to_pickle(f))
    st.write("x_train.npy", "np.save", lambda f: np.save(f, x_train))
    st.write("x_test.npy", "np.save", lambda f: np.save(f, x_test))
    st.write("raw.bin", "write", _raw_writer(raw))
    st.fsync_dir()
    names = ["train.pkl", "test.pkl", "x_train.npy", "x_test.npy", "raw.bin"]
    st.checksums = st.hash_files(names)
    manifest = {"size": size, "rows_train": n, "rows_test": m, "files": st.checksums}
    st.write(MANIFEST, "write", _raw_writer(json.dumps(manifest).encode()))
    st.fsync_dir()
    st.extra["rows"] = {"train": n, "test": m}
    return st.report()


def _read_raw(path: str) -> np.ndarray:
    size = os.path.getsize(path)
    buf = np.empty(size, dtype=np.uint8)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        got = 0
        while got < size:
            n = f.readinto(view[got:])
            if not n:
                raise EOFError(f"{path}: short read at {got} of {size}")
            got += n
    return buf


def _load_manifest(st: Step) -> dict:
    with open(st.path(MANIFEST)) as f:
        return json.load(f)


def train(args) -> dict:
    st = Step("train", args.data_dir, args.fsync)
    manifest = _load_manifest(st)
    frame = st.read("train.pkl", "read_pickle", pd.read_pickle)
    x = st.read("x_train.npy", "np.load(mmap_mode='r')", lambda p: np.load(p, mmap_mode="r"))
    mmap_load_s = st.ops[-1]["s"]

    # The mapping is lazy: touching one byte per page is what reading through it costs.
    def touch(_):
        flat = x.reshape(-1).view(np.uint8)
        return int(flat[::4096].sum())
    st.read("x_train.npy", "mmap page touch", touch)
    st.ops[-1]["bytes"] = 0  # the same bytes as the load above: count them once
    raw = st.read("raw.bin", "read", _read_raw)

    start = time.perf_counter()
    raw_digest = hashlib.sha256(memoryview(raw)).hexdigest()
    st.hash_s += time.perf_counter() - start
    st.checksums["raw.bin (bytes read)"] = raw_digest
    if raw_digest != manifest["files"]["raw.bin"]:
        st.mismatches.append("raw.bin (bytes read)")
    st.verify(["train.pkl", "x_train.npy", "raw.bin"], manifest)

    def fit():
        y = frame["y"].to_numpy()
        xtx = np.zeros((FEATURES + 1, FEATURES + 1))
        xty = np.zeros(FEATURES + 1)
        for start in range(0, len(x), 1 << 20):
            xc = np.asarray(x[start:start + (1 << 20)])
            design = np.column_stack([np.ones(len(xc)), xc])
            xtx += design.T @ design
            xty += design.T @ y[start:start + len(xc)]
        return np.linalg.solve(xtx, xty)
    params = st.timed_compute(fit)
    st.write("model.npy", "np.save", lambda f: np.save(f, params))
    st.fsync_dir()
    st.checksums["model.npy"] = st.hash_files(["model.npy"])["model.npy"]
    st.extra["mmap_load_s"] = mmap_load_s
    st.extra["largest_array_bytes"] = int(x.nbytes)
    st.extra["coef_error"] = float(np.max(np.abs(params[1:] - TRUE_COEF)))
    return st.report()


def test(args) -> dict:
    st = Step("test", args.data_dir, args.fsync)
    manifest = _load_manifest(st)
    params = st.read("model.npy", "np.load", np.load)
    frame = st.read("test.pkl", "read_pickle", pd.read_pickle)
    x = st.read("x_test.npy", "np.load", np.load)
    st.verify(["test.pkl", "x_test.npy"], manifest)
    if args.model_sha and st.hash_files(["model.npy"])["model.npy"] != args.model_sha:
        st.mismatches.append("model.npy")

    def evaluate():
        predicted = params[0] + x @ params[1:]
        actual = frame["y"].to_numpy()
        mse = float(np.mean((actual - predicted) ** 2))
        return predicted, {"rows": int(len(frame)), "mse": mse,
                           "r2": 1.0 - mse / float(np.var(actual))}
    predicted, metrics = st.timed_compute(evaluate)
    st.write("predictions.npy", "np.save", lambda f: np.save(f, predicted))
    st.write("metrics.json", "write", _raw_writer(json.dumps(metrics).encode()))
    st.fsync_dir()
    st.extra["metrics"] = metrics
    return st.report()


def verify(args) -> dict:
    st = Step("verify", args.data_dir)
    manifest = _load_manifest(st)
    for name in manifest["files"]:
        st.read(name, "read", _read_raw)
    st.verify(list(manifest["files"]), manifest)
    st.extra["listing"] = sorted(os.listdir(args.data_dir))
    if args.expect_readonly:
        try:
            with open(st.path("should-not-exist"), "wb") as f:
                f.write(b"x")
            st.extra["write_errno"] = 0
            st.mismatches.append("a write succeeded on a read-only volume")
        except OSError as e:
            st.extra["write_errno"] = errno.errorcode.get(e.errno, str(e.errno))
            if e.errno != errno.EROFS:
                st.mismatches.append(f"a write failed with {st.extra['write_errno']}, not EROFS")
    return st.report()


def probe_write(args) -> dict:
    """One array of --size bytes, np.save'd (the benchmark's mmap probe)."""
    st = Step("probe-write", args.data_dir, args.fsync)
    rows = max(1, args.size // (8 * FEATURES))
    x = st.timed_compute(lambda: _fill(rows, lambda b: np.random.default_rng(1).normal(
        size=(b, FEATURES))))
    st.write("big.npy", "np.save", lambda f: np.save(f, x))
    st.fsync_dir()
    return st.report()


def probe_mmap(args) -> dict:
    """np.load(mmap_mode='r') of that array in a fresh process, then one touch per page."""
    st = Step("probe-mmap", args.data_dir)
    x = st.read("big.npy", "np.load(mmap_mode='r')", lambda p: np.load(p, mmap_mode="r"))
    st.extra["mmap_load_s"] = st.ops[-1]["s"]
    st.read("big.npy", "mmap page touch",
            lambda _: int(x.reshape(-1).view(np.uint8)[::4096].sum()))
    st.extra["touch_s"] = st.ops[-1]["s"]
    st.extra["array_bytes"] = int(x.nbytes)
    return st.report()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("step", choices=["prepare", "train", "test", "verify", "probe-write",
                                    "probe-mmap"])
    p.add_argument("--data-dir", default=os.environ.get("DATA_DIR", "/vineyard"))
    p.add_argument("--size", type=byte_count, default=64 << 20,
                   help="bytes of intermediate data prepare writes")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--fsync", action="store_true", help="fsync every file written")
    p.add_argument("--model-sha", default="", help="test: the model's sha256 from train")
    p.add_argument("--expect-readonly", action="store_true")
    args = p.parse_args(argv)
    report = {"prepare": prepare, "train": train, "test": test, "verify": verify,
              "probe-write": probe_write, "probe-mmap": probe_mmap}[args.step](args)
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
