"""The CSI contract as the harnesses see it: the driver's name, its topology key, and
the Python stubs of proto/csi.proto.

The stubs are generated at run time by tests/lib/protos.py (never committed), into
$TMPDIR/cellar-csi-stubs-<hash>.
"""

from __future__ import annotations

from tests.lib import REPO, protos

PROTO = REPO / "proto" / "csi.proto"
DRIVER = "csi.cellar.dev"
TOPOLOGY_KEY = "topology.csi.cellar.dev/node"


def stubs():
    """(csi_pb2, csi_pb2_grpc): generated once per proto content, then imported.
    Needs protoc, grpc_python_plugin and python3-grpcio."""
    return protos.stubs(PROTO)
