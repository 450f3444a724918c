"""Unit tests of tests/lib/checks.py: the lines it prints and the closing line
tests/run-all.sh counts."""

import contextlib
import io
import re
import unittest

from tests.lib.checks import CheckFailed, Runner, Skip, expect, fail

# tests/run-all.sh's pattern for a suite's counts, and how it reads them.
RUN_ALL = re.compile(r"(^|: )[0-9]+ passed, [0-9]+ failed")


def run_all_counts(output: str) -> tuple[int, int]:
    line = [ln for ln in output.splitlines() if RUN_ALL.search(ln)][-1]
    passed = int(re.sub(r".*(^|[^0-9])([0-9]+) passed.*", r"\2", line))
    failed = int(re.sub(r".* ([0-9]+) failed.*", r"\1", line))
    return passed, failed


def boom():
    raise RuntimeError("the daemon\nexited")


class RunnerTest(unittest.TestCase):
    def run_checks(self, *checks, **runner_args) -> tuple[Runner, str, int]:
        runner = Runner(**runner_args)
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            for name, fn, args in checks:
                runner.check(name, fn, *args)
            rc = runner.summary()
        return runner, out.getvalue(), rc

    def test_counts_and_closing_line(self):
        def skipped():
            raise Skip("needs a cluster")
        runner, out, rc = self.run_checks(("adds", lambda a, b: a + b, (1, 2)),
                                          ("true", expect, (True, "never")),
                                          ("false", expect, (False, "1 != 2")),
                                          ("raises", boom, ()),
                                          ("skipped", skipped, ()))
        self.assertEqual((runner.passed, runner.failed, runner.skipped), (2, 2, 1))
        self.assertEqual(out.splitlines()[-1], "2 passed, 2 failed, 1 skipped")
        self.assertEqual(run_all_counts(out), (2, 2))
        self.assertEqual(rc, 1)
        self.assertEqual(runner.failures, ["false", "raises"])

    def test_lines_per_check(self):
        _, out, _ = self.run_checks(("good", lambda: None, ()), ("bad", fail, ("no\nway",)),
                                    ("odd", boom, ()))
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^PASS good \([0-9]+\.[0-9]s\)$")
        self.assertRegex(lines[1], r"^FAIL bad \([0-9]+\.[0-9]s\): no$")
        self.assertEqual(lines[2], "     way")
        self.assertRegex(lines[3], r"^FAIL odd \([0-9.]+s\): RuntimeError: the daemon$")
        self.assertEqual(lines[4], "     exited")
        self.assertIn("failed checks:", out)

    def test_all_passed_is_success_and_no_skip_count(self):
        runner, out, rc = self.run_checks(("one", lambda: 1, ()))
        self.assertEqual(out.splitlines()[-1], "1 passed, 0 failed")
        self.assertEqual(run_all_counts(out), (1, 0))
        self.assertEqual(rc, 0)

    def test_nothing_passed_is_a_failure(self):
        _, out, rc = self.run_checks()
        self.assertEqual(out.splitlines()[-1], "0 passed, 0 failed")
        self.assertEqual(rc, 1)

    def test_check_returns_the_value_or_none(self):
        runner = Runner()
        with contextlib.redirect_stdout(io.StringIO()):
            self.assertEqual(runner.check("value", lambda: 42), 42)
            self.assertIsNone(runner.check("fails", fail, "x"))

    def test_check_failed_is_an_assertion(self):
        self.assertTrue(issubclass(CheckFailed, AssertionError))


if __name__ == "__main__":
    unittest.main()
