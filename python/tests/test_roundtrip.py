"""Round trips through cellar.dump/load: every kind of object comes back equal, and
arrays come back read-only unless loaded writable."""

import collections
import datetime
import decimal
import fractions
import io
import os
import unittest

import support
from support import cellar

import numpy as np
import pandas as pd


class Point:
    """A plain user class: pickled by reference to this module, no buffers."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


Pair = collections.namedtuple("Pair", "left right")


class NumpyRoundTrip(support.TempDirTest):
    def assert_same_array(self, original, loaded):
        self.assertIsInstance(loaded, np.ndarray)
        self.assertEqual(loaded.dtype, original.dtype)
        self.assertEqual(loaded.shape, original.shape)
        np.testing.assert_array_equal(loaded, original)

    def test_dtypes(self):
        rng = np.random.default_rng(1)
        arrays = {
            "bool": rng.random(100) > 0.5,
            "int8": np.arange(-50, 50, dtype=np.int8),
            "uint16": np.arange(1000, dtype=np.uint16),
            "int32": rng.integers(-2**31, 2**31 - 1, 1000, dtype=np.int32),
            "int64": np.arange(10**6, dtype=np.int64),
            "uint64": np.array([0, 2**64 - 1], dtype=np.uint64),
            "float16": rng.random(100).astype(np.float16),
            "float32": rng.random((30, 40)).astype(np.float32),
            "float64 with nan and inf": np.array([1.5, np.nan, np.inf, -np.inf, -0.0]),
            "complex128": rng.random(50) + 1j * rng.random(50),
            "big-endian int32": np.arange(100, dtype=">i4"),
            "datetime64[ns]": np.arange("2024-01-01", "2024-03-01", dtype="datetime64[D]")
                                .astype("datetime64[ns]"),
            "timedelta64[s]": np.arange(100).astype("timedelta64[s]"),
            "unicode": np.array(["cellar", "vineyard", "ü"]),
            "bytes": np.array([b"a", b"bcd"]),
            "structured": np.array([(1, 2.0, b"x"), (3, 4.0, b"y")],
                                   dtype=[("a", "<i4"), ("b", "<f8"), ("c", "S1")]),
            "object": np.array([1, "two", None, [3]], dtype=object),
        }
        for name, array in arrays.items():
            with self.subTest(dtype=name):
                self.assert_same_array(array, self.round_trip(array))

    def test_layouts(self):
        base = np.arange(120, dtype=np.float64).reshape(4, 5, 6)
        arrays = {
            "0-d": np.array(3.25),
            "0-d int": np.array(7, dtype=np.int16),
            "empty 1-d": np.zeros(0),
            "empty 2-d": np.zeros((0, 5), dtype=np.int32),
            "empty 3-d": np.zeros((3, 0, 2)),
            "fortran order": np.asfortranarray(base),
            "strided slice": base[:, ::2, 1::3],
            "reversed": base[::-1],
            "transposed": base.transpose(2, 0, 1),
            "broadcast view": np.broadcast_to(np.arange(5), (1000, 5)),
            "one element": np.array([42]),
            "odd length": np.arange(4097, dtype=np.uint8),
        }
        for name, array in arrays.items():
            with self.subTest(layout=name):
                self.assert_same_array(array, self.round_trip(array))

    def test_large_strided_layouts(self):
        """Non-contiguous arrays are written from their own memory: in runs (rows of at
        least 64 KiB) or through a small scratch copy (a strided last axis); both with
        buffer checksums, which are computed over the same pieces."""
        base = np.arange(6 * 40_000, dtype=np.float64).reshape(6, 40_000)
        arrays = {
            "row slice of a block": base[:, 1_000:39_000],
            "every other row": base[::2, :30_000],
            "3-d, runs in the last two axes": np.arange(4 * 8 * 9_000.0).reshape(4, 8, 9_000)[1:, :, :8_500],
            "a column of a C-order table": base[:, 3],
            "strided last axis": base[:, ::3],
            "datetimes, row slice": base.astype("int64").astype("datetime64[ns]")[:, 5:],
        }
        for name, array in arrays.items():
            with self.subTest(layout=name):
                self.assertFalse(array.flags.c_contiguous or array.flags.f_contiguous)
                path = self.path()
                cellar.dump(array, path, buffer_checksums=True)
                self.assert_same_array(array, cellar.load(path, verify=True))

    def test_writable_load_of_non_contiguous_arrays(self):
        """A non-contiguous array dumped writable loads writable with writable=True, and
        read-only by default, like a contiguous one."""
        arrays = {"rows": np.arange(3 * 40_000.0).reshape(3, 40_000)[:, 5:],
                  "every other": np.arange(100.0)[::2],
                  "datetimes": np.arange(100).astype("datetime64[s]")[::2]}
        for name, array in arrays.items():
            with self.subTest(layout=name):
                self.assertFalse(self.round_trip(array).flags.writeable)
                self.assertTrue(self.round_trip(array, writable=True).flags.writeable)

    def test_fortran_order_is_kept(self):
        array = np.asfortranarray(np.arange(12.0).reshape(3, 4))
        loaded = self.round_trip(array)
        self.assertTrue(loaded.flags.f_contiguous)

    def test_read_only_by_default(self):
        loaded = self.round_trip(np.arange(10))
        self.assertFalse(loaded.flags.writeable)
        with self.assertRaises(ValueError):
            loaded[0] = 1

    def test_writable_is_copy_on_write(self):
        path = self.path()
        cellar.dump(np.arange(10_000), path, buffer_checksums=True)
        loaded = cellar.load(path, writable=True)
        self.assertTrue(loaded.flags.writeable)
        loaded[:] = -1
        again = cellar.load(path)
        np.testing.assert_array_equal(again, np.arange(10_000))
        cellar.load(path, verify=True)  # the file's bytes did not change

    def test_many_small_arrays_stay_small(self):
        arrays = [np.arange(4) for _ in range(1000)]
        path = self.path()
        cellar.dump(arrays, path)
        # Packed at cache-line alignment, not one page each.
        self.assertLess(os.path.getsize(path), 1000 * 200)
        for loaded in cellar.load(path):
            np.testing.assert_array_equal(loaded, np.arange(4))


class PandasRoundTrip(support.TempDirTest):
    def mixed_frame(self, rows=1000):
        rng = np.random.default_rng(2)
        return pd.DataFrame({
            "int": np.arange(rows, dtype=np.int64),
            "float": rng.random(rows),
            "float32": rng.random(rows).astype(np.float32),
            "bool": rng.random(rows) > 0.3,
            "text": [f"row {i}" for i in range(rows)],
            "mixed objects": [None if i % 7 == 0 else (i, str(i)) for i in range(rows)],
            "category": pd.Categorical(rng.choice(["red", "green", "blue"], rows)),
            "ordered category": pd.Categorical(rng.choice([1, 2, 3], rows), ordered=True),
            "datetime": pd.date_range("2024-01-01", periods=rows, freq="min"),
            "datetime tz": pd.date_range("2024-01-01", periods=rows, freq="h", tz="Europe/Paris"),
            "timedelta": pd.to_timedelta(np.arange(rows), unit="s"),
            "nullable int": pd.array([None if i % 5 == 0 else i for i in range(rows)],
                                     dtype="Int64"),
            "string dtype": pd.array([f"s{i}" for i in range(rows)], dtype="string"),
            "period": pd.period_range("2024-01", periods=rows, freq="D"),
        })

    def test_mixed_frame(self):
        frame = self.mixed_frame()
        pd.testing.assert_frame_equal(self.round_trip(frame), frame)

    def test_frame_with_index_and_nan(self):
        frame = self.mixed_frame(200).set_index(["category", "int"])
        frame.loc[frame.index[3], "float"] = np.nan
        pd.testing.assert_frame_equal(self.round_trip(frame), frame)

    def test_empty_frame(self):
        for frame in (pd.DataFrame(), pd.DataFrame({"a": pd.Series([], dtype=np.float64)})):
            with self.subTest(columns=list(frame.columns)):
                pd.testing.assert_frame_equal(self.round_trip(frame), frame)

    def test_series(self):
        series = {
            "float": pd.Series(np.linspace(0, 1, 500), name="x"),
            "object": pd.Series(["a", None, "c"]),
            "categorical": pd.Series(pd.Categorical(["a", "b", "a"])),
            "datetime": pd.Series(pd.date_range("2020-01-01", periods=50, freq="D")),
            "string index": pd.Series([1, 2, 3], index=["a", "b", "c"]),
        }
        for name, value in series.items():
            with self.subTest(series=name):
                pd.testing.assert_series_equal(self.round_trip(value), value)

    def test_loaded_frame_supports_usual_operations(self):
        frame = self.mixed_frame()
        loaded = self.round_trip(frame)
        self.assertAlmostEqual(loaded["float"].sum(), frame["float"].sum())
        pd.testing.assert_frame_equal(loaded.sort_values("float"), frame.sort_values("float"))
        pd.testing.assert_series_equal(loaded.groupby("category")["int"].sum(),
                                       frame.groupby("category")["int"].sum())
        loaded["new"] = loaded["int"] * 2  # a new column is fine on a read-only load
        self.assertEqual(loaded["new"].iloc[-1], 2 * (len(frame) - 1))

    def test_writable_frame_can_change_in_place(self):
        path = self.path()
        frame = pd.DataFrame({"a": np.arange(100.0), "b": np.arange(100.0)})
        cellar.dump(frame, path)
        loaded = cellar.load(path, writable=True)
        loaded.iloc[0, 0] = -1.0
        # Not `loaded["b"].values[:] = ...`: pandas 3's copy-on-write hands out read-only views.
        loaded.loc[:, "b"] = 0.0
        self.assertEqual(loaded["b"].sum(), 0.0)
        pd.testing.assert_frame_equal(cellar.load(path), frame)


class PlainObjectRoundTrip(support.TempDirTest):
    def test_plain_objects(self):
        objects = {
            "none": None,
            "int": 12345678901234567890,
            "float": 1.5,
            "str": "données",
            "bytes": b"\x00\x01" * 1000,
            "bytearray": bytearray(b"mutable"),
            "decimal": decimal.Decimal("1.10"),
            "fraction": fractions.Fraction(1, 3),
            "datetime": datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.timezone.utc),
            "user class": Point(1, 2),
            "namedtuple": Pair(1, "two"),
            "set": {1, 2, 3},
            "frozenset": frozenset("abc"),
        }
        for name, value in objects.items():
            with self.subTest(object=name):
                loaded = self.round_trip(value)
                self.assertEqual(loaded, value)
                self.assertIs(type(loaded), type(value))

    def test_nested_containers(self):
        frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
        value = {
            "arrays": [np.arange(5), np.ones((2, 2))],
            "frame": frame,
            "tuple": (Point(0, 0), {"deep": [np.float32(1.5), None]}),
            "shared": None,
        }
        shared = np.arange(3)
        value["shared"] = [shared, shared]
        loaded = self.round_trip(value)
        np.testing.assert_array_equal(loaded["arrays"][0], np.arange(5))
        np.testing.assert_array_equal(loaded["arrays"][1], np.ones((2, 2)))
        pd.testing.assert_frame_equal(loaded["frame"], frame)
        self.assertEqual(loaded["tuple"][0], Point(0, 0))
        self.assertEqual(loaded["tuple"][1], {"deep": [np.float32(1.5), None]})
        # pickle's memo keeps identity: one object stored once, loaded once.
        self.assertIs(loaded["shared"][0], loaded["shared"][1])

    def test_path_like(self):
        import pathlib
        path = pathlib.Path(self.path("via-pathlib.cellar"))
        cellar.dump([1, 2, 3], path)
        self.assertEqual(cellar.load(path), [1, 2, 3])



class FileObjects(support.TempDirTest):
    """dump and load also take binary file objects, as Kedro's
    PickleDataset(backend="cellar") passes them: the same bytes, the same zero copy."""

    value = {"frame": pd.DataFrame({"x": np.arange(100_000.0),
                                    "when": pd.date_range("2024-01-01", periods=100_000,
                                                          freq="s")}),
             "rows": np.arange(3 * 50_000.0).reshape(3, 50_000)[:, 7:],
             "plain": [1, "two", None]}

    def assert_same(self, loaded):
        pd.testing.assert_frame_equal(loaded["frame"], self.value["frame"])
        np.testing.assert_array_equal(loaded["rows"], self.value["rows"])
        self.assertEqual(loaded["plain"], self.value["plain"])

    def test_file_object_writes_the_same_bytes_as_a_path(self):
        for checksums in (False, True):
            with self.subTest(buffer_checksums=checksums):
                cellar.dump(self.value, self.path("by-path"), buffer_checksums=checksums)
                with open(self.path("by-file"), "wb") as f:
                    cellar.dump(self.value, f, buffer_checksums=checksums)
                with open(self.path("by-path"), "rb") as a, open(self.path("by-file"), "rb") as b:
                    self.assertEqual(a.read(), b.read())

    def test_load_from_a_file_object_maps_the_file(self):
        path = self.path()
        cellar.dump(self.value, path, buffer_checksums=True)
        with open(path, "rb") as f:
            loaded = cellar.load(f, verify=True)
        self.assert_same(loaded)  # the mapping outlives the file object
        self.assertTrue(support.inside(support.data_range(loaded["rows"]),
                                       support.mapped_ranges(path)))

    def test_stream_without_a_descriptor_is_read(self):
        buffer = io.BytesIO()
        cellar.dump(self.value, buffer)
        buffer.seek(0)
        self.assert_same(cellar.load(buffer))
        buffer.seek(0)
        self.assertTrue(cellar.load(buffer, writable=True)["rows"].flags.writeable)

    def test_bad_stream_is_a_format_error(self):
        for data, reason in ((b"PK\x03\x04", "not a cellar file"), (cellar.MAGIC, "truncated")):
            with self.subTest(reason=reason):
                with self.assertRaisesRegex(cellar.FormatError, reason):
                    cellar.load(io.BytesIO(data))


if __name__ == "__main__":
    unittest.main()
