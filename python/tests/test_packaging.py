"""cellar ships as one standard-library-only module: copying cellar.py is an install,
and `pip install ./python` installs exactly that module."""

import ast
import os
import shutil
import subprocess
import sys
import unittest

import support
from support import cellar

SOURCE = os.path.join(support.PYTHON_DIR, "cellar.py")

SMOKE = """
import cellar, numpy as np, pandas as pd
frame = pd.DataFrame({"a": np.arange(5), "t": pd.date_range("2024", periods=5)})
cellar.dump(frame, "frame.cellar")
pd.testing.assert_frame_equal(cellar.load("frame.cellar"), frame)
print(cellar.__file__)
"""


def run(args, cwd, pythonpath):
    environment = dict(os.environ, PYTHONPATH=pythonpath)
    return subprocess.run(args, cwd=cwd, env=environment, capture_output=True, text=True)


class SingleModule(support.TempDirTest):
    def test_imports_only_the_standard_library(self):
        with open(SOURCE) as f:
            tree = ast.parse(f.read())
        top_level = set()
        for node in tree.body:
            if isinstance(node, ast.Import):
                top_level.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                top_level.add(node.module.split(".")[0])
        self.assertLessEqual(top_level, set(sys.stdlib_module_names))
        nested = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                  for alias in node.names} - top_level
        # numpy only inside the rebuild function, which runs only for files holding arrays.
        self.assertEqual(nested, {"numpy"})

    def test_copied_module_works_alone(self):
        shutil.copy(SOURCE, self.dir)
        result = run([support.PYTHON, "-s", "-c", SMOKE], self.dir, self.dir)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), os.path.join(self.dir, "cellar.py"))

    def test_command_line(self):
        good, bad = self.path("good.cellar"), self.path("bad.cellar")
        cellar.dump({"x": list(range(10))}, good)
        with open(bad, "wb") as f:
            f.write(b"\x80\x05not really")
        result = run([support.PYTHON, "-m", "cellar", "verify", good], self.dir, support.PYTHON_DIR)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("cellar v1", result.stdout)
        self.assertIn("without checksums", result.stdout)
        cellar.dump({"x": list(range(10))}, good, buffer_checksums=True)
        result = run([support.PYTHON, "-m", "cellar", "verify", good], self.dir, support.PYTHON_DIR)
        self.assertIn("all checksums verified", result.stdout)
        result = run([support.PYTHON, "-m", "cellar", "info", good, bad], self.dir,
                     support.PYTHON_DIR)
        self.assertEqual(result.returncode, 1)
        self.assertIn("plain pickle", result.stderr)
        result = run([support.PYTHON, "-m", "cellar"], self.dir, support.PYTHON_DIR)
        self.assertEqual(result.returncode, 2)


class PipInstall(support.TempDirTest):
    def test_pip_install_installs_the_module(self):
        probe = "import setuptools, wheel, pip"  # setuptools first: its distutils hook
        if subprocess.run([support.PYTHON, "-c", probe], capture_output=True).returncode != 0:
            self.skipTest("pip, setuptools or wheel is not installed (python3-pip)")
        # Build from a copy: pip builds in the source tree and would leave build/ there.
        project = os.path.join(self.dir, "project")
        shutil.copytree(support.PYTHON_DIR, project,
                        ignore=shutil.ignore_patterns("tests", "__pycache__", "build",
                                                      "*.egg-info"))
        target = os.path.join(self.dir, "site")
        # No build isolation: it would fetch setuptools from an index; Debian's is used.
        result = subprocess.run(
            [support.PYTHON, "-m", "pip", "install", "--quiet", "--no-build-isolation",
             "--no-deps", "--no-index", "--target", target, project],
            capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        installed = sorted(name for name in os.listdir(target)
                           if not name.endswith(".dist-info") and name != "__pycache__")
        self.assertEqual(installed, ["cellar.py"])
        result = run([support.PYTHON, "-s", "-c", SMOKE], self.dir, target)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), os.path.join(target, "cellar.py"))


if __name__ == "__main__":
    unittest.main()
