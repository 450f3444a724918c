"""The check runner of every harness: a check is a function that raises on failure
(AssertionError, or any exception; Skip to skip it with a reason). Each check prints
one line,

  PASS <name> (1.2s)
  FAIL <name> (1.2s): <why>          further lines of the reason indented below
  SKIP <name>: <reason>

and summary() prints the names of the failed checks, then the line tests/run-all.sh
counts: `N passed, N failed`, with `, N skipped` when some were.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field


class Skip(Exception):
    """Raised by a check that cannot run here; the reason is printed."""


class CheckFailed(AssertionError):
    pass


def fail(message: str):
    raise CheckFailed(message)


def expect(condition, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


@dataclass
class Runner:
    """verbose: a traceback for every failure. expected: exception types that are
    reported by their message alone when not verbose (others get a traceback)."""
    verbose: bool = False
    expected: tuple = (Exception,)
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)

    def check(self, name: str, fn, *args, **kwargs):
        """Runs fn(*args, **kwargs) as the check `name`; returns its value, or None when
        it failed or skipped. A failure never stops the run."""
        start = time.monotonic()
        try:
            value = fn(*args, **kwargs)
        except Skip as e:
            self.skipped += 1
            print(f"SKIP {name}: {e}", flush=True)
            return None
        except Exception as e:  # noqa: BLE001 - every failure is reported, none aborts the run
            self.failed += 1
            self.failures.append(name)
            detail = str(e) if isinstance(e, AssertionError) else "".join(
                traceback.format_exception_only(type(e), e)).strip()
            first, *rest = (detail or type(e).__name__).splitlines() or [""]
            print(f"FAIL {name} ({time.monotonic() - start:.1f}s): {first}", flush=True)
            for line in rest:
                print(f"     {line}", flush=True)
            if self.verbose or not isinstance(e, self.expected):
                traceback.print_exc()
            return None
        self.passed += 1
        print(f"PASS {name} ({time.monotonic() - start:.1f}s)", flush=True)
        return value

    def summary_line(self) -> str:
        line = f"{self.passed} passed, {self.failed} failed"
        if self.skipped:
            line += f", {self.skipped} skipped"
        return line

    def summary(self) -> int:
        """Prints the failed checks and the closing line; the exit status: 1 when a
        check failed or none passed."""
        if self.failures:
            print("\nfailed checks:", flush=True)
            for name in self.failures:
                print(f"  {name}", flush=True)
        print(self.summary_line(), flush=True)
        return 1 if self.failed or not self.passed else 0
