"""Zero-copy pickle files for data-science pipeline steps.

``cellar.dump(obj, path)`` writes ``obj`` as a pickle-protocol-5 stream whose out-of-band
buffers (numpy arrays, pandas columns, anything exporting ``PickleBuffer``) sit in the
same file at aligned offsets. ``cellar.load(path)`` maps the file once and hands those
buffers straight to the unpickler, so arrays point into the mapping: loading costs
milliseconds whatever the size. On a Cellar volume with FUSE passthrough the mapping is
the node's shared memory that the writer filled.

This module is self-contained (standard library only): copying this one file into an
image is a complete install. The file layout is specified in FORMAT.md next to it.
"""

import collections
import io
import mmap
import os
import pickle
import secrets
import struct
import sys
import threading
import zlib

__all__ = ["dump", "load", "info", "FormatError", "FileInfo", "BufferInfo"]
__version__ = "0.1.0"

MAGIC = b"\x89CELLAR\n"
VERSION = 1

# Bit 0 of the header flags: every buffer-table entry carries the CRC-32 of its buffer.
FLAG_BUFFER_CRC = 0x1
_KNOWN_FLAGS = FLAG_BUFFER_CRC

# Fixed header, little-endian, 64 bytes; see FORMAT.md for the meaning of each field.
_HEADER = struct.Struct("<8sHHIQQQII16x")
# One buffer-table entry: offset, length, crc32, reserved.
_ENTRY = struct.Struct("<QQII")
_CHECKSUM_AT = 44  # byte offset of the checksum field inside the fixed header

# Buffers smaller than a page are packed at cache-line alignment, which satisfies every
# numpy dtype, instead of costing a page each (a frame of many tiny columns would
# otherwise grow by 4 KiB per column).
_MIN_ALIGN = 64
_PAGE = mmap.PAGESIZE
_MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000 if sys.platform == "linux" else 0)

BufferInfo = collections.namedtuple("BufferInfo", "offset length crc32")
FileInfo = collections.namedtuple(
    "FileInfo",
    "version flags alignment file_length header_length stream_offset stream_length buffers",
)


class FormatError(ValueError):
    """A file that is not a complete, intact cellar file: truncated, corrupted, foreign,
    or written by a newer format version. ``path`` and ``reason`` say which and why."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


# ---------------------------------------------------------------------------------------
# dump


def dump(obj, path, *, buffer_checksums=False, fsync=False):
    """Write ``obj`` to ``path`` so that ``load`` can map it back without copying.

    The file appears atomically: it is written under a temporary name in the same
    directory and renamed over ``path``, so a concurrent ``load`` sees either the old file
    or the complete new one. The header and pickle stream always carry a checksum;
    ``buffer_checksums=True`` also stores a CRC-32 per buffer for ``load(verify=True)``,
    at the price of reading all the data once more (off by default: it would make dump
    slower than ``to_pickle``). ``fsync`` makes the file and the rename durable against a
    crash of the machine (pointless on memory-backed volumes, costly on disks).

    ``path`` may also be a binary file object open for writing (what Kedro's
    ``PickleDataset(backend="cellar")`` passes): the file is then written from its current
    position, in order, and neither renamed nor synced; that is the caller's to do.

    Raises what ``pickle.dumps`` raises for unpicklable objects and ``OSError`` for I/O
    errors (ENOSPC when the volume is full); no partial file is left behind at ``path``.
    """
    buffers = []
    stream = _pickle(obj, buffers)
    offsets, header_length, file_length = _plan_layout(len(stream), [len(b) for b in buffers])
    flags = FLAG_BUFFER_CRC if buffer_checksums else 0
    if _is_file_object(path, "write"):
        crcs = [_crc32(b) for b in buffers] if buffer_checksums else [0] * len(buffers)
        entries = [BufferInfo(offset, len(buf), crc)
                   for buf, offset, crc in zip(buffers, offsets, crcs)]
        header = _pack_header(flags, file_length, header_length, stream, entries)
        _write_sequentially(path, header, stream, buffers, offsets)
        return
    path = os.fspath(path)

    def write_body(fd):
        # The CRCs are computed on another core while this one writes (zlib and write(2)
        # both release the GIL), so with a core to spare they add little wall time.
        crcs = _Checksummer(buffers, buffer_checksums)
        try:
            os.ftruncate(fd, file_length)  # padding between sections reads back as zeros
            _pwrite_all(fd, stream, header_length)
            for buf, offset in zip(buffers, offsets):
                _pwrite_all(fd, buf, offset)
        finally:
            checksums = crcs.result()
        entries = [BufferInfo(offset, len(buf), crc)
                   for buf, offset, crc in zip(buffers, offsets, checksums)]
        _pwrite_all(fd, _pack_header(flags, file_length, header_length, stream, entries), 0)

    _write_atomically(path, write_body, fsync)


def _pickle(obj, buffers):
    """The protocol-5 stream of ``obj``; its out-of-band buffers (memoryviews, or
    ``_Strided`` arrays) are appended to ``buffers``."""
    out = io.BytesIO()
    strided = {}
    _Pickler(out, strided, protocol=5, buffer_callback=_collector(buffers, strided)).dump(obj)
    return out.getbuffer()


class _Pickler(pickle.Pickler):
    """Also sends out of band the numpy arrays that numpy itself copies into the stream:
    datetime64/timedelta64 ones (pandas' datetime columns) and non-contiguous ones.
    Arrays are recognised by type name, so numpy is only imported where it is in use.

    A non-contiguous array is not copied here: pandas' row slices of a frame (a split into
    train and test) are such arrays, and a C-order copy of each would double the memory
    and the time of the dump. It goes out of band as a placeholder of its length that
    ``_collector`` swaps for a ``_Strided``, which is written from the array's own memory."""

    def __init__(self, out, strided, **kwargs):
        super().__init__(out, **kwargs)
        self._strided = strided  # id(placeholder) -> (placeholder, _Strided)

    def reducer_override(self, obj):
        if _is_pandas_block(obj):
            # pandas 3's Block.__reduce_ex__ copies non-contiguous values into C order
            # first (a row slice of a frame is such a block); its __reduce__ does not,
            # and the values then come here as the arrays they are.
            return obj.__reduce__()
        if not _numpy_copies_in_band(obj):
            return NotImplemented
        contiguous = obj.flags.c_contiguous or obj.flags.f_contiguous
        order = "F" if obj.flags.f_contiguous and not obj.flags.c_contiguous else "C"
        data = obj.view("u8") if obj.dtype.kind in "mM" else obj  # datetimes export no buffer
        if contiguous:
            return _rebuild_ndarray, (pickle.PickleBuffer(data), obj.dtype, obj.shape, order)
        # A private anonymous mapping that is never touched: its length costs no memory
        # (MAP_NORESERVE: no commit charge either). Writable as the array is, because the
        # stream records a read-only buffer as such and load would keep it read-only.
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if data.flags.writeable else 0)
        placeholder = mmap.mmap(-1, data.nbytes, flags=mmap.MAP_PRIVATE | _MAP_NORESERVE,
                                prot=prot)
        self._strided[id(placeholder)] = (placeholder, _Strided(data))
        return _rebuild_ndarray, (pickle.PickleBuffer(placeholder), obj.dtype, obj.shape, "C")


class _Strided:
    """A non-contiguous numpy array as one buffer of the file: its bytes in C order, taken
    from the array's memory run by run. Runs are the largest C-contiguous sub-arrays got
    by fixing leading indexes (a row of a pandas block); where those would be small, rows
    along the first axis are gathered through a scratch copy of a few MiB instead."""

    _MIN_RUN = 64 << 10
    _SCRATCH = 8 << 20

    def __init__(self, array):
        self._array = array
        self._length = array.nbytes

    def __len__(self):
        return self._length

    def runs(self):
        """Memoryviews of the array's bytes in C order, one after another."""
        import numpy

        a = self._array
        fixed = 0
        while fixed < a.ndim and not a[(0,) * fixed].flags.c_contiguous:
            fixed += 1
        run_bytes = a[(0,) * fixed].nbytes if fixed < a.ndim else a.itemsize
        if fixed < a.ndim and run_bytes >= self._MIN_RUN:
            for index in numpy.ndindex(*a.shape[:fixed]):
                yield memoryview(a[index].reshape(-1)).cast("B")
            return
        rows = max(1, self._SCRATCH // max(1, a.nbytes // a.shape[0]))
        for start in range(0, a.shape[0], rows):
            yield memoryview(numpy.ascontiguousarray(a[start:start + rows]).reshape(-1)).cast("B")

def _is_pandas_block(obj):
    """A pandas internal Block (recognised by name, so pandas is only imported where in use);
    every one has a __reduce__ of its own."""
    cls = type(obj)
    return cls.__module__ == "pandas.core.internals.blocks" and cls.__name__.endswith("Block")


def _numpy_copies_in_band(obj):
    cls = type(obj)
    if cls.__name__ != "ndarray" or cls.__module__ != "numpy":
        return False  # subclasses (masked arrays, matrices) keep their own reduction
    dtype = obj.dtype
    if dtype.hasobject or dtype.itemsize == 0:
        return False
    if dtype.kind in "mM":
        return True
    # Structured dtypes may hold datetime fields, which no buffer can export: left to numpy.
    return not (obj.flags.c_contiguous or obj.flags.f_contiguous) and dtype.kind != "V"


def _rebuild_ndarray(buffer, dtype, shape, order):
    """Unpickling half of _Pickler.reducer_override: wraps the buffer, no copy."""
    import numpy

    return numpy.frombuffer(buffer, dtype=dtype).reshape(shape, order=order)


def _collector(buffers, strided):
    """The pickler's buffer_callback: keep contiguous buffers out of band, and put the
    ``_Strided`` array in the place of its placeholder."""

    def collect(pickle_buffer):
        try:
            raw = pickle_buffer.raw()
        except BufferError:
            return True  # not contiguous: let pickle copy it into the stream
        entry = strided.get(id(raw.obj))
        buffers.append(entry[1] if entry is not None and entry[0] is raw.obj else raw)
        return False

    return collect


def _plan_layout(stream_length, lengths):
    """Offsets of the buffers, the header length and the file length."""
    header_length = _HEADER.size + _ENTRY.size * len(lengths)
    position = header_length + stream_length
    offsets = []
    for length in lengths:
        position = _round_up(position, _PAGE if length >= _PAGE else _MIN_ALIGN)
        offsets.append(position)
        position += length
    return offsets, header_length, position


def _round_up(value, alignment):
    return (value + alignment - 1) // alignment * alignment


def _pack_header(flags, file_length, stream_offset, stream, entries):
    """The header and buffer table; the stream starts right after them."""
    header = bytearray(_HEADER.size + _ENTRY.size * len(entries))
    _HEADER.pack_into(header, 0, MAGIC, VERSION, flags, _PAGE, file_length, stream_offset,
                      len(stream), len(entries), 0)
    for i, entry in enumerate(entries):
        _ENTRY.pack_into(header, _HEADER.size + i * _ENTRY.size, *entry, 0)
    struct.pack_into("<I", header, _CHECKSUM_AT, _checksum(header, stream))
    return header


def _checksum(header, stream):
    """CRC-32 of the header (its checksum field taken as zero) followed by the stream."""
    crc = zlib.crc32(memoryview(header)[:_CHECKSUM_AT])
    crc = zlib.crc32(b"\0\0\0\0", crc)
    crc = zlib.crc32(memoryview(header)[_CHECKSUM_AT + 4:], crc)
    return zlib.crc32(stream, crc)


def _is_file_object(target, method):
    return hasattr(target, method) and not isinstance(target, (str, bytes, os.PathLike))


def _write_sequentially(file, header, stream, buffers, offsets):
    """The file's bytes in order, for a file object (no pwrite): the zeros between
    sections are written out."""
    position = 0
    for data, offset in ((header, 0), (stream, len(header)), *zip(buffers, offsets)):
        if offset > position:
            _write_all(file, bytes(offset - position))
        for view in _pieces(data):
            _write_all(file, view)
        position = offset + len(data)


def _write_all(file, view):
    done = 0
    while done < len(view):
        count = file.write(view[done:])
        done += len(view) - done if count is None else count


def _pwrite_all(fd, data, offset):
    """Write all of ``data`` (bytes-like, or a ``_Strided``) at ``offset``: one write(2)
    stops short of 2 GiB."""
    for view in _pieces(data):
        done = 0
        while done < len(view):
            done += os.pwrite(fd, view[done:], offset + done)
        offset += len(view)


def _pieces(data):
    return data.runs() if isinstance(data, _Strided) else (memoryview(data).cast("B"),)


def _crc32(data):
    crc = 0
    for view in _pieces(data):
        crc = zlib.crc32(view, crc)
    return crc


class _Checksummer:
    """CRC-32 of each buffer (0 when disabled), in a background thread when there is
    enough data to pay for one."""

    _THREAD_THRESHOLD = 16 << 20

    def __init__(self, buffers, enabled):
        self._buffers = buffers
        self._crcs = [0] * len(buffers)
        self._thread = None
        if not enabled:
            return
        if sum(len(b) for b in buffers) >= self._THREAD_THRESHOLD:
            self._thread = threading.Thread(target=self._run, name="cellar-crc", daemon=True)
            self._thread.start()
        else:
            self._run()

    def _run(self):
        self._crcs = [_crc32(b) for b in self._buffers]

    def result(self):
        if self._thread is not None:
            self._thread.join()
        return self._crcs


def _write_atomically(path, write_body, fsync):
    directory, name = os.path.split(os.path.abspath(path))
    temp_path, fd = _create_temp(directory, name)
    try:
        try:
            write_body(fd)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp_path, path)
    except BaseException:
        _unlink_quietly(temp_path)
        raise
    if fsync:
        _fsync_directory(directory)


def _create_temp(directory, name):
    """Create a fresh hidden file next to the target; rename(2) only works within one
    filesystem. Mode 0666 minus the umask, like open(): the reader may be another uid."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    for _ in range(100):
        # The name is cut so that a target name near NAME_MAX still leaves room.
        temp_path = os.path.join(directory, f".{name[:64]}.{secrets.token_hex(6)}.cellar-tmp")
        try:
            return temp_path, os.open(temp_path, flags, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(f"{directory}: could not create a unique temporary file")


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_directory(directory):
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------
# load


def load(path, *, writable=False, verify=False):
    """Read an object written by ``dump``, its buffers mapped from the file, not copied.

    The file is mapped read-only, so arrays come back read-only. ``writable=True`` maps
    it copy-on-write: in-place changes are private to this process and never reach the
    file. ``verify=True`` also checks every buffer against its stored CRC-32, which
    reads all the data (the header and the pickle stream are always checked).

    The mapping lives as long as any object that points into it. Do not truncate or
    rewrite a file in place while it is loaded (``dump`` never does: it renames):
    touching a page past a shortened file raises SIGBUS.

    ``path`` may also be a binary file object open for reading (what Kedro's
    ``PickleDataset(backend="cellar")`` passes): the whole file behind its descriptor is
    mapped, as for a path; one without a descriptor (an S3 stream) is read into memory.

    Raises ``FormatError`` for a truncated, corrupted, foreign or too-new file, and
    ``OSError`` when the file cannot be opened; an object whose classes cannot be
    imported raises what ``pickle.loads`` raises.
    """
    if _is_file_object(path, "read"):
        name = str(getattr(path, "name", "<file object>"))
        data = _map_file_object(path, name, writable)
        layout = _parse(data, name)
        if verify:
            _verify_buffers(data, layout, name)
        return _unpickle(data, layout, name)
    path = os.fspath(path)
    data, layout = _open_validated(path, writable, verify)
    return _unpickle(data, layout, path)


def info(path, *, verify=False):
    """The validated layout of a cellar file as a ``FileInfo``, without unpickling it."""
    return _open_validated(os.fspath(path), False, verify)[1]


def _open_validated(path, writable, verify):
    data = _map_file(path, writable)
    layout = _parse(data, path)
    if verify:
        _verify_buffers(data, layout, path)
    return data, layout


def _map_file(path, writable):
    """A memoryview of the whole file: a shared read-only or private copy-on-write
    mapping, or the file's bytes where the filesystem cannot map (a copy, but correct)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return _map_fd(fd, path, writable)
    finally:
        os.close(fd)


def _map_file_object(file, name, writable):
    """The file object's whole file, mapped through its descriptor; read when it has none."""
    try:
        fd = file.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        data = file.read()
        if len(data) < _HEADER.size:
            _check_magic(bytes(data[:len(MAGIC)]), name)
            raise FormatError(name, f"truncated: file is {len(data)} bytes, shorter than the "
                                    f"{_HEADER.size}-byte cellar header")
        return memoryview(bytearray(data)) if writable else memoryview(data).toreadonly()
    return _map_fd(fd, name, writable)


def _map_fd(fd, path, writable):
    """A memoryview of the whole file behind ``fd`` (see _map_file); ``fd`` stays open."""
    size = os.fstat(fd).st_size
    if size < _HEADER.size:
        _check_magic(os.pread(fd, len(MAGIC), 0), path)
        raise FormatError(path, f"truncated: file is {size} bytes, shorter than the "
                                f"{_HEADER.size}-byte cellar header")
    try:
        mapping = mmap.mmap(fd, size, access=mmap.ACCESS_COPY if writable else mmap.ACCESS_READ)
    except OSError:
        mapping = _read_whole(fd, size)
        return memoryview(mapping) if writable else memoryview(mapping).toreadonly()
    return memoryview(mapping)


def _read_whole(fd, size):
    data = bytearray(size)
    view = memoryview(data)
    done = 0
    while done < size:
        count = os.preadv(fd, [view[done:]], done)
        if count == 0:
            break
        done += count
    return data[:done]


def _parse(data, path):
    """Validate everything but the buffers' contents; return the FileInfo."""
    if len(data) < _HEADER.size:
        raise FormatError(path, f"file is {len(data)} bytes, shorter than the cellar header")
    (magic, version, flags, alignment, file_length, stream_offset, stream_length,
     buffer_count, stored_crc) = _HEADER.unpack_from(data, 0)
    _check_magic(magic, path)
    if version > VERSION:
        raise FormatError(path, f"format version {version} is newer than this cellar "
                                f"{__version__} reads (up to {VERSION}): upgrade cellar")
    if version < 1:
        raise FormatError(path, f"invalid format version {version}")
    if flags & ~_KNOWN_FLAGS:
        raise FormatError(path, f"unknown header flags {flags:#x}: written by a newer cellar?")
    size = len(data)
    if file_length != size:
        what = "truncated" if size < file_length else "has trailing bytes"
        raise FormatError(path, f"{what}: file is {size} bytes but its header records "
                                f"{file_length} (or the header is corrupted)")
    header_length = _HEADER.size + _ENTRY.size * buffer_count
    if header_length > size:
        raise FormatError(path, f"corrupted header: a table of {buffer_count} buffers does "
                                f"not fit in a {size}-byte file")
    stream_end = stream_offset + stream_length
    if stream_offset < header_length or stream_end > size:
        raise FormatError(path, f"corrupted header: pickle stream [{stream_offset}, "
                                f"{stream_end}) lies outside the file")
    if _checksum(data[:header_length], data[stream_offset:stream_end]) != stored_crc:
        raise FormatError(path, "checksum mismatch: header or pickle stream is corrupted")
    if alignment < _MIN_ALIGN or alignment & (alignment - 1):
        raise FormatError(path, f"invalid alignment {alignment}")
    buffers = _parse_buffer_table(data, buffer_count, stream_end, path)
    return FileInfo(version, flags, alignment, file_length, header_length, stream_offset,
                    stream_length, buffers)


def _parse_buffer_table(data, buffer_count, stream_end, path):
    """Buffers must follow the stream in file order, aligned and without overlap; a
    checksum-valid table that breaks this was written by a broken writer."""
    buffers = []
    previous_end = stream_end
    for i in range(buffer_count):
        offset, length, crc, _ = _ENTRY.unpack_from(data, _HEADER.size + i * _ENTRY.size)
        if offset % _MIN_ALIGN or offset < previous_end or offset + length > len(data):
            raise FormatError(path, f"buffer {i} at [{offset}, {offset + length}) is "
                                    f"misaligned, overlapping or outside the file")
        buffers.append(BufferInfo(offset, length, crc))
        previous_end = offset + length
    return buffers


def _check_magic(head, path):
    """Reject a file whose first bytes are not the magic (or, if shorter, its start)."""
    if not MAGIC.startswith(bytes(head)):
        raise FormatError(path, f"not a cellar file: {_describe_foreign(bytes(head))}")


def _describe_foreign(head):
    """Name the likely format of a file that is not ours, to point at the right reader."""
    if head[:1] == b"\x80":
        return "it starts like a plain pickle (use pickle.load or pd.read_pickle)"
    if head.startswith(b"\x93NUMPY"):
        return "it is a .npy file (use np.load)"
    if head.startswith(b"PAR1"):
        return "it is a Parquet file (use pd.read_parquet)"
    return f"bad magic {head!r}, expected {MAGIC!r}"


def _verify_buffers(data, layout, path):
    if not layout.flags & FLAG_BUFFER_CRC:
        raise FormatError(path, "cannot verify: written without buffer checksums")
    for i, buf in enumerate(layout.buffers):
        if zlib.crc32(data[buf.offset:buf.offset + buf.length]) != buf.crc32:
            raise FormatError(path, f"checksum mismatch in buffer {i} at "
                                    f"[{buf.offset}, {buf.offset + buf.length}): data corrupted")


def _unpickle(data, layout, path):
    stream = data[layout.stream_offset:layout.stream_offset + layout.stream_length]
    remaining = iter([data[b.offset:b.offset + b.length] for b in layout.buffers])
    try:
        obj = pickle.loads(stream, buffers=remaining)
    except pickle.UnpicklingError as error:
        raise FormatError(path, f"pickle stream rejected: {error}") from error
    if next(remaining, None) is not None:
        raise FormatError(path, f"the table lists {len(layout.buffers)} buffers, more than "
                                f"the pickle stream uses")
    return obj


# ---------------------------------------------------------------------------------------
# command line: python3 -m cellar info|verify FILE...


def _main(argv):
    if len(argv) < 2 or argv[0] not in ("info", "verify"):
        print("usage: python3 -m cellar info|verify FILE...", file=sys.stderr)
        return 2
    status = 0
    for path in argv[1:]:
        try:
            layout = info(path)
            checked = ""
            if argv[0] == "verify" and layout.flags & FLAG_BUFFER_CRC:
                info(path, verify=True)
                checked = ", all checksums verified"
            elif argv[0] == "verify":
                checked = ", header and stream verified (buffers were written without checksums)"
        except (FormatError, OSError) as error:
            print(f"ERROR {error}", file=sys.stderr)
            status = 1
            continue
        data_bytes = sum(b.length for b in layout.buffers)
        print(f"{path}: cellar v{layout.version}, {layout.file_length} bytes, pickle stream "
              f"{layout.stream_length} bytes, {len(layout.buffers)} buffers "
              f"({data_bytes} bytes){checked}")
    return status


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
