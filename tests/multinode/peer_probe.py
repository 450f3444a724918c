"""Calls a node's Peer service (proto/peer.proto) the way another node or an intruder
would, and prints one JSON line with what each call got. Run in a node's network
namespace (the peer ports are reachable from the nodes only):

  nsenter --net=/run/netns/<ns> /usr/bin/python3 -m tests.multinode.peer_probe CASES_JSON

CASES_JSON: a list of {"name", "address", "credentials": "peer" (ca.crt, tls.crt,
tls.key of --tls), "no-cert" (trusts the CA, presents no certificate), "other-ca" (a
certificate of another CA, --other), "plaintext"; "call": "describe" | "read";
"volume", "path"}. Each result: {"code": the gRPC code's name, "details", and for OK
calls "entries" (describe) or "sha256"/"bytes" (read)}.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import grpc

from tests.lib import REPO, protos

TARGET_NAME = "cellar-peer"
pb, pb_grpc = protos.stubs(REPO / "proto" / "peer.proto")


def channel_for(case: dict) -> grpc.Channel:
    address, kind = case["address"], case["credentials"]
    if kind == "plaintext":
        return grpc.insecure_channel(address)
    tls = Path(case["tls"])
    ca = (tls / "ca.crt").read_bytes()
    if kind == "peer":
        creds = grpc.ssl_channel_credentials(ca, (tls / "tls.key").read_bytes(),
                                             (tls / "tls.crt").read_bytes())
    elif kind == "no-cert":
        creds = grpc.ssl_channel_credentials(ca)
    elif kind == "other-ca":
        other = Path(case["other"])
        creds = grpc.ssl_channel_credentials(ca, (other / "tls.key").read_bytes(),
                                             (other / "tls.crt").read_bytes())
    else:
        raise ValueError(f"unknown credentials {kind!r}")
    return grpc.secure_channel(address, creds,
                               options=[("grpc.ssl_target_name_override", TARGET_NAME)])


def call(case: dict) -> dict:
    with channel_for(case) as channel:
        stub = pb_grpc.PeerStub(channel)
        try:
            if case["call"] == "describe":
                r = stub.Describe(pb.DescribeRequest(volume_id=case["volume"]), timeout=10)
                return {"code": "OK", "node_id": r.node_id, "capacity": r.capacity_bytes,
                        "entries": {e.path.decode(errors="surrogateescape"):
                                    pb.Entry.Type.Name(e.type) for e in r.entries}}
            digest, size, got = hashlib.sha256(), None, 0
            path = case["path"].encode(errors="surrogateescape")
            request = pb.ReadFileRequest(volume_id=case["volume"], path=path)
            for chunk in stub.ReadFile(request, timeout=30):
                if size is None:
                    size = chunk.size
                digest.update(chunk.data)
                got += len(chunk.data)
            return {"code": "OK", "sha256": digest.hexdigest(), "bytes": got, "size": size}
        except grpc.RpcError as e:
            return {"code": e.code().name, "details": e.details()}


def main() -> int:
    cases = json.loads(sys.argv[1])
    print(json.dumps({c["name"]: call(c) for c in cases}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
