"""Checks of the source tree itself: the C++ is laid out by the repository's .clang-format,
so a diff shows changes of meaning, never of layout."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.lib.checks import Runner, Skip, expect

ROOT = Path(__file__).resolve().parents[2]


def cxx_formatted() -> None:
    if shutil.which("clang-format-14") is None:
        raise Skip("clang-format-14 is not installed (bash .ci/install-deps installs it)")
    if not (ROOT / ".git").exists():
        raise Skip("not a git checkout: .ci/format lists the files with git ls-files")
    out = subprocess.run(["bash", str(ROOT / ".ci/format"), "--check"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    expect(out.returncode == 0, "C++ not laid out by .clang-format (run bash .ci/format):\n"
           + (out.stdout + out.stderr).strip())


def register(runner: Runner) -> None:
    runner.check("source: C++ formatted by .clang-format", cxx_formatted)
