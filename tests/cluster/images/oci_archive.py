#!/usr/bin/env python3
"""Writes OCI image archives and hashes Docker build contexts; standard library only.

Used by tests/cluster/images/build.sh, which has no registry and no Docker engine:

  oci_archive.py write --out FILE --name REF [--layer-tar TAR]... [--add SRC:DEST[:MODE]]...
                 [--dir DEST[:MODE]]... [--entrypoint JSON] [--cmd JSON] [--env K=V]...
                 [--user U] [--workdir DIR] [--label K=V]...
      One image, linux/amd64, as an OCI image layout in a tar (what `ctr images import`
      and `buildah pull oci-archive:FILE` read). Each --layer-tar (a tar, gzipped or not,
      e.g. a root filesystem) becomes one layer; the --add/--dir entries form one more,
      owned by root with mtime 0. The index entry carries `io.containerd.image.name`
      (REF, which ctr import uses as the image's name) and
      `org.opencontainers.image.ref.name` (REF's tag). Same inputs, same digests.

  oci_archive.py name --archive FILE --name REF
      Rewrites the index of an OCI archive (e.g. from `buildah push oci-archive:`) so its
      single image carries those two annotations.

  oci_archive.py context-hash --context DIR [--ignorefile FILE] [--extra FILE]...
      Prints a sha256 over the files a build of DIR sends as its context (paths, the
      executable bit, symlink targets, contents), skipping what FILE excludes with
      .dockerignore rules (`*`, `?`, `**`, `!`, a pattern excludes everything under a
      matching directory), plus each --extra file. build.sh keys its image cache on it.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import stat
import sys
import tarfile
import tempfile

CHUNK = 1 << 20


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


class HashingWriter(io.RawIOBase):
    """A write-only file that hashes and counts what passes through it."""

    def __init__(self, out):
        self.out, self.sha, self.size = out, hashlib.sha256(), 0

    def writable(self):
        return True

    def write(self, data):
        self.out.write(data)
        self.sha.update(data)
        self.size += len(data)
        return len(data)


class Blobs:
    def __init__(self, root):
        self.dir = os.path.join(root, "blobs", "sha256")
        os.makedirs(self.dir)

    def add_bytes(self, data, media_type):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.dir, digest), "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}

    def add_layer(self, write_tar):
        """write_tar(fileobj) writes an uncompressed tar; returns (descriptor, diff_id)."""
        tmp = os.path.join(self.dir, "layer.tmp")
        with open(tmp, "wb") as raw:
            compressed = HashingWriter(raw)
            # mtime=0 and no file name in the gzip header: the same tar, the same digest.
            with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0,
                               compresslevel=6) as gz:
                uncompressed = HashingWriter(gz)
                write_tar(uncompressed)
        digest = compressed.sha.hexdigest()
        os.replace(tmp, os.path.join(self.dir, digest))
        desc = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": "sha256:" + digest, "size": compressed.size}
        return desc, "sha256:" + uncompressed.sha.hexdigest()


def copy_tar(path):
    def write(out):
        opener = gzip.open if path.endswith((".gz", ".tgz")) else open
        with opener(path, "rb") as f:
            shutil.copyfileobj(f, out, CHUNK)
    return write


def entries_tar(adds, dirs):
    """One layer of --dir and --add entries, parents first, root-owned, mtime 0."""
    def info(name, kind, mode):
        ti = tarfile.TarInfo(name.lstrip("/"))
        ti.type, ti.mode, ti.mtime, ti.uid, ti.gid = kind, mode, 0, 0, 0
        ti.uname = ti.gname = ""
        return ti

    def write(out):
        seen = set()
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            def parents(dest):
                parts = dest.strip("/").split("/")[:-1]
                for i in range(1, len(parts) + 1):
                    d = "/".join(parts[:i])
                    if d not in seen:
                        seen.add(d)
                        tar.addfile(info(d, tarfile.DIRTYPE, 0o755))
            for dest, mode in dirs:
                parents(dest)
                if dest.strip("/") not in seen:
                    seen.add(dest.strip("/"))
                    tar.addfile(info(dest, tarfile.DIRTYPE, mode))
            for src, dest, mode in adds:
                parents(dest)
                ti = info(dest, tarfile.REGTYPE, mode)
                ti.size = os.path.getsize(src)
                with open(src, "rb") as f:
                    tar.addfile(ti, f)
    return write


def parse_mode(text, default):
    return int(text, 8) if text else default


def write_archive(root, out):
    """Tars the layout under root into out (blobs last, names sorted, mtime 0)."""
    names = []
    for base, dirnames, files in os.walk(root):
        dirnames.sort()
        for name in sorted(files):
            names.append(os.path.relpath(os.path.join(base, name), root))
    names.sort(key=lambda n: (n.startswith("blobs/"), n))
    tmp = out + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(ti)
        for name in names:
            path = os.path.join(root, name)
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = os.path.getsize(path), 0o644, 0
            with open(path, "rb") as f:
                tar.addfile(ti, f)
    os.replace(tmp, out)


def name_annotations(ref):
    tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else "latest"
    return {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": tag}


def cmd_write(args):
    env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    for kv in args.env:
        env = [e for e in env if e.split("=", 1)[0] != kv.split("=", 1)[0]] + [kv]
    config = {"Env": env}
    if args.entrypoint:
        config["Entrypoint"] = json.loads(args.entrypoint)
    if args.cmd:
        config["Cmd"] = json.loads(args.cmd)
    if args.user:
        config["User"] = args.user
    if args.workdir:
        config["WorkingDir"] = args.workdir
    if args.label:
        config["Labels"] = dict(kv.split("=", 1) for kv in args.label)

    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(args.out))) as root:
        blobs = Blobs(root)
        layers, diff_ids, history = [], [], []
        for path in args.layer_tar:
            desc, diff_id = blobs.add_layer(copy_tar(path))
            layers.append(desc)
            diff_ids.append(diff_id)
            history.append({"created": args.created,
                            "created_by": "layer " + os.path.basename(path)})
        adds = []
        for spec in args.add:
            src, dest, *mode = spec.split(":")
            adds.append((src, dest, parse_mode(mode[0] if mode else "", 0o755)))
        dirs = []
        for spec in args.dir:
            dest, *mode = spec.split(":")
            dirs.append((dest, parse_mode(mode[0] if mode else "", 0o755)))
        if adds or dirs:
            desc, diff_id = blobs.add_layer(entries_tar(adds, dirs))
            layers.append(desc)
            diff_ids.append(diff_id)
            history.append({"created": args.created, "created_by": "oci_archive.py: " +
                            " ".join(d for d, _ in dirs) + " " + " ".join(d for _, d, _ in adds)})
        image_config = {"created": args.created, "architecture": "amd64", "os": "linux",
                        "config": config, "rootfs": {"type": "layers", "diff_ids": diff_ids},
                        "history": history}
        config_desc = blobs.add_bytes(json.dumps(image_config, sort_keys=True).encode(),
                                      "application/vnd.oci.image.config.v1+json")
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": config_desc, "layers": layers}
        manifest_desc = blobs.add_bytes(json.dumps(manifest, sort_keys=True).encode(),
                                        "application/vnd.oci.image.manifest.v1+json")
        manifest_desc["platform"] = {"architecture": "amd64", "os": "linux"}
        manifest_desc["annotations"] = name_annotations(args.name)
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [manifest_desc]}
        with open(os.path.join(root, "index.json"), "w") as f:
            json.dump(index, f, sort_keys=True)
        with open(os.path.join(root, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        write_archive(root, args.out)
    print(manifest_desc["digest"])


def cmd_name(args):
    """Rewrites index.json in place: copies every other member unchanged."""
    tmp = args.archive + ".renamed"
    with tarfile.open(args.archive, "r") as src, \
            tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as dst:
        for member in src:
            if member.name.lstrip("./") == "index.json":
                index = json.load(src.extractfile(member))
                if len(index.get("manifests", [])) != 1:
                    sys.exit(f"{args.archive}: expected one image in index.json")
                m = index["manifests"][0]
                m.setdefault("annotations", {}).update(name_annotations(args.name))
                data = json.dumps(index, sort_keys=True).encode()
                member.size = len(data)
                dst.addfile(member, io.BytesIO(data))
            elif member.isfile():
                dst.addfile(member, src.extractfile(member))
            else:
                dst.addfile(member)
    os.replace(tmp, args.archive)


def ignore_patterns(path):
    rules = []
    if not path:
        return rules
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
            regex, i = "", 0
            while i < len(pattern):
                if pattern.startswith("**/", i):
                    regex, i = regex + "(?:.*/)?", i + 3
                elif pattern.startswith("**", i):
                    regex, i = regex + ".*", i + 2
                elif pattern[i] == "*":
                    regex, i = regex + "[^/]*", i + 1
                elif pattern[i] == "?":
                    regex, i = regex + "[^/]", i + 1
                else:
                    regex, i = regex + re.escape(pattern[i]), i + 1
            rules.append((re.compile(regex + r"\Z"), negate))
    return rules


def excluded(rel, rules):
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    result = False
    for regex, negate in rules:
        if any(regex.match(p) for p in prefixes):
            result = not negate
    return result


def cmd_context_hash(args):
    rules = ignore_patterns(args.ignorefile)
    h = hashlib.sha256()
    count = 0
    for base, dirnames, files in os.walk(args.context):
        rel_base = os.path.relpath(base, args.context)
        rel_base = "" if rel_base == "." else rel_base + "/"
        dirnames[:] = sorted(d for d in dirnames if not excluded(rel_base + d, rules)
                             or any(n for _, n in rules))
        for name in sorted(files + [d for d in dirnames
                                    if os.path.islink(os.path.join(base, d))]):
            rel = rel_base + name
            if excluded(rel, rules):
                continue
            path = os.path.join(base, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                digest = "link:" + os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                digest = sha256_file(path)
            else:
                continue
            h.update(f"{rel}\0{st.st_mode & 0o111:o}\0{digest}\n".encode())
            count += 1
    for extra in args.extra:
        h.update(f"extra:{extra}\0{sha256_file(extra)}\n".encode())
    print(h.hexdigest())
    print(f"{count} files in the context of {args.context}", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write")
    w.add_argument("--out", required=True)
    w.add_argument("--name", required=True)
    w.add_argument("--layer-tar", action="append", default=[])
    w.add_argument("--add", action="append", default=[])
    w.add_argument("--dir", action="append", default=[])
    w.add_argument("--entrypoint")
    w.add_argument("--cmd")
    w.add_argument("--env", action="append", default=[])
    w.add_argument("--user")
    w.add_argument("--workdir")
    w.add_argument("--label", action="append", default=[])
    w.add_argument("--created", default="1970-01-01T00:00:00Z")
    w.set_defaults(func=cmd_write)
    n = sub.add_parser("name")
    n.add_argument("--archive", required=True)
    n.add_argument("--name", required=True)
    n.set_defaults(func=cmd_name)
    c = sub.add_parser("context-hash")
    c.add_argument("--context", required=True)
    c.add_argument("--ignorefile")
    c.add_argument("--extra", action="append", default=[])
    c.set_defaults(func=cmd_context_hash)
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
