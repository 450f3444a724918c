"""The opt-in vineyard compat directory: Vineyard CSI step code runs unchanged on a
Cellar volume, and the shim never shadows a real Vineyard unless asked to."""

import os
import shutil
import subprocess
import tempfile
import textwrap
import unittest

import support
from support import cellar

import numpy as np
import pandas as pd


def run_python(code, pythonpath, **env):
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("PYTHONPATH", "CELLAR_VINEYARD_COMPAT")}
    environment.update(env, PYTHONPATH=os.pathsep.join(pythonpath))
    return subprocess.run([support.PYTHON, "-c", textwrap.dedent(code)], env=environment,
                          capture_output=True, text=True, cwd="/")


class SeedSteps(support.TempDirTest):
    """Two pods on one node: each step runs in its own mount namespace that sees the
    shared volume at /vineyard, with only the compat directory on PYTHONPATH."""

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            self.skipTest("needs root and unshare(1) to give each step its own /vineyard")
        if not os.path.isdir("/vineyard"):
            os.mkdir("/vineyard")  # the mount point only; each step mounts privately
            self.addCleanup(_rmdir_quietly, "/vineyard")

    def run_step(self, script):
        environment = {k: v for k, v in os.environ.items() if k != "CELLAR_VINEYARD_COMPAT"}
        environment["PYTHONPATH"] = support.COMPAT_DIR
        result = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             'mount --bind "$1" /vineyard && exec "$2" "$3"', "pod", self.dir,
             support.PYTHON, os.path.join(support.STEPS_DIR, script)],
            env=environment, capture_output=True, text=True, cwd="/")
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def test_write_then_read(self):
        self.assertEqual(self.run_step("write_step.py"), "wrote 100000 rows\n")
        stored = os.path.join(self.dir, "data", "x.pkl")
        self.assertGreater(cellar.info(stored).file_length, 100_000 * 8)  # a cellar file
        frame = cellar.load(stored)  # and any step may read it with cellar directly
        output = self.run_step("read_step.py")
        self.assertEqual(output.splitlines(), [
            "read 100000 rows",
            f"value sum {frame['value'].sum():.6f}",
            "cities ['Hangzhou', 'Lima', 'Paris']",
            f"last day {frame['day'].iloc[-1]}",
        ])


class Shadowing(unittest.TestCase):
    """Which vineyard `import vineyard` gives, by path order and CELLAR_VINEYARD_COMPAT."""

    def setUp(self):
        self.real = tempfile.mkdtemp(prefix="cellar-real-vineyard-")
        self.addCleanup(shutil.rmtree, self.real)
        package = os.path.join(self.real, "vineyard")
        os.mkdir(package)
        with open(os.path.join(package, "__init__.py"), "w") as f:
            f.write("REAL = True\nfrom . import csi\n")
        with open(os.path.join(package, "csi.py"), "w") as f:
            f.write("def read(path):\n    return 'real read'\n")

    WHICH = """
        import vineyard, vineyard.csi
        print(getattr(vineyard, "REAL", False), getattr(vineyard, "__cellar_compat__", False),
              "compat" if vineyard.csi.__file__.startswith(COMPAT) else "real")
        """

    def which(self, pythonpath, **env):
        code = f"COMPAT = {support.COMPAT_DIR!r}\n" + textwrap.dedent(self.WHICH)
        result = run_python(code, pythonpath, **env)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout.split()

    def test_defers_to_real_vineyard_installed_later_on_the_path(self):
        self.assertEqual(self.which([support.COMPAT_DIR, self.real]),
                         ["True", "False", "real"])

    def test_real_vineyard_first_on_the_path(self):
        self.assertEqual(self.which([self.real, support.COMPAT_DIR]),
                         ["True", "False", "real"])

    def test_shim_when_asked(self):
        self.assertEqual(self.which([support.COMPAT_DIR, self.real], CELLAR_VINEYARD_COMPAT="1"),
                         ["False", "True", "compat"])

    def test_shim_when_no_real_vineyard(self):
        self.assertEqual(self.which([support.COMPAT_DIR]), ["False", "True", "compat"])
        self.assertEqual(self.which([support.COMPAT_DIR], CELLAR_VINEYARD_COMPAT="auto"),
                         ["False", "True", "compat"])

    def test_shim_refused(self):
        result = run_python("import vineyard", [support.COMPAT_DIR], CELLAR_VINEYARD_COMPAT="0")
        self.assertIn("ImportError", result.stderr)
        self.assertIn("CELLAR_VINEYARD_COMPAT=0", result.stderr)

    def test_bad_mode(self):
        result = run_python("import vineyard", [support.COMPAT_DIR], CELLAR_VINEYARD_COMPAT="yes")
        self.assertIn("expected auto, 0 or 1", result.stderr)

    def test_not_on_the_path_means_not_there(self):
        result = run_python("import vineyard", [support.PYTHON_DIR])
        self.assertIn("ModuleNotFoundError", result.stderr)

    def test_shim_offers_only_csi(self):
        result = run_python("import vineyard; vineyard.connect('/var/run/vineyard.sock')",
                            [support.COMPAT_DIR])
        self.assertIn("AttributeError", result.stderr)
        self.assertIn("Cellar's compat shim", result.stderr)


class ShimApi(support.TempDirTest):
    """vineyard.csi in-process, with cellar importable the usual way."""

    def run_shim(self, code):
        result = run_python(code, [support.COMPAT_DIR, support.PYTHON_DIR])
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def test_round_trip_and_parent_directories(self):
        path = os.path.join(self.dir, "deep", "er", "arr")
        self.run_shim(f"""
            import numpy as np, vineyard
            vineyard.csi.write(np.arange(10), {path!r})
            assert (vineyard.csi.read({path!r}) == np.arange(10)).all()
            """)
        np.testing.assert_array_equal(cellar.load(path), np.arange(10))

    def test_read_is_copy_on_write(self):
        path = os.path.join(self.dir, "frame")
        cellar.dump(pd.DataFrame({"n": pd.array([1, None, 1], dtype="Int64")}), path)
        self.assertEqual(self.run_shim(f"""
            import vineyard
            frame = vineyard.csi.read({path!r})
            sizes = frame.groupby("n").size()  # refuses read-only data in pandas 1.5
            # int(): numpy 2 prints the keys as np.int64(1).
            print({{int(key): int(size) for key, size in sizes.items()}})
            frame.iloc[0, 0] = 7
            print(frame["n"].tolist())
            """), "{1: 2}\n[7, <NA>, 1]\n")
        self.assertEqual(cellar.load(path)["n"].tolist(), [1, pd.NA, 1])

    def test_reads_what_cellar_wrote(self):
        frame = pd.DataFrame({"a": [1.0, 2.0]})
        path = os.path.join(self.dir, "frame")
        cellar.dump(frame, path)
        self.assertEqual(self.run_shim(f"""
            import vineyard
            print(vineyard.csi.read({path!r})["a"].sum())
            """), "3.0\n")

    def test_missing_object(self):
        result = run_python("import vineyard; vineyard.csi.read('/nonexistent/x')",
                            [support.COMPAT_DIR])
        self.assertIn("FileNotFoundError", result.stderr)


def _rmdir_quietly(path):
    try:
        os.rmdir(path)
    except OSError:
        pass


if __name__ == "__main__":
    unittest.main()
