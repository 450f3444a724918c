"""The step code every Cellar example runs: prepare data -> train -> test.

A linear regression on synthetic data, written the way a pipeline author
writes it without Cellar: pandas and numpy, files in a directory. Every
example (Kubeflow Pipelines v1 and v2, Argo, Kedro, plain pods) runs these
functions; the only thing Cellar changes is the directory, which is the
volume mounted at /vineyard. Run each step as its own process, as a pipeline
does with pods:

    python3 steps.py prepare --data-dir /vineyard
    python3 steps.py train   --data-dir /vineyard
    python3 steps.py test    --data-dir /vineyard

--data-dir defaults to $DATA_DIR, else /vineyard. Without Cellar, point it at
any other directory (an emptyDir, a hostPath, NFS): the code is the same.

The pure functions (make_dataset, fit, evaluate) take and return data; the
file-based wrappers (prepare, train, test) read and write it under the data
directory. Kedro calls the pure functions and lets its catalog do the I/O.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_DATA_DIR = "/vineyard"

FEATURES = ["x0", "x1", "x2", "x3"]
TARGET = "y"
# The model the synthetic data is drawn from: y = X @ TRUE_COEF + TRUE_INTERCEPT + noise.
TRUE_COEF = np.array([1.5, -2.0, 0.5, 3.0])
TRUE_INTERCEPT = 4.0

# File names under the data directory; one place, so readers and writers agree.
TRAIN_FILE = "train.pkl"
TEST_FILE = "test.pkl"
MODEL_FILE = "model.npy"
METRICS_FILE = "metrics.json"


# --------------------------------------------------------------------------
# Pure functions: data in, data out.


def make_dataset(rows: int = 100_000, seed: int = 42,
                 test_fraction: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw `rows` samples of the linear model with Gaussian noise and split
    them into a train and a test frame (deterministic for a given seed)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(FEATURES)))
    noise = rng.normal(scale=0.5, size=rows)
    frame = pd.DataFrame(x, columns=FEATURES)
    frame[TARGET] = x @ TRUE_COEF + TRUE_INTERCEPT + noise
    split = int(rows * (1.0 - test_fraction))
    return frame.iloc[:split].reset_index(drop=True), frame.iloc[split:].reset_index(drop=True)


def fit(train: pd.DataFrame) -> np.ndarray:
    """Least-squares fit; returns [intercept, coef...]."""
    design = np.column_stack([np.ones(len(train)), train[FEATURES].to_numpy()])
    params, *_ = np.linalg.lstsq(design, train[TARGET].to_numpy(), rcond=None)
    return params


def evaluate(test: pd.DataFrame, params: np.ndarray) -> dict:
    """Mean squared error and R^2 of the model on the test frame."""
    predicted = params[0] + test[FEATURES].to_numpy() @ params[1:]
    actual = test[TARGET].to_numpy()
    mse = float(np.mean((actual - predicted) ** 2))
    r2 = 1.0 - mse / float(np.var(actual))
    return {"rows": int(len(test)), "mse": round(mse, 6), "r2": round(r2, 6),
            "intercept": round(float(params[0]), 6),
            "coef": [round(float(c), 6) for c in params[1:]]}


# --------------------------------------------------------------------------
# File-based steps: what a pipeline step (a pod) runs.


def prepare(data_dir: Path, rows: int = 100_000, seed: int = 42) -> None:
    train_frame, test_frame = make_dataset(rows, seed)
    data_dir.mkdir(parents=True, exist_ok=True)
    train_frame.to_pickle(data_dir / TRAIN_FILE)
    test_frame.to_pickle(data_dir / TEST_FILE)
    print(f"prepare: wrote {len(train_frame)} train and {len(test_frame)} test rows to {data_dir}")


def train(data_dir: Path) -> None:
    train_frame = pd.read_pickle(data_dir / TRAIN_FILE)
    params = fit(train_frame)
    np.save(data_dir / MODEL_FILE, params)
    print(f"train: fitted {len(params)} parameters on {len(train_frame)} rows")


def test(data_dir: Path) -> dict:
    test_frame = pd.read_pickle(data_dir / TEST_FILE)
    # mmap_mode: on a Cellar volume the mapping is the node's shared memory.
    params = np.load(data_dir / MODEL_FILE, mmap_mode="r")
    metrics = evaluate(test_frame, np.asarray(params))
    (data_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    print(f"test: mse={metrics['mse']} r2={metrics['r2']}")
    return metrics


def checksums(data_dir: Path, names: list[str]) -> dict:
    """sha256 of each file: a step's last log line, so whoever runs the pipeline can
    check that every step read exactly what the previous one wrote."""
    return {n: hashlib.sha256((data_dir / n).read_bytes()).hexdigest() for n in names}


# What each step reads and writes, for its checksum line.
STEP_FILES = {"prepare": ([], [TRAIN_FILE, TEST_FILE]),
              "train": ([TRAIN_FILE], [MODEL_FILE]),
              "test": ([TEST_FILE, MODEL_FILE], [METRICS_FILE])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["prepare", "train", "test"])
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("DATA_DIR", DEFAULT_DATA_DIR)),
                        help="directory shared by the steps (default: $DATA_DIR or /vineyard)")
    parser.add_argument("--rows", type=int, default=100_000, help="prepare: number of samples")
    parser.add_argument("--seed", type=int, default=42, help="prepare: random seed")
    parser.add_argument("--min-r2", type=float, default=0.9,
                        help="test: fail (exit 1) below this R^2")
    args = parser.parse_args(argv)
    if args.step == "prepare":
        prepare(args.data_dir, args.rows, args.seed)
    elif args.step == "train":
        train(args.data_dir)
    else:
        metrics = test(args.data_dir)
        if metrics["r2"] < args.min_r2:
            print(f"test: r2 {metrics['r2']} is below {args.min_r2}", file=sys.stderr)
            return 1
    read, wrote = STEP_FILES[args.step]
    print(json.dumps({"step": args.step, "read": checksums(args.data_dir, read),
                      "wrote": checksums(args.data_dir, wrote)}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
