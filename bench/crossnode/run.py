"""Cross-node reads (issue 15): how fast a node gets a volume another node holds,
against the raw throughput of the same link, measured in the same run.

Two Cellar nodes, each a network namespace joined by veth pairs to a switch namespace
(tests/lib/multinode.py, the harness of tests/multinode). Node 1 owns a volume; node 2
publishes it, which fetches a replica over the Peer protocol (gRPC, mutual TLS) before
the pod's mount appears. Per round and case:
  - the link: a plain TCP stream from node 1 to node 2 (the raw link), and the same
    over TLS with the run's certificates (what encryption alone costs);
  - fetch: NodePublishVolume on node 2 until it returns (Describe, the replica's arena,
    every file, the bind), as bytes per second; the ratio to the raw link;
  - first byte: from the publish's start until a pod could read the first byte;
  - reads after the fetch: every file read through node 2's mount (the replica) and
    through node 1's (the owner), in GB/s.
Rounds interleave the cases; medians are printed as a Markdown table.

  /usr/bin/python3 -m bench.crossnode.run [--sizes 1,4] [--rounds 3] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests.lib import multinode

GiB = 1 << 30
MiB = 1 << 20
BLOCK = 4 * MiB

# One side of a timed stream, run in a node's network namespace. Prints seconds taken
# by the receiver from the first to the last byte.
LINK_CODE = r"""
import socket, ssl, sys, time
role, host, port, total, certs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def tls(server):
    if certs == "-":
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_cert_chain(certs + "/tls.crt", certs + "/tls.key")
    ctx.load_verify_locations(certs + "/ca.crt")
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
if role == "recv":
    srv = socket.create_server((host, port))
    print("ready", flush=True)
    conn, _ = srv.accept()
    ctx = tls(True)
    if ctx:
        conn = ctx.wrap_socket(conn, server_side=True)
    buf = memoryview(bytearray(4 << 20))
    got, start = 0, None
    while got < total:
        n = conn.recv_into(buf)
        if n == 0:
            break
        if start is None:
            start = time.monotonic()
        got += n
    print(f"{time.monotonic() - start:.6f} {got}", flush=True)
else:
    conn = socket.create_connection((host, port))
    ctx = tls(False)
    if ctx:
        conn = ctx.wrap_socket(conn, server_hostname="cellar-peer")
    data = bytes(4 << 20)
    sent = 0
    while sent < total:
        conn.sendall(data)
        sent += len(data)
    conn.close()
"""


def link_gbps(c: multinode.MultiNodeCluster, total: int, tls: bool) -> float:
    sender, receiver = c.nodes[0], c.nodes[1]
    port = 9400 + (1 if tls else 0)
    certs = str(c.certs) if tls else "-"
    recv = subprocess.Popen(["ip", "netns", "exec", receiver.ns, sys.executable, "-c", LINK_CODE,
                             "recv", receiver.address, str(port), str(total), certs],
                            stdout=subprocess.PIPE, text=True)
    assert recv.stdout.readline().strip() == "ready"
    subprocess.run(["ip", "netns", "exec", sender.ns, sys.executable, "-c", LINK_CODE, "send",
                    receiver.address, str(port), str(total), certs], check=True)
    seconds, got = recv.stdout.readline().split()
    recv.wait()
    return int(got) / float(seconds) / 1e9


def write_files(root: Path, total: int, files: int) -> None:
    block = os.urandom(BLOCK)
    per = total // files
    for i in range(files):
        with open(root / f"part-{i:05d}", "wb") as out:
            left = per
            while left > 0:
                out.write(block[:min(left, BLOCK)])
                left -= min(left, BLOCK)


def read_gbps(root: Path) -> float:
    buf = bytearray(BLOCK)
    total = 0
    start = time.monotonic()
    for p in sorted(root.iterdir()):
        with open(p, "rb", buffering=0) as f:
            while (n := f.readinto(buf)):
                total += n
    return total / (time.monotonic() - start) / 1e9


def first_byte_seconds(root: Path) -> float:
    start = time.monotonic()
    with open(sorted(root.iterdir())[0], "rb", buffering=0) as f:
        f.read(1)
    return time.monotonic() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1,4", help="volume sizes in GiB")
    ap.add_argument("--files", default="1,1024", help="files a volume is split into")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--direct", action="store_true",
                    help="the owner serves peers on its address, not behind `cellar peer-relay` "
                    "as deploy/ runs it")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    layouts = [int(f) for f in args.files.split(",")]
    cases = [(s, f) for s in sizes for f in layouts]
    # Node 1 holds every case's volume at once; node 2 one replica at a time.
    capacity = f"{sum(s for s, _ in cases) * 1024 + 64 * len(cases) + 512}Mi"
    multinode.install_signal_handlers()
    base = Path(os.environ.get("TMPDIR", "/tmp")) / "cellar-bench-crossnode"
    results: dict = {"link_gbps": [], "tls_gbps": [], "cases": {}}
    with multinode.MultiNodeCluster(base, nodes=2, capacity=capacity,
                                    relay_first=not args.direct) as c:
        owner, reader = c.nodes
        volumes = {}
        for size, files in cases:
            pv = c.provision(owner, f"data-{size}g-{files}", size * GiB + 64 * MiB)
            mounted = c.publish(owner, pv)
            write_files(mounted.target, size * GiB, files)
            volumes[(size, files)] = (pv, mounted)
        for r in range(args.rounds):
            results["link_gbps"].append(link_gbps(c, 2 * GiB, tls=False))
            results["tls_gbps"].append(link_gbps(c, 2 * GiB, tls=True))
            for (size, files), (pv, on_owner) in volumes.items():
                start = time.monotonic()
                replica = c.publish(reader, pv)
                fetch = time.monotonic() - start
                first = fetch + first_byte_seconds(replica.target)
                # Alternated, best of two each: the first pass over freshly written pages
                # pays for things the second does not (page-table set-up, caches).
                reads = [read_gbps(m.target) for m in (replica, on_owner, replica, on_owner)]
                row = {"fetch_s": fetch, "fetch_gbps": size * GiB / fetch / 1e9,
                       "first_byte_s": first, "read_replica_gbps": max(reads[0::2]),
                       "read_owner_gbps": max(reads[1::2]), "reads": reads}
                results["cases"].setdefault(f"{size}x{files}", []).append(row)
                c.unpublish(reader, replica)
                print(f"round {r + 1} {size} GiB in {files} files: {row}", flush=True)
        for pv, mounted in volumes.values():
            c.unpublish(owner, mounted)

    link = statistics.median(results["link_gbps"])
    tls = statistics.median(results["tls_gbps"])
    print(f"\nraw link (TCP, node 1 -> node 2): {link:.2f} GB/s; over TLS: {tls:.2f} GB/s "
          f"(medians of {args.rounds})\n")
    print("| volume | fetch s | fetch GB/s | / raw link | / TLS link | first byte s "
          "| read on replica GB/s | read on owner GB/s |")
    print("|---|---|---|---|---|---|---|---|")
    for (size, files) in cases:
        rows = results["cases"][f"{size}x{files}"]
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k != "reads"}
        print(f"| {size} GiB, {files} file{'s' if files > 1 else ''} | {med['fetch_s']:.2f} "
              f"| {med['fetch_gbps']:.2f} | {med['fetch_gbps'] / link:.2f}x "
              f"| {med['fetch_gbps'] / tls:.2f}x | {med['first_byte_s']:.3f} "
              f"| {med['read_replica_gbps']:.2f} | {med['read_owner_gbps']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
