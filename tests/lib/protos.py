"""Python stubs of the project's protos, generated at run time (never committed) with
protoc and grpc_python_plugin, once per content of the proto, into
$TMPDIR/cellar-<stem>-stubs-<hash>, and loaded from there by file: a generated
<stem>_pb2_grpc imports `<stem>_pb2` by that bare name, which the loader registers
first."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@functools.cache
def stubs(proto: Path):
    """(<stem>_pb2, <stem>_pb2_grpc) of proto. Needs protoc, grpc_python_plugin and
    python3-grpcio."""
    stem = proto.stem
    digest = hashlib.sha256(proto.read_bytes()).hexdigest()[:16]
    out = Path(tempfile.gettempdir()) / f"cellar-{stem}-stubs-{digest}"
    if not (out / f"{stem}_pb2_grpc.py").exists():
        tmp = Path(tempfile.mkdtemp(prefix=f"cellar-{stem}-stubs-"))
        subprocess.run(["protoc", f"--python_out={tmp}", f"--grpc_out={tmp}",
                        "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
                        f"-I{proto.parent}", str(proto)], check=True)
        try:
            os.rename(tmp, out)  # atomic: a concurrent run sees all or nothing
        except OSError:
            subprocess.run(["rm", "-rf", str(tmp)], check=False)
    pb = sys.modules.get(f"{stem}_pb2") or _load(f"{stem}_pb2", out / f"{stem}_pb2.py")
    pb_grpc = sys.modules.get(f"{stem}_pb2_grpc") or _load(f"{stem}_pb2_grpc",
                                                          out / f"{stem}_pb2_grpc.py")
    return pb, pb_grpc
