"""How each system stores and loads an object: one small class per (system, way of
using it), all with write(key, obj) and read(key). A method runs inside a fresh worker
process (step.py); `where` tells it the places the run set up (directories, the
vineyardd socket, the MinIO endpoint)."""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
BUCKET = "peers"


def _fsync_file_and_dir(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileMethod:
    """Files in a directory (a Cellar volume, tmpfs or the local disk)."""
    suffix = ""
    copies_note = ""

    def __init__(self, directory: str, fsync: bool = False):
        self.dir = Path(directory)
        self.fsync = fsync

    def path(self, key: str) -> Path:
        return self.dir / (key + self.suffix)

    def write(self, key, obj):
        path = self.path(key)
        self.save(obj, path)
        if self.fsync:   # the disk only: a file on disk is stored when it is synced
            _fsync_file_and_dir(path)

    def read(self, key):
        return self.load(self.path(key))


class Pickle(FileMethod):
    suffix = ".pkl"

    def save(self, obj, path):
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=5)

    def load(self, path):
        with open(path, "rb") as f:
            return pickle.load(f)


class CellarDump(FileMethod):
    suffix = ".cellar"

    def __init__(self, directory, fsync=False):
        super().__init__(directory, fsync)
        sys.path.insert(0, str(REPO / "python"))
        import cellar
        self.cellar = cellar

    def save(self, obj, path):
        self.cellar.dump(obj, str(path))

    def load(self, path):
        return self.cellar.load(str(path))


class CompatShim(FileMethod):
    """Vineyard-API code (vineyard.csi.write/read) served by python/compat on Cellar."""
    suffix = ".vineyard"

    def __init__(self, directory, fsync=False):
        super().__init__(directory, fsync)
        os.environ["CELLAR_VINEYARD_COMPAT"] = "1"   # the shim even where real vineyard is
        sys.path.insert(0, str(REPO / "python" / "compat"))
        sys.path.insert(0, str(REPO / "python"))
        import vineyard
        self.csi = vineyard.csi

    def save(self, obj, path):
        self.csi.write(obj, str(path))

    def load(self, path):
        return self.csi.read(str(path))


class Feather(FileMethod):
    """Arrow IPC (Feather v2, uncompressed), read with memory_map as pd.read_feather
    does, then converted to the DataFrame the step uses."""
    suffix = ".feather"

    def save(self, obj, path):
        import pyarrow.feather as feather
        feather.write_feather(obj, str(path), compression="uncompressed")

    def load(self, path):
        import pyarrow.feather as feather
        return feather.read_table(str(path), memory_map=True).to_pandas()


class Parquet(FileMethod):
    suffix = ".parquet"

    def save(self, obj, path):
        obj.to_parquet(path, engine="pyarrow")

    def load(self, path):
        return pd.read_parquet(path, engine="pyarrow")


class Npy(FileMethod):
    """np.save, and np.load(mmap_mode='r'): the array route that maps the file."""
    suffix = ".npy"

    def save(self, obj, path):
        np.save(path, obj)

    def load(self, path):
        return np.load(path, mmap_mode="r")


class VineyardClient:
    """Real vineyardd through its client: put() in the writer, get() in the reader. The
    object id travels through a small file, as an id travels between pipeline steps."""

    def __init__(self, socket: str, ids_dir: str):
        import vineyard
        self.client = vineyard.connect(socket)
        self.ids = Path(ids_dir)

    def write(self, key, obj):
        object_id = self.client.put(obj, persist=True)
        (self.ids / key).write_text(repr(object_id))

    def read(self, key):
        import vineyard
        return self.client.get(vineyard.ObjectID((self.ids / key).read_text().strip()))


class VineyardCsi:
    """Real Vineyard's vineyard.csi.write/read (the API python/compat stands in for). It
    finds the server by a vineyard.sock in a directory above the path, as its CSI driver
    lays volumes out; the run puts the socket there."""

    def __init__(self, directory: str):
        import vineyard.csi
        self.csi = vineyard.csi
        self.dir = Path(directory)

    def write(self, key, obj):
        self.csi.write(obj, str(self.dir / key))

    def read(self, key):
        return self.csi.read(str(self.dir / key))


class S3Pickle:
    """pickle streamed to and from MinIO through s3fs, as Kedro's PickleDataset and
    fsspec-based steps do."""

    def __init__(self, endpoint: str):
        import s3fs
        self.fs = s3fs.S3FileSystem(key="minio", secret="minio123", use_listings_cache=False,
                                    client_kwargs={"endpoint_url": endpoint})

    def write(self, key, obj):
        with self.fs.open(f"{BUCKET}/{key}.pkl", "wb") as f:
            pickle.dump(obj, f, protocol=5)

    def read(self, key):
        with self.fs.open(f"{BUCKET}/{key}.pkl", "rb") as f:
            return pickle.load(f)


class S3Parquet(S3Pickle):
    def write(self, key, obj):
        with self.fs.open(f"{BUCKET}/{key}.parquet", "wb") as f:
            obj.to_parquet(f, engine="pyarrow")

    def read(self, key):
        with self.fs.open(f"{BUCKET}/{key}.parquet", "rb") as f:
            return pd.read_parquet(f, engine="pyarrow")


# name -> (system, how, factory(where), workloads it applies to)
FRAME, ARRAY = "frame", "array"
METHODS = {
    "cellar-pickle": ("Cellar volume", "pickle", lambda w: Pickle(w["cellar"]), {FRAME, ARRAY}),
    "cellar-dump": ("Cellar volume", "cellar.dump/load",
                    lambda w: CellarDump(w["cellar"]), {FRAME, ARRAY}),
    "cellar-dump-huge": ("Cellar volume, huge pages", "cellar.dump/load",
                         lambda w: CellarDump(w["cellar_huge"]), {FRAME, ARRAY}),
    "cellar-compat": ("Cellar volume", "vineyard.csi via python/compat",
                      lambda w: CompatShim(w["cellar"]), {FRAME, ARRAY}),
    "cellar-feather": ("Cellar volume", "Feather, memory_map", lambda w: Feather(w["cellar"]),
                       {FRAME}),
    "cellar-parquet": ("Cellar volume", "Parquet", lambda w: Parquet(w["cellar"]), {FRAME}),
    "cellar-npy": ("Cellar volume", "np.save / np.load(mmap)", lambda w: Npy(w["cellar"]),
                   {ARRAY}),
    "vineyard-putget": ("Vineyard (vineyardd)", "client.put/get",
                        lambda w: VineyardClient(w["vineyard_socket"], w["ids"]), {FRAME, ARRAY}),
    "vineyard-csi": ("Vineyard (vineyardd)", "vineyard.csi.write/read",
                     lambda w: VineyardCsi(w["vineyard_csi_dir"]),
                     {FRAME, ARRAY}),
    "minio-pickle": ("MinIO (s3fs)", "pickle", lambda w: S3Pickle(w["minio"]), {FRAME, ARRAY}),
    "minio-parquet": ("MinIO (s3fs)", "Parquet", lambda w: S3Parquet(w["minio"]), {FRAME}),
    "tmpfs-pickle": ("tmpfs", "pickle", lambda w: Pickle(w["tmpfs"]), {FRAME, ARRAY}),
    "tmpfs-dump": ("tmpfs", "cellar.dump/load", lambda w: CellarDump(w["tmpfs"]), {FRAME, ARRAY}),
    "disk-pickle": ("local disk (fsync)", "pickle", lambda w: Pickle(w["disk"], fsync=True),
                    {FRAME, ARRAY}),
}
