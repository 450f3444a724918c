"""The benchmark's data, made the same way in every process from a seed, so a reader
never needs the writer's copy: a mixed-dtype DataFrame of about 80 columns, its
train/test split, and a float64 array."""

from __future__ import annotations

import numpy as np
import pandas as pd

SEED = 14
LABEL = "label"
TEST_FRACTION = 0.2
# 80 columns: what a feature table of a tabular pipeline holds. Bytes per row: 540.
FLOAT64_COLUMNS = 40
INT64_COLUMNS = 20
FLOAT32_COLUMNS = 8
INT32_COLUMNS = 4
BOOL_COLUMNS = 4
DATETIME_COLUMNS = 2
# Low-cardinality codes, int8. Not pandas Categoricals: vineyard 0.24.2's get() fails on
# a Categorical column ("Unable to construct the object", with pandas 2.3.3 and 3.1.1).
CODE_COLUMNS = 2
ROW_BYTES = (8 * (FLOAT64_COLUMNS + INT64_COLUMNS + DATETIME_COLUMNS)
             + 4 * (FLOAT32_COLUMNS + INT32_COLUMNS) + BOOL_COLUMNS + CODE_COLUMNS)


def frame(nbytes: int) -> pd.DataFrame:
    rows = max(1, nbytes // ROW_BYTES)
    rng = np.random.default_rng(SEED)
    columns = {}
    for i in range(FLOAT64_COLUMNS - 1):
        columns[f"f64_{i}"] = rng.random(rows)
    for i in range(INT64_COLUMNS):
        columns[f"i64_{i}"] = rng.integers(0, 1 << 40, rows, dtype=np.int64)
    for i in range(FLOAT32_COLUMNS):
        columns[f"f32_{i}"] = rng.random(rows, dtype=np.float32)
    for i in range(INT32_COLUMNS):
        columns[f"i32_{i}"] = rng.integers(0, 1 << 30, rows, dtype=np.int32)
    for i in range(BOOL_COLUMNS):
        columns[f"bool_{i}"] = rng.random(rows) < 0.5
    start = np.datetime64("2024-01-01T00:00:00", "ns")
    for i in range(DATETIME_COLUMNS):
        columns[f"ts_{i}"] = start + rng.integers(0, 10**15, rows).astype("timedelta64[ns]")
    for i in range(CODE_COLUMNS):
        columns[f"code_{i}"] = rng.integers(0, 4, rows, dtype=np.int8)
    columns[LABEL] = rng.random(rows)
    return pd.DataFrame(columns)


def split(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The four pieces the split step writes. Every piece is a DataFrame with a fresh
    index, so that every format can store it (Feather wants a default index)."""
    cut = int(len(df) * (1 - TEST_FRACTION))
    train, test = df.iloc[:cut], df.iloc[cut:]
    return {
        "x_train": train.drop(columns=[LABEL]).reset_index(drop=True),
        "y_train": train[[LABEL]].reset_index(drop=True),
        "x_test": test.drop(columns=[LABEL]).reset_index(drop=True),
        "y_test": test[[LABEL]].reset_index(drop=True),
    }


def array(nbytes: int) -> np.ndarray:
    return np.random.default_rng(SEED).random(max(1, nbytes // 8))


def nbytes(obj) -> int:
    if isinstance(obj, pd.DataFrame):
        return int(obj.memory_usage(index=True, deep=False).sum())
    return int(obj.nbytes)


def scan(obj) -> float:
    """One read per page of every column: what the first use of the data costs when the
    read only mapped it (the pages fault in here). Returns a checksum-ish float."""
    if isinstance(obj, pd.DataFrame):
        arrays = [c.array.codes if isinstance(c.dtype, pd.CategoricalDtype) else c.to_numpy()
                  for _, c in obj.items()]
    else:
        arrays = [obj]
    total = 0.0
    for a in arrays:
        a = np.asarray(a).reshape(-1)
        same_size_unsigned = a.view(f"u{a.itemsize}")   # datetimes and bools sum as ints
        total += float(same_size_unsigned[::max(1, 4096 // a.itemsize)].sum())
    return total
