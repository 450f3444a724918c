"""Offline checks of Cellar's deployment, container image and examples.

    /usr/bin/python3 -m tests.deploy.deploy_checks [--binary build/cellar] [--volume-dir DIR]

(from the repo root).
Use tests/deploy/run.sh, which installs what these need first. Without
--binary the checks against `cellar` itself are skipped; with it they run,
and fail if the binary is not there. --volume-dir (default $CELLAR_VOLUME_DIR)
is a mounted Cellar volume for the example steps; without it they run on a
tmpfs mounted for the purpose. The group `lib` is the unit tests of the test library
(tests/lib); `source` checks the C++ layout against .clang-format.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from tests.deploy import check_binary, check_examples, check_image, check_manifests, check_source
from tests.lib import selftest
from tests.lib.checks import Runner


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", help="the cellar binary (e.g. build/cellar)")
    parser.add_argument("--volume-dir", default=os.environ.get("CELLAR_VOLUME_DIR") or None,
                        help="a mounted Cellar volume for the example steps (default $CELLAR_VOLUME_DIR)")
    parser.add_argument("--only", choices=["manifests", "image", "binary", "examples", "lib", "source"], action="append",
                        help="run only these groups (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()

    runner = Runner(verbose=args.verbose)
    workdir = Path(tempfile.mkdtemp(prefix="cellar-deploy-checks."))
    groups = set(args.only or ["manifests", "image", "binary", "examples", "lib", "source"])
    try:
        ctx = check_manifests.Context(workdir)
        # The renderings are needed by the binary and example checks too.
        check_manifests.register(runner, ctx) if "manifests" in groups else check_manifests.render_only(runner, ctx)
        if "image" in groups:
            check_image.register(runner, args.binary)
        if "binary" in groups:
            check_binary.register(runner, ctx, args.binary)
        if "examples" in groups:
            check_examples.register(runner, ctx, args.volume_dir, workdir)
        if "lib" in groups:
            selftest.register(runner)
        if "source" in groups:
            check_source.register(runner)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return runner.summary()


if __name__ == "__main__":
    sys.exit(main())
