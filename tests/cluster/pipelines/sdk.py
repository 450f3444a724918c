"""The Kubeflow Pipelines SDKs, each in its own virtual environment made from a pinned
requirements file (requirements-kfp1.txt, requirements-kfp2.txt) and kept in the cluster
cache, keyed on that file: the first run installs from PyPI, later runs reuse it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
CACHE = Path(os.environ.get("CELLAR_CLUSTER_CACHE", "/var/cache/cellar-cluster"))
# Debian's python3 (3.11, with its venv module): the version users of kfp 1.8 run.
PYTHON = "/usr/bin/python3"


def venv(name: str) -> Path:
    """The python of the venv for requirements-NAME.txt, made if missing."""
    requirements = HERE / f"requirements-{name}.txt"
    key = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    target = CACHE / f"venv-{name}-{key}"
    python = target / "bin" / "python"
    done = target / ".installed"   # written last: a venv cut off halfway is redone
    if done.exists():
        return python
    for old in CACHE.glob(f"venv-{name}-*"):
        shutil.rmtree(old)
    subprocess.run([PYTHON, "-m", "venv", str(target)], check=True)
    # Every package is pinned in the file, so pip resolves nothing else.
    _run([str(python), "-m", "pip", "install", "--quiet", "--no-deps",
          "--disable-pip-version-check", "-r", str(requirements)], timeout=900)
    done.write_text(key + "\n")
    return python


def _run(argv: list[str], timeout: float) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}...: exit {proc.returncode}: "
                           f"{(proc.stderr or proc.stdout)[-2000:]}")
    return proc.stdout


def compile_pipeline(sdk: str, example: str) -> str:
    """Compiles examples/EXAMPLE/pipeline.py with the SDK as its docstring says (it writes
    pipeline.yaml beside itself); returns the compiled text. The source tree is left as
    it was: the compile runs on a copy."""
    python = venv(sdk)
    with tempfile.TemporaryDirectory(prefix=f"cellar-{example}-") as tmp:
        source = Path(tmp) / "pipeline.py"
        source.write_text((ROOT / "examples" / example / "pipeline.py").read_text())
        _run([str(python), str(source)], timeout=300)
        return (Path(tmp) / "pipeline.yaml").read_text()
