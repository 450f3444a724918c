"""The library's own unit tests (tests/lib/*_test.py) as checks of a Runner, one check
per test, so a suite's `N passed, N failed` counts them: tests/deploy/run.sh runs them.
Alone, from the repo root: python3 -m unittest tests.lib.sizes_test tests.lib.checks_test
  tests.lib.netns_test
"""

from __future__ import annotations

import unittest

from tests.lib.checks import Runner, Skip, fail

MODULES = ("tests.lib.sizes_test", "tests.lib.checks_test", "tests.lib.netns_test")


def _tests(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _tests(item)
        else:
            yield item


def _run(test: unittest.TestCase) -> None:
    result = unittest.TestResult()
    test.run(result)
    problems = result.errors + result.failures
    if problems:
        fail(problems[0][1].strip())
    if result.skipped:
        raise Skip(result.skipped[0][1])


def register(runner: Runner) -> None:
    for test in _tests(unittest.defaultTestLoader.loadTestsFromNames(MODULES)):
        runner.check(f"lib: {test.id().removeprefix('tests.lib.')}", _run, test)
