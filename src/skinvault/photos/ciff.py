"""Canon CIFF blocks (the CRW "heap" format some early cameras put in a JPEG's APP0).

    >>> findings(b"II\\x1a\\x00\\x00\\x00HEAPJPGM" + bytes(20), "CIFF")
    []

Only what a user should know is read: the capture time (record 0x180e) and
the camera make and model (record 0x080a). Everything is bounds-checked;
a damaged heap simply yields fewer findings.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime

from skinvault.photos.findings import Category, Finding

SIGNATURE_AT = 6  # b"HEAP" after the byte order and header length
_CAPTURED_TIME = 0x180E
_MAKE_MODEL = 0x080A
_MAX_DEPTH = 8


def is_ciff(body: bytes) -> bool:
    return body[:2] in (b"II", b"MM") and body[SIGNATURE_AT : SIGNATURE_AT + 4] == b"HEAP"


def _records(block: bytes, order: str, start: int, end: int, depth: int) -> list[tuple[int, bytes]]:
    if depth > _MAX_DEPTH or end - start < 6 or end > len(block):
        return []
    (table,) = struct.unpack_from(order + "I", block, end - 4)
    table += start
    if not start <= table <= end - 6:
        return []
    (count,) = struct.unpack_from(order + "H", block, table)
    out: list[tuple[int, bytes]] = []
    for i in range(min(count, (end - table - 2) // 10)):
        tag, size, offset = struct.unpack_from(order + "HII", block, table + 2 + 10 * i)
        if tag & 0xC000 == 0x4000:  # the value is stored in the entry itself
            out.append((tag & 0x3FFF, block[table + 6 + 10 * i : table + 12 + 10 * i + 4]))
            continue
        lo, hi = start + offset, start + offset + size
        if hi > end or lo < start:
            continue
        if tag & 0x3800 in (0x2800, 0x3000):  # a sub-heap
            out.extend(_records(block, order, lo, hi, depth + 1))
        else:
            out.append((tag & 0x3FFF, block[lo:hi]))
    return out


def findings(block: bytes, where: str = "CIFF") -> list[Finding]:
    if not is_ciff(block) or len(block) < 14:
        return []
    order = "<" if block[:2] == b"II" else ">"
    (header,) = struct.unpack_from(order + "I", block, 2)
    out: list[Finding] = []
    for tag, value in _records(block, order, header, len(block), 0):
        if tag == _CAPTURED_TIME & 0x3FFF and len(value) >= 4:
            (stamp,) = struct.unpack_from(order + "I", value)
            when = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
            out.append(
                Finding(
                    Category.TIME,
                    "Date and time",
                    where,
                    f"Date and time taken: {when} — shows when",
                )
            )
        elif tag == _MAKE_MODEL & 0x3FFF:
            text = " ".join(p.decode("latin-1") for p in value.split(b"\x00") if p.strip())
            if text:
                out.append(
                    Finding(
                        Category.DEVICE,
                        "Camera model",
                        where,
                        f"Camera {text[:60]} — narrows down whose device took it",
                    )
                )
    return out
