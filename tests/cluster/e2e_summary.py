#!/usr/bin/env python3
"""Summarises a ginkgo JSON report of Kubernetes' external storage tests (conformance.sh).

  e2e_summary.py REPORT.json

Prints, for the specs the run selected (focus and skip): how many passed, failed and were
skipped, each failed spec with the first lines of its failure, and the skipped specs
grouped by the reason the test itself gave (the driver's capabilities, the volume type,
the single node). The last line is "N passed, N failed, N skipped". Exit 0 when nothing
failed and something passed.
"""

import collections
import json
import sys


def spec_name(spec):
    return " ".join(spec.get("ContainerHierarchyTexts") or []) + " " + spec.get("LeafNodeText", "")


def main():
    with open(sys.argv[1]) as f:
        suites = json.load(f)
    passed, failed, skipped = [], [], collections.defaultdict(list)
    for suite in suites:
        for spec in suite.get("SpecReports") or []:
            if spec.get("LeafNodeType") != "It":
                continue  # BeforeSuite, AfterSuite and the like
            state = spec.get("State")
            message = (spec.get("Failure") or {}).get("Message", "")
            if state == "passed":
                passed.append(spec)
            elif state in ("failed", "panicked", "timedout", "interrupted", "aborted"):
                failed.append((spec, state, message))
            elif state == "skipped" and message:
                # Skipped by the test at run time; specs the focus did not select carry
                # no message and are not counted.
                reason = message.strip().splitlines()[0]
                skipped[reason].append(spec)
    for spec, state, message in failed:
        print(f"FAILED ({state}): {spec_name(spec)}")
        for line in message.strip().splitlines()[:6]:
            print(f"    {line}")
    if skipped:
        print("skipped, by the reason the test gave:")
        for reason, specs in sorted(skipped.items(), key=lambda kv: -len(kv[1])):
            print(f"  {len(specs):4d}  {reason}")
    n_skipped = sum(len(v) for v in skipped.values())
    print(f"{len(passed)} passed, {len(failed)} failed, {n_skipped} skipped")
    return 0 if passed and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
