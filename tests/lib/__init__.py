"""The Python test library: what the harnesses of tests/e2e, tests/multinode, tests/support,
tests/deploy, tests/cluster and bench/ share.

  sizes        parse_size: one rule for every size a harness reads
  csi          the driver's name and topology key; the CSI stubs, generated from
               proto/csi.proto at run time
  protos       run-time generation of any proto's Python stubs (csi.proto, peer.proto)
  node         the node plugin's processes: `cellar node` (start, READY by Probe,
               takeover, stop) and `cellar fd-holder`; what an interrupted run left
  provisioner  the external-provisioner's CSI calls
  kubelet      the kubelet's CSI calls, and its volume stats poller
  roles        both attached to a started node, in the order Kubernetes does it
  objects      the Kubernetes objects they pass around (StorageClass, PV, Pod)
  calls        the log of CSI calls both keep
  host         mounts and shared memory of this machine
  netns        nodes as network namespaces joined by a bridge; cutting and slowing links
  multinode    several nodes on one machine, each with its kubelet and provisioner
  checks       the check runner: one line per check, then `N passed, N failed`

Imports need no path set up by hand: every entry point runs as a module from the repo
root (`cd REPO && /usr/bin/python3 -m tests.e2e.e2e_test`), so `tests` is on the path.
Unit tests of the library: tests/lib/*_test.py, run by tests/deploy/run.sh.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
