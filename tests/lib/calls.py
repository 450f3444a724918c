"""The log of CSI calls the provisioner and the kubelet keep, in the order they make them:
(party, method, "OK" or the gRPC code's name, seconds)."""

from __future__ import annotations

import time

import grpc


def logged_call(calls: list, party: str, stub, method: str, request, timeout: float):
    """stub.method(request) with a deadline of `timeout` seconds, appended to `calls`
    whatever its outcome; an error is raised on after it is logged."""
    start = time.monotonic()
    try:
        resp = getattr(stub, method)(request, timeout=timeout)
        calls.append((party, method, "OK", time.monotonic() - start))
        return resp
    except grpc.RpcError as e:
        calls.append((party, method, e.code().name, time.monotonic() - start))
        raise
