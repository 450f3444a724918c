"""The small steps the multi-node suite's pods run (standard library only: it runs in
the pods, passed as `python3 -c <this file> STEP ...`). Each prints one JSON line.

  fanin IN1,IN2 OUT    verifies every file of each input against its manifest.json
                       (written by tests/e2e/pipeline_steps.py prepare), tries a write
                       into each input (its errno), writes OUT/result.json: the inputs'
                       checksums and one digest of them all
  tree DIR             sha256 of every regular file and the target of every symlink,
                       and the errno of a write into DIR
  mutate DIR           rewrites raw.bin (new bytes, another size), adds extra.txt,
                       removes test.pkl: an owner changing its volume
  fill DIR NAME BYTES SEED
                       writes NAME: BYTES pseudo-random bytes drawn from SEED
  overwrite DIR NAME SEED
                       opens NAME for writing and replaces every byte (same size)
  slow-write DIR NAME SECONDS
                       keeps NAME open for writing SECONDS, a chunk every 0.1 s, then
                       closes it; its sha256 as closed
  mmap-write DIR NAME SECONDS
                       maps NAME (4 MiB) shared and writable, closes its descriptor, and
                       keeps writing through the mapping SECONDS before unmapping it; the
                       sha256 it holds then
  links DIR            symlinks pointing out of the volume (/etc/passwd, /etc)
  shapes DIR           nested directories, an empty file, modes 0600 and 0755 with
                       another owner, an old mtime, a relative symlink inside
  odd-names DIR utf8|bytes
                       names that are UTF-8 but not ASCII or hold a newline (utf8), or
                       are not UTF-8 at all (bytes: Linux allows any byte but / and NUL)
  sparse DIR BYTES     a file of BYTES that are a hole but for its last 3 bytes
  no-cert-probe HOST:PORT
                       what a process without the peer certificates gets from a node's
                       peer port: plaintext HTTP/2, then TLS without a client certificate
"""

import errno
import hashlib
import json
import os
import random
import socket
import ssl
import sys
import time

CHUNK = 1 << 20


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def write_errno(directory):
    try:
        with open(os.path.join(directory, "should-not-exist"), "wb") as f:
            f.write(b"x")
        return "OK"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def fanin(inputs, out):
    report = {"inputs": {}, "mismatches": [], "write_errno": {}}
    combined = hashlib.sha256()
    for d in inputs.split(","):
        with open(os.path.join(d, "manifest.json")) as f:
            manifest = json.load(f)
        got = {}
        for name in sorted(manifest["files"]):
            got[name] = sha256_file(os.path.join(d, name))
            if got[name] != manifest["files"][name]:
                report["mismatches"].append(f"{d}/{name}")
            combined.update(got[name].encode())
        report["inputs"][d] = got
        report["write_errno"][d] = write_errno(d)
    report["combined"] = combined.hexdigest()
    body = json.dumps(report, sort_keys=True).encode()
    with open(os.path.join(out, "result.json"), "wb") as f:
        f.write(body)
    report["result_sha"] = hashlib.sha256(body).hexdigest()
    report["ok"] = not report["mismatches"]
    return report


def tree(directory, probe_write=True):
    files, links = {}, {}
    for base, dirs, names in os.walk(directory):
        for n in names + dirs:
            p = os.path.join(base, n)
            rel = os.path.relpath(p, directory)
            if os.path.islink(p):
                links[rel] = os.readlink(p)
            elif os.path.isfile(p):
                files[rel] = sha256_file(p)
    out = {"files": files, "links": links, "ok": True}
    if probe_write:
        out["write_errno"] = write_errno(directory)
    return out


def random_bytes(n, seed):
    rng = random.Random(seed)
    return rng.randbytes(n)


def fill_file(path, size, seed, mode="wb"):
    """Writes size bytes in chunks (random.randbytes of the whole at once would double the
    memory); returns their sha256."""
    digest = hashlib.sha256()
    rng = random.Random(seed)
    block = rng.randbytes(CHUNK)
    with open(path, mode) as f:
        f.seek(0)
        left, i = size, 0
        while left:
            # Varied chunks: the same block rotated by its index.
            k = (i * 4099) % CHUNK
            chunk = (block[k:] + block[:k])[:min(left, CHUNK)]
            f.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
            i += 1
        f.truncate(size)
    return digest.hexdigest()


def mutate(directory):
    raw = os.path.join(directory, "raw.bin")
    size = os.path.getsize(raw) // 2 + 12345
    sha = fill_file(raw, size, 99)
    with open(os.path.join(directory, "extra.txt"), "w") as f:
        f.write("added by the owner after the first publish\n")
    os.unlink(os.path.join(directory, "test.pkl"))
    return {"raw.bin": sha, "raw_size": size, "ok": True, **tree(directory, probe_write=False)}


def slow_write(directory, name, seconds):
    path = os.path.join(directory, name)
    digest = hashlib.sha256()
    end = time.monotonic() + seconds
    rng = random.Random(5)
    with open(path, "wb") as f:
        while time.monotonic() < end:
            chunk = rng.randbytes(64 << 10)
            f.write(chunk)
            f.flush()
            digest.update(chunk)
            time.sleep(0.1)
    return {"sha": digest.hexdigest(), "size": os.path.getsize(path), "ok": True}


def no_cert_probe(address):
    host, port = address.rsplit(":", 1)
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    out = {}
    # 1. Plaintext HTTP/2, as an insecure gRPC client speaks it.
    try:
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(preface)
            s.settimeout(5)
            data = s.recv(4096)
            out["plaintext"] = {"bytes": len(data), "h2_settings": data[3:4] == b"\x04"}
    except OSError as e:
        out["plaintext"] = {"error": f"{type(e).__name__}: {e}"}
    # 2. TLS trusting anything (it has no CA to check with) and no client certificate.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    try:
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="cellar-peer") as s:
                s.sendall(preface)
                s.settimeout(5)
                data = s.recv(4096)
                out["tls"] = {"bytes": len(data), "h2_settings": data[3:4] == b"\x04"}
    except (OSError, ssl.SSLError) as e:
        out["tls"] = {"error": f"{type(e).__name__}: {e}"}
    out["certs_visible"] = [p for p in ("/etc/cellar", "/var/lib/cellar") if os.path.exists(p)]
    out["ok"] = True
    return out


def mmap_write(directory, name, seconds):
    import mmap
    path = os.path.join(directory, name)
    size = 4 << 20
    with open(path, "wb") as f:
        f.truncate(size)
    fd = os.open(path, os.O_RDWR)
    m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    os.close(fd)  # from here on only the mapping writes
    end, i = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        m[(i * 65537) % size] = (i % 255) + 1
        i += 1
        if i % 1000 == 0:
            time.sleep(0.01)
    m.flush()
    m.close()
    return {"sha": sha256_file(path), "writes": i, "ok": True}


def main(argv):
    step, args = argv[0], argv[1:]
    if step == "fanin":
        report = fanin(args[0], args[1])
    elif step == "tree":
        report = tree(args[0])
    elif step == "mutate":
        report = mutate(args[0])
    elif step == "fill":
        report = {"sha": fill_file(os.path.join(args[0], args[1]), int(args[2]), int(args[3])),
                  "ok": True}
    elif step == "overwrite":
        path = os.path.join(args[0], args[1])
        report = {"sha": fill_file(path, os.path.getsize(path), int(args[2]), mode="r+b"),
                  "ok": True}
    elif step == "slow-write":
        report = slow_write(args[0], args[1], float(args[2]))
    elif step == "mmap-write":
        report = mmap_write(args[0], args[1], float(args[2]))
    elif step == "links":
        os.symlink("/etc/passwd", os.path.join(args[0], "passwd-link"))
        os.symlink("/etc", os.path.join(args[0], "etc-link"))
        report = {"ok": True}
    elif step == "shapes":
        d = args[0]
        os.makedirs(os.path.join(d, "d/e/f"), mode=0o750)
        with open(os.path.join(d, "d/e/f/nested.txt"), "w") as f:
            f.write("nested\n")
        os.utime(os.path.join(d, "d/e/f/nested.txt"), ns=(1_000_000_123, 1_500_000_000_123_456_789))
        open(os.path.join(d, "empty.bin"), "wb").close()
        with open(os.path.join(d, "private.txt"), "w") as f:
            f.write("only for uid 1000\n")
        os.chmod(os.path.join(d, "private.txt"), 0o600)
        os.chown(os.path.join(d, "private.txt"), 1000, 1000)
        with open(os.path.join(d, "run.sh"), "w") as f:
            f.write("#!/bin/sh\necho hi\n")
        os.chmod(os.path.join(d, "run.sh"), 0o755)
        os.symlink("d/e/f/nested.txt", os.path.join(d, "nested-link"))
        report = {"ok": True}
    elif step == "odd-names":
        d = os.fsencode(args[0])
        names = {"utf8": ["日本語.txt".encode(), b"with\nnewline.txt"],
                 "bytes": [b"caf\xe9.txt"]}[args[1]]
        for name in names:
            with open(os.path.join(d, name), "wb") as f:
                f.write(name)
        report = {"ok": True}
    elif step == "sparse":
        with open(os.path.join(args[0], "sparse.bin"), "wb") as f:
            f.seek(int(args[1]) - 3)
            f.write(b"end")
        report = {"ok": True}
    elif step == "no-cert-probe":
        report = no_cert_probe(args[0])
    else:
        raise SystemExit(f"unknown step {step}")
    print(json.dumps(report))
    return 0 if report.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
