"""Byte sizes, read by one rule everywhere in the harnesses: the rule of `cellar node`
(common/size.h) and of Kubernetes quantities, so a size means the same in a harness's
flag, in a manifest and in the daemon's `--capacity`.

  4096        bytes
  64Ki 64Mi 1Gi 2Ti 1Pi    binary: 2^10, 2^20, 2^30, 2^40, 2^50
  64k 64K 64M 1G 2T 1P     decimal: 10^3, 10^6, 10^9, 10^12, 10^15

A whole number, at most one suffix, nothing else (no "MiB", no fraction, no blanks).
"64M" is 64,000,000 bytes, as in a Kubernetes claim; write "64Mi" for 64 MiB.
"""

from __future__ import annotations

import re

UNITS = {"": 1,
         "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50,
         "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}

_SIZE = re.compile(r"([0-9]+)(Ki|Mi|Gi|Ti|Pi|k|K|M|G|T|P|)")


def parse_size(text: str) -> int:
    """The number of bytes `text` names; ValueError naming it when it names none."""
    m = _SIZE.fullmatch(text)
    if m is None:
        raise ValueError(f"size {text!r} is not a number of bytes (examples: 8Gi, 512Mi, "
                         "1048576; units Ki Mi Gi Ti Pi, or decimal k M G T P)")
    return int(m.group(1)) * UNITS[m.group(2)]
