"""Unit tests of tests/lib/netns.py and the clean-up of tests/lib/multinode.py: what a run
killed outright leaves (namespaces with processes in them, a directory with a mount) is
found and removed by the next run. Needs root (skipped otherwise)."""

import os
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

from tests.lib import host, multinode, netns

DEAD_RUN = "900000001"  # above any pid_max: never a live harness


@unittest.skipUnless(os.geteuid() == 0, "needs root (network namespaces, mounts)")
class StaleRunTest(unittest.TestCase):
    def tearDown(self):
        netns.delete_run(DEAD_RUN)

    def test_a_dead_runs_namespaces_and_processes_go(self):
        net = netns.Network(DEAD_RUN, subnet=250)
        net.create_switch()
        net.add_node(1)
        sleeper = subprocess.Popen(netns.enter(net.node_ns(1)) + ["sleep", "600"],
                                   start_new_session=True)
        try:
            deadline = time.monotonic() + 5
            while sleeper.pid not in netns.pids_in(net.node_ns(1)):
                self.assertLess(time.monotonic(), deadline, "the sleeper never entered")
                time.sleep(0.02)
            self.assertIn(DEAD_RUN, netns.stale_runs())
            self.assertNotIn(str(os.getpid()), netns.stale_runs())
            netns.delete_run(DEAD_RUN)
            sleeper.wait(5)  # reaped already by delete_run (its child): gone either way
            self.assertFalse(Path(f"/proc/{sleeper.pid}").exists())
            self.assertFalse([n for n in netns.names() if DEAD_RUN in n])
        finally:
            if sleeper.poll() is None:
                sleeper.kill()
                sleeper.wait()

    def test_a_dead_runs_directory_and_mounts_go(self):
        with tempfile.TemporaryDirectory(dir="/var/tmp") as base:
            stale = Path(base) / DEAD_RUN / "node" / "state" / "arenas" / "x"
            stale.mkdir(parents=True)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "stale", str(stale)],
                           check=True)
            # A harness that still runs: its command line names the suite.
            harness = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                                        "tests.multinode"])
            try:
                live = Path(base) / str(harness.pid)
                live.mkdir()
                self.assertEqual(multinode.cleanup_stale(Path(base)), [DEAD_RUN])
                self.assertFalse(host.mounts_below(Path(base)))
                self.assertFalse((Path(base) / DEAD_RUN).exists())
                self.assertTrue(live.exists(), "a live run's directory was removed")
            finally:
                harness.kill()
                harness.wait()


if __name__ == "__main__":
    unittest.main()
