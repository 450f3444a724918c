"""dump makes a file appear whole or not at all: temporary name in the same directory,
then rename. Readers never see a half-written file, and failures leave nothing behind."""

import errno
import os
import subprocess
import textwrap
import time
import unittest

import support
from support import cellar

import numpy as np


class AtomicDump(support.TempDirTest):
    def assert_only(self, *names):
        self.assertEqual(sorted(os.listdir(self.dir)), sorted(names))

    def test_no_temporary_file_is_left(self):
        cellar.dump(np.arange(100), self.path("a.cellar"))
        cellar.dump(np.arange(100), self.path("a.cellar"))  # replacing too
        self.assert_only("a.cellar")

    def test_unpicklable_object_leaves_nothing(self):
        cellar.dump([1, 2], self.path("a.cellar"))
        with self.assertRaises(Exception):
            cellar.dump([np.arange(10), lambda: None], self.path("a.cellar"))
        self.assert_only("a.cellar")
        self.assertEqual(cellar.load(self.path("a.cellar")), [1, 2])

    def test_full_volume_leaves_old_file_intact(self):
        with support.mounted_tmpfs("4m") as volume:
            if volume is None:
                self.skipTest("needs root to mount a small tmpfs")
            path = os.path.join(volume, "a.cellar")
            cellar.dump(np.arange(1000), path)
            with self.assertRaises(OSError) as caught:
                cellar.dump(np.zeros(1 << 20), path)  # 8 MiB on a 4 MiB volume
            self.assertEqual(caught.exception.errno, errno.ENOSPC)
            self.assertEqual(os.listdir(volume), ["a.cellar"])
            np.testing.assert_array_equal(cellar.load(path), np.arange(1000))

    def test_missing_directory(self):
        with self.assertRaises(FileNotFoundError):
            cellar.dump(1, self.path("no/such/dir/a.cellar"))

    def test_mode_follows_umask(self):
        for umask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
            with self.subTest(umask=oct(umask)):
                old = os.umask(umask)
                try:
                    cellar.dump(1, self.path())
                finally:
                    os.umask(old)
                self.assertEqual(os.stat(self.path()).st_mode & 0o777, mode)

    def test_fsync(self):
        cellar.dump(np.arange(10), self.path(), fsync=True)
        np.testing.assert_array_equal(cellar.load(self.path()), np.arange(10))

    def test_loaded_object_survives_replacement(self):
        path = self.path()
        cellar.dump(np.full(1 << 16, 1.0), path)
        first = cellar.load(path)
        cellar.dump(np.full(1 << 16, 2.0), path)
        self.assertTrue((first == 1.0).all())
        self.assertTrue((cellar.load(path) == 2.0).all())

    def test_concurrent_reader_sees_only_whole_files(self):
        """A writer process replaces the file over and over with arrays of one value;
        every load in the meantime is complete and uniform."""
        path = self.path()
        cellar.dump(np.zeros(4 << 20, dtype=np.int64), path)
        writer = subprocess.Popen([support.PYTHON, "-c", textwrap.dedent(f"""
            import sys
            sys.path.insert(0, {support.PYTHON_DIR!r})
            import cellar, numpy as np
            for k in range(1, 41):
                cellar.dump(np.full(4 << 20, k, dtype=np.int64), {path!r})
            """)])
        seen = set()
        try:
            while writer.poll() is None:
                array = cellar.load(path)
                self.assertEqual(array.shape, (4 << 20,))
                first = array[0]
                self.assertTrue((array == first).all(), f"mixed content at value {first}")
                seen.add(int(first))
                time.sleep(0.001)
        finally:
            writer.wait()
        self.assertEqual(writer.returncode, 0)
        self.assertEqual(int(cellar.load(path)[0]), 40)
        self.assertGreater(len(seen), 1, "the reader never overlapped the writer")


if __name__ == "__main__":
    unittest.main()
