"""Unit tests of tests/lib/sizes.py: the rule of `cellar node` (common/size_test.cc)."""

import unittest

from tests.lib.sizes import parse_size


class ParseSizeTest(unittest.TestCase):
    def test_plain_bytes(self):
        self.assertEqual(parse_size("0"), 0)
        self.assertEqual(parse_size("4096"), 4096)
        self.assertEqual(parse_size("1048576"), 1 << 20)

    def test_binary_suffixes(self):
        self.assertEqual(parse_size("64Ki"), 64 << 10)
        self.assertEqual(parse_size("512Mi"), 512 << 20)
        self.assertEqual(parse_size("1Gi"), 1 << 30)
        self.assertEqual(parse_size("2Ti"), 2 << 40)
        self.assertEqual(parse_size("1Pi"), 1 << 50)

    def test_decimal_suffixes_as_kubernetes_reads_them(self):
        self.assertEqual(parse_size("1k"), 1000)
        self.assertEqual(parse_size("1K"), 1000)
        self.assertEqual(parse_size("64M"), 64_000_000)
        self.assertEqual(parse_size("4G"), 4_000_000_000)
        self.assertEqual(parse_size("2T"), 2 * 10**12)
        self.assertEqual(parse_size("1P"), 10**15)

    def test_rejects_what_cellar_node_rejects(self):
        for text in ["", "Mi", "-1", "1.5Gi", "64MiB", "64 Mi", " 64Mi", "64mi", "1Gi ",
                     "64m", "0x10", "1e6", "64Ki64", "4KB"]:
            with self.subTest(text=text):
                with self.assertRaises(ValueError) as caught:
                    parse_size(text)
                self.assertIn(repr(text), str(caught.exception))


if __name__ == "__main__":
    unittest.main()
