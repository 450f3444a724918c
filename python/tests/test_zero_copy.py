"""Zero copy, shown rather than assumed: after load, arrays point into the file's
mapping, the process gains no private copy of the data, and the machine's page cache
does not grow by the file's size."""

import gc
import os
import sys
import unittest
from unittest import mock

import support
from support import cellar

import numpy as np
import pandas as pd

MIB = 1 << 20


def large_frame(nbytes):
    """A numeric frame of about ``nbytes``: floats, ints, datetimes, categorical codes."""
    rows = nbytes // (8 * 4)
    rng = np.random.default_rng(3)
    return pd.DataFrame({
        "x": rng.random(rows),
        "y": np.arange(rows, dtype=np.int64),
        "when": pd.date_range("2024-01-01", periods=rows, freq="s"),
        "label": pd.Categorical.from_codes(rng.integers(0, 4, rows), ["a", "b", "c", "d"]),
        "z": rng.random(rows),
    })


def column_arrays(frame):
    """The arrays that hold each column's data (for a categorical: its codes)."""
    for name, column in frame.items():
        if isinstance(column.dtype, pd.CategoricalDtype):
            # Not column.cat.codes: pandas 3 builds that Series from a copy of the codes.
            yield name, column.array.codes
        else:
            yield name, column.to_numpy()


class ArraysLieInTheMapping(support.TempDirTest):
    def test_numpy_array_points_into_mapping(self):
        path = self.path()
        cellar.dump(np.arange(1 << 20, dtype=np.float64), path)
        loaded = cellar.load(path)
        ranges = support.mapped_ranges(path)
        self.assertTrue(ranges, "the file is not mapped")
        self.assertTrue(support.inside(support.data_range(loaded), ranges))

    def test_arrays_numpy_would_copy_are_mapped_too(self):
        """numpy keeps datetime64/timedelta64 and non-contiguous arrays in the pickle
        stream; cellar sends them out of band as well."""
        arrays = {
            "datetime64": np.arange(100_000).astype("datetime64[s]"),
            "timedelta64": np.arange(100_000).astype("timedelta64[ns]"),
            "strided": np.arange(200_000.0)[::2],
            "strided datetime": np.arange(200_000).astype("datetime64[D]")[::2],
        }
        path = self.path()
        cellar.dump(arrays, path)
        loaded = cellar.load(path)
        ranges = support.mapped_ranges(path)
        for name, array in loaded.items():
            with self.subTest(array=name):
                np.testing.assert_array_equal(array, arrays[name])
                self.assertEqual(array.dtype, arrays[name].dtype)
                self.assertTrue(support.inside(support.data_range(array), ranges))

    def test_page_alignment(self):
        path = self.path()
        cellar.dump([np.arange(4096, dtype=np.uint8), np.arange(10_000.0)], path)
        for array in cellar.load(path):
            self.assertEqual(support.data_range(array)[0] % os.sysconf("SC_PAGE_SIZE"), 0)

    def test_writable_load_points_into_private_mapping(self):
        path = self.path()
        cellar.dump(np.arange(1 << 16), path)
        loaded = cellar.load(path, writable=True)
        self.assertTrue(support.inside(support.data_range(loaded), support.mapped_ranges(path)))

    def test_frame_columns_point_into_mapping(self):
        path = self.path()
        cellar.dump(large_frame(8 * MIB), path)
        loaded = cellar.load(path)
        ranges = support.mapped_ranges(path)
        for name, array in column_arrays(loaded):
            with self.subTest(column=name):
                self.assertTrue(support.inside(support.data_range(array), ranges))

    def test_mapping_outlives_load_and_goes_with_the_object(self):
        path = self.path()
        cellar.dump(np.arange(1 << 16), path)
        loaded = cellar.load(path)
        gc.collect()
        self.assertTrue(support.mapped_ranges(path))
        self.assertEqual(int(loaded.sum()), (1 << 16) * ((1 << 16) - 1) // 2)
        del loaded
        gc.collect()
        self.assertEqual(support.mapped_ranges(path), [])

    def test_object_without_buffers_does_not_keep_the_mapping(self):
        path = self.path()
        cellar.dump({"a": [1, 2, 3]}, path)
        self.assertEqual(cellar.load(path), {"a": [1, 2, 3]})
        gc.collect()
        self.assertEqual(support.mapped_ranges(path), [])

    def test_unmappable_file_is_read_instead(self):
        path = self.path()
        frame = large_frame(MIB)
        cellar.dump(frame, path)
        with mock.patch.object(cellar.mmap, "mmap", side_effect=OSError(19, "No such device")):
            loaded = cellar.load(path)
            writable = cellar.load(path, writable=True)
        pd.testing.assert_frame_equal(loaded, frame)
        # The array behind the column: with copy-on-write (pandas 3), to_numpy() is always
        # a read-only view, whatever the data.
        self.assertFalse(np.asarray(loaded["x"].array).flags.writeable)
        self.assertTrue(np.asarray(writable["x"].array).flags.writeable)


class NoCopyInMemory(support.TempDirTest):
    SIZE = 256 * MIB

    def test_no_private_copy(self):
        """Touching every byte of a loaded 256 MiB frame adds no anonymous memory:
        the data is the file's pages, not a copy in the process."""
        path = self.path()
        frame = large_frame(self.SIZE)
        expected = float(frame["x"].sum() + frame["z"].sum())
        cellar.dump(frame, path)
        del frame
        gc.collect()
        before = support.status_kib("RssAnon")
        loaded = cellar.load(path)
        total = float(loaded["x"].sum() + loaded["z"].sum())
        codes = int(loaded["label"].cat.codes.to_numpy().sum())  # touches every page too
        grown = (support.status_kib("RssAnon") - before) * 1024
        self.assertEqual(total, expected)
        self.assertGreaterEqual(codes, 0)
        self.assertLess(grown, self.SIZE // 8, f"anonymous memory grew by {grown >> 20} MiB")


class PageCacheOnVolume(unittest.TestCase):
    SIZE = 512 * MIB
    ATTEMPTS = 3  # other processes on the machine can move the page cache too

    def test_page_cache_does_not_grow(self):
        """On a Cellar volume in passthrough mode (CELLAR_TEST_VOLUME) a load that reads
        every byte leaves the page cache as it was: the mapping is the volume's memory.
        Without the variable it runs on a tmpfs, the limit Cellar aims at."""
        with support.volume_dir() as (directory, description):
            sys.stderr.write(f"\n  [page-cache test on {description}] ")
            path = os.path.join(directory, "frame.cellar")
            frame = large_frame(self.SIZE)
            expected = float(frame["x"].sum())
            cellar.dump(frame, path)
            size = os.path.getsize(path)
            del frame
            gc.collect()
            growths = []
            for _ in range(self.ATTEMPTS):
                growth = self.page_cache_growth(path, expected)
                growths.append(growth)
                if growth < size // 4:
                    break
            gc.collect()
            self.assertLess(min(growths), size // 4,
                            f"page cache grew by {[g >> 20 for g in growths]} MiB "
                            f"loading a {size >> 20} MiB file on {description}")

    def page_cache_growth(self, path, expected):
        before = support.meminfo_kib("Cached")
        loaded = cellar.load(path)
        for _, array in column_arrays(loaded):
            array.view(np.uint8)[::4096].sum()  # one byte of every page
        self.assertEqual(float(loaded["x"].sum()), expected)
        grown = (support.meminfo_kib("Cached") - before) * 1024
        del loaded
        gc.collect()
        return grown


class DumpMakesNoCopy(support.TempDirTest):
    """dump writes non-contiguous data from its own memory: no C-order copy of it is made
    in the writer (numpy's allocations are traced by tracemalloc)."""

    def peak_allocated_by_dump(self, obj):
        import tracemalloc
        tracemalloc.start()
        try:
            cellar.dump(obj, self.path())
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    def test_row_slice_of_an_array(self):
        table = np.arange(8 * (1 << 19), dtype=np.float64).reshape(8, 1 << 19)  # 32 MiB
        self.assertLess(self.peak_allocated_by_dump(table[:, 10:]), 2 * MIB)

    def test_row_slice_of_a_frame(self):
        """A train/test split of a frame: pandas keeps the pieces as views of the frame's
        blocks; pandas 3's own pickling would copy them into C order first."""
        frame = large_frame(32 * MIB)
        cut = len(frame) * 4 // 5
        for piece in (frame.iloc[:cut], frame.iloc[cut:]):
            with self.subTest(rows=len(piece)):
                self.assertLess(self.peak_allocated_by_dump(piece), 2 * MIB)
                pd.testing.assert_frame_equal(cellar.load(self.path()), piece)


if __name__ == "__main__":
    unittest.main()
