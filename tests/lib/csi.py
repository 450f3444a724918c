"""The CSI contract as the harnesses see it: the driver's name, its topology key, and
the Python stubs of proto/csi.proto.

The stubs are generated at run time (never committed) with protoc and
grpc_python_plugin, once per content of the proto, into
$TMPDIR/cellar-csi-stubs-<hash>, and loaded from there by file: the generated
csi_pb2_grpc imports `csi_pb2` by that bare name, which the loader registers first.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.lib import REPO

PROTO = REPO / "proto" / "csi.proto"
DRIVER = "csi.cellar.dev"
TOPOLOGY_KEY = "topology.csi.cellar.dev/node"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@functools.cache
def stubs():
    """(csi_pb2, csi_pb2_grpc): generated once per proto content, then imported.
    Needs protoc, grpc_python_plugin and python3-grpcio."""
    digest = hashlib.sha256(PROTO.read_bytes()).hexdigest()[:16]
    out = Path(tempfile.gettempdir()) / f"cellar-csi-stubs-{digest}"
    if not (out / "csi_pb2_grpc.py").exists():
        tmp = Path(tempfile.mkdtemp(prefix="cellar-csi-stubs-"))
        subprocess.run(["protoc", f"--python_out={tmp}", f"--grpc_out={tmp}",
                        "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
                        f"-I{PROTO.parent}", str(PROTO)], check=True)
        try:
            os.rename(tmp, out)  # atomic: a concurrent run sees all or nothing
        except OSError:
            subprocess.run(["rm", "-rf", str(tmp)], check=False)
    pb = sys.modules.get("csi_pb2") or _load("csi_pb2", out / "csi_pb2.py")
    pb_grpc = sys.modules.get("csi_pb2_grpc") or _load("csi_pb2_grpc", out / "csi_pb2_grpc.py")
    return pb, pb_grpc
