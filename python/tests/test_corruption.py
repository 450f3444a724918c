"""Damaged and foreign files: every one raises cellar.FormatError naming the file and
the fault, never a crash or a silently wrong object. The header is parsed and rewritten
here from FORMAT.md alone, which also checks that the document matches the code."""

import pickle
import random
import struct
import unittest
import zlib

import support
from support import cellar

import numpy as np
import pandas as pd

# From FORMAT.md.
HEADER = struct.Struct("<8sHHIQQQII16x")
ENTRY = struct.Struct("<QQII")
FIELDS = ("magic", "version", "flags", "alignment", "file_length", "stream_offset",
          "stream_length", "buffer_count", "checksum")
CHECKSUM_AT = 44


def parse(data):
    header = dict(zip(FIELDS, HEADER.unpack_from(data, 0)))
    header["buffers"] = [ENTRY.unpack_from(data, HEADER.size + i * ENTRY.size)
                         for i in range(header["buffer_count"])]
    return header


def checksum(data, header_length, stream_offset, stream_length):
    covered = bytearray(data[:header_length])
    covered[CHECKSUM_AT:CHECKSUM_AT + 4] = bytes(4)
    covered += data[stream_offset:stream_offset + stream_length]
    return zlib.crc32(covered)


def rewrite(data, **changes):
    """``data`` with header fields changed and the checksum made valid again."""
    header = parse(data)
    header.update(changes)
    out = bytearray(data)
    HEADER.pack_into(out, 0, *(header[name] for name in FIELDS))
    header_length = HEADER.size + ENTRY.size * header["buffer_count"]
    for i, entry in enumerate(header["buffers"]):
        ENTRY.pack_into(out, HEADER.size + i * ENTRY.size, *entry)
    crc = checksum(out, header_length, header["stream_offset"], header["stream_length"])
    struct.pack_into("<I", out, CHECKSUM_AT, crc)
    return bytes(out)


def build(stream, buffers, alignment=4096):
    """A complete file per FORMAT.md: every buffer page-aligned, all checksums set."""
    header_length = HEADER.size + ENTRY.size * len(buffers)
    position = header_length + len(stream)
    entries = []
    for buf in buffers:
        position = -(-position // alignment) * alignment
        entries.append((position, len(buf), zlib.crc32(buf), 0))
        position += len(buf)
    out = bytearray(position)
    out[header_length:header_length + len(stream)] = stream
    for (offset, length, _, _), buf in zip(entries, buffers):
        out[offset:offset + length] = buf
    HEADER.pack_into(out, 0, b"\x89CELLAR\n", 1, 1, alignment, position, header_length,
                     len(stream), len(buffers), 0)
    return rewrite(bytes(out), buffers=entries)


def pickle_with_buffers(obj):
    views = []
    stream = pickle.dumps(obj, protocol=5, buffer_callback=views.append)
    return stream, [bytes(view.raw()) for view in views]


def sample_object():
    return {
        "frame": pd.DataFrame({"a": np.arange(3000, dtype=np.int64),
                               "b": np.linspace(0, 1, 3000),
                               "s": [f"v{i}" for i in range(3000)]}),
        "small": np.arange(10, dtype=np.int16),
        "empty": np.zeros(0),
        "text": "not in a buffer",
    }


class Corruption(support.TempDirTest):
    def setUp(self):
        super().setUp()
        self.good_path = self.path("good.cellar")
        cellar.dump(sample_object(), self.good_path, buffer_checksums=True)
        with open(self.good_path, "rb") as f:
            self.good = f.read()
        self.layout = cellar.info(self.good_path)
        self.bad_path = self.path("bad.cellar")

    def assert_format_error(self, data, *fragments, **load_args):
        with open(self.bad_path, "wb") as f:
            f.write(data)
        with self.assertRaises(cellar.FormatError) as caught:
            cellar.load(self.bad_path, **load_args)
        message = str(caught.exception)
        self.assertIn(self.bad_path, message)
        self.assertEqual(caught.exception.path, self.bad_path)
        for fragment in fragments:
            self.assertIn(fragment, message)
        return message

    def test_layout_matches_format_md(self):
        header = parse(self.good)
        self.assertEqual(header["magic"], b"\x89CELLAR\n")
        self.assertEqual(header["version"], 1)
        self.assertEqual(header["file_length"], len(self.good))
        self.assertEqual(header["stream_offset"], HEADER.size + ENTRY.size * header["buffer_count"])
        self.assertEqual(header["checksum"], checksum(self.good, header["stream_offset"],
                                                      header["stream_offset"],
                                                      header["stream_length"]))
        self.assertGreaterEqual(header["buffer_count"], 4)
        for offset, length, crc, reserved in header["buffers"]:
            alignment = header["alignment"] if length >= header["alignment"] else 64
            self.assertEqual(offset % alignment, 0)
            self.assertEqual(zlib.crc32(self.good[offset:offset + length]), crc)
            self.assertEqual(reserved, 0)

    def section_boundaries(self):
        layout = self.layout
        points = {0, 1, 8, 10, 12, 16, 44, 63, HEADER.size, layout.header_length,
                  layout.stream_offset + layout.stream_length // 2,
                  layout.stream_offset + layout.stream_length}
        for buf in layout.buffers:
            points.update({buf.offset, buf.offset + buf.length // 2, buf.offset + buf.length})
        points.add(len(self.good) - 1)
        points.discard(len(self.good))
        return sorted(points)

    def test_truncated_at_every_section_boundary(self):
        for size in self.section_boundaries():
            with self.subTest(truncated_to=size):
                message = self.assert_format_error(self.good[:size])
                self.assertTrue("truncated" in message or "shorter" in message, message)

    def test_trailing_bytes(self):
        self.assert_format_error(self.good + b"\0" * 4096, "trailing bytes")

    def test_every_header_byte_flipped(self):
        for position in range(self.layout.header_length):
            with self.subTest(byte=position):
                damaged = bytearray(self.good)
                damaged[position] ^= 0xFF
                self.assert_format_error(bytes(damaged))

    def test_stream_bytes_flipped(self):
        stream = range(self.layout.stream_offset,
                       self.layout.stream_offset + self.layout.stream_length)
        for position in random.Random(5).sample(stream, 200):
            with self.subTest(byte=position):
                damaged = bytearray(self.good)
                damaged[position] ^= 1 << (position % 8)
                self.assert_format_error(bytes(damaged), "checksum mismatch")

    def test_buffer_bytes_flipped_are_caught_by_verify(self):
        big = max(self.layout.buffers, key=lambda b: b.length)
        damaged = bytearray(self.good)
        damaged[big.offset + 17] ^= 0x40
        self.assert_format_error(bytes(damaged), "buffer", verify=True)
        # By default the buffers are not read at load (that is the point); the damage
        # shows up in the data, as it would in any raw file.
        cellar.load(self.bad_path)

    def test_verify_needs_buffer_checksums(self):
        cellar.dump(np.arange(10), self.bad_path)  # buffer checksums are off by default
        with open(self.bad_path, "rb") as f:
            header = parse(f.read())
        self.assertEqual((header["flags"], header["buffers"][0][2]), (0, 0))
        np.testing.assert_array_equal(cellar.load(self.bad_path), np.arange(10))
        with self.assertRaises(cellar.FormatError) as caught:
            cellar.load(self.bad_path, verify=True)
        self.assertIn("without buffer checksums", str(caught.exception))

    def test_wrong_magic(self):
        foreign = {
            "plain pickle": (pickle.dumps(sample_object(), protocol=5), "pickle.load"),
            "zeros": (bytes(len(self.good)), "bad magic"),
            "text": (b"hello, world\n" * 100, "bad magic"),
            "parquet-like": (b"PAR1" + bytes(100), "read_parquet"),
            "random": (random.Random(1).randbytes(10_000), "bad magic"),
        }
        for name, (data, hint) in foreign.items():
            with self.subTest(file=name):
                self.assert_format_error(data, "not a cellar file", hint)

    def test_npy_file(self):
        np.save(self.bad_path, np.arange(100))  # np.save appends .npy
        with self.assertRaises(cellar.FormatError) as caught:
            cellar.load(self.bad_path + ".npy")
        self.assertIn("np.load", str(caught.exception))

    def test_empty_file(self):
        self.assert_format_error(b"", "0 bytes")

    def test_newer_version(self):
        for version in (2, 0xFFFF):
            with self.subTest(version=version):
                self.assert_format_error(rewrite(self.good, version=version), "newer")

    def test_version_zero(self):
        self.assert_format_error(rewrite(self.good, version=0), "invalid format version")

    def test_unknown_flags(self):
        self.assert_format_error(rewrite(self.good, flags=0x8000), "unknown header flags")

    def test_bad_alignment(self):
        self.assert_format_error(rewrite(self.good, alignment=4095), "alignment")

    def test_overlapping_buffers_with_valid_checksum(self):
        buffers = list(parse(self.good)["buffers"])
        buffers[1] = (buffers[0][0],) + buffers[1][1:]
        self.assert_format_error(rewrite(self.good, buffers=buffers), "buffer 1")

    def test_misaligned_buffer_with_valid_checksum(self):
        buffers = list(parse(self.good)["buffers"])
        buffers[-1] = (buffers[-1][0] + 8,) + buffers[-1][1:]
        self.assert_format_error(rewrite(self.good, buffers=buffers), "misaligned")

    def test_buffer_past_the_end_with_valid_checksum(self):
        buffers = list(parse(self.good)["buffers"])
        offset, length, crc, reserved = buffers[-1]
        buffers[-1] = (offset, length + 4096, crc, reserved)
        self.assert_format_error(rewrite(self.good, buffers=buffers), "outside the file")

    def test_stream_outside_file_with_valid_checksum(self):
        self.assert_format_error(rewrite(self.good, stream_length=len(self.good)), "stream")

    def test_independent_writer_is_read(self):
        """A file built from FORMAT.md alone loads: the document is complete."""
        stream, buffers = pickle_with_buffers(sample_object())
        with open(self.bad_path, "wb") as f:
            f.write(build(stream, buffers))
        loaded = cellar.load(self.bad_path, verify=True)
        pd.testing.assert_frame_equal(loaded["frame"], sample_object()["frame"])

    def test_fewer_buffers_than_the_stream_needs(self):
        stream, buffers = pickle_with_buffers(sample_object())
        self.assert_format_error(build(stream, buffers[:-1]), "pickle stream rejected")

    def test_more_buffers_than_the_stream_uses(self):
        stream, buffers = pickle_with_buffers(sample_object())
        self.assert_format_error(build(stream, buffers + [b"extra"]),
                                 "more than the pickle stream uses")

    def test_random_damage_never_crashes(self):
        rng = random.Random(7)
        for trial in range(300):
            damaged = bytearray(self.good)
            for _ in range(rng.randint(1, 4)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            with open(self.bad_path, "wb") as f:
                f.write(damaged)
            with self.subTest(trial=trial):
                try:
                    cellar.load(self.bad_path, verify=True)
                except cellar.FormatError:
                    continue
                # Only damage in padding, which nothing reads, may pass.
                self.assertEqual(cellar.info(self.bad_path), self.layout)


class NotAFile(support.TempDirTest):
    def test_missing_file_is_os_error(self):
        with self.assertRaises(FileNotFoundError):
            cellar.load(self.path("missing"))

    def test_directory_is_os_error(self):
        with self.assertRaises(IsADirectoryError):
            cellar.load(self.dir)


if __name__ == "__main__":
    unittest.main()
