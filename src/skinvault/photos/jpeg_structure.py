"""What a JPEG's structure says about whether libjpeg decodes its pixels, without decoding them.

    >>> decodable([(0xC0, sof), (0xDB, dqt), (0xC4, dht), (0xDA, sos)])  # doctest: +SKIP
    True

(``photos/jpeg.clean`` passes every kept frame, table and scan header, at its defined
size, and whether a restarting scan held a stray byte pair; ``Cleaned.decodable`` carries
the answer to the upload.)

libjpeg (libjpeg-turbo, which Pillow ships) stops with an error on a few structural faults
that a segment-level parse does not see; :func:`decodable` refuses those the scrubber
keeps (:class:`DamagedFile`), so no cleaned copy is written that no viewer can open:

- a second scan after a sequential scan that held every component (libjpeg expects the
  end of the image there);
- a Huffman table that is no prefix code (more than 256 codes, or more codes of a length
  than that length can hold), or a DC table with a symbol over 15, used by a scan.

(A byte pair 0xFF 0x01-0xBF inside the image data, which ends it at no marker libjpeg
knows, is found by :func:`skinvault.photos.jpeg.parse` as it finds the scan's end.)

It returns True only when the structure proves every pixel decodes: one baseline,
extended or progressive Huffman frame of 8-bit grey or YCbCr/RGB, every quantisation
and Huffman table a scan uses defined before it and valid, every scan's fields in
range (ITU T.81 B.2, G.1.1.1.1; libjpeg's limits such as 10 blocks per MCU), and no
stray marker in a scan that restarts. The upload then skips decoding the pixels at all
(services/photo_store.py); anything else — arithmetic coding, 12-bit, CMYK, an absent
table libjpeg would fill in — is False: the upload decodes it to find out. Which faults
libjpeg stops on, and that every mutant called decodable does decode, is checked
against Pillow itself over seeded mutants of real photos (tests/unit/test_jpeg_structure.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from skinvault.errors import DamagedFile

_HUFFMAN_FRAMES = {0xC0, 0xC1, 0xC2}  # baseline, extended sequential, progressive
_ALL_FRAMES = {*range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC}
DQT, DHT, DRI, SOS, DNL, DAC, EXP = 0xDB, 0xC4, 0xDD, 0xDA, 0xDC, 0xCC, 0xDF
_MAX_BLOCKS_IN_MCU = 10  # libjpeg's D_MAX_BLOCKS_IN_MCU
_MAX_DIMENSION = 65500  # libjpeg's JPEG_MAX_DIMENSION


def _prefix_code(counts: bytes) -> bool:
    """Whether code-length counts (BITS, 16 bytes) build a canonical Huffman code (C.2)."""
    code = 0
    for length, count in enumerate(counts, 1):
        code += count
        if code > 1 << length:
            return False
        code <<= 1
    return True


class _Tables:
    """The quantisation and Huffman tables defined so far, as a decoder holds them."""

    def __init__(self) -> None:
        self.quant: set[int] = set()
        self.huff: dict[tuple[int, int], tuple[bool, bool]] = {}  # (class, id): (valid, dc-ok)

    def read_dqt(self, body: bytes) -> None:
        pos = 0
        while pos < len(body):
            kind = body[pos]
            self.quant.add(kind & 15)
            pos += 1 + 64 * (1 + (kind >> 4))

    def read_dht(self, body: bytes) -> None:
        pos = 0
        while pos + 17 <= len(body):
            kind, counts = body[pos], body[pos + 1 : pos + 17]
            total = sum(counts)
            symbols = body[pos + 17 : pos + 17 + total]
            valid = total <= 256 and _prefix_code(counts)
            self.huff[(kind >> 4, kind & 15)] = (valid, all(s <= 15 for s in symbols))
            pos += 17 + total

    def huffman(self, cls: int, ident: int) -> bool:
        """True when the table is defined and usable; refuse when it is defined and bogus."""
        table = self.huff.get((cls, ident))
        if table is None:
            return False  # libjpeg fills in a standard table for 0 and 1: not proven
        valid, dc_ok = table
        if not valid or (cls == 0 and not dc_ok):
            raise DamagedFile(
                f"damaged: Huffman table {ident} is no valid code, so its image data cannot"
                " be decoded"
            )
        return True


def decodable(bodies: Sequence[tuple[int, bytes]], *, strays: bool = False) -> bool:
    """Whether the kept segments (marker, payload at its defined size, in file order; RSTn
    and TEM left out) prove libjpeg decodes every pixel. Raises :class:`DamagedFile` on a
    fault libjpeg stops on. ``strays``: a scan that restarts holds a byte pair that is no
    marker (libjpeg may resync past it, or stop)."""
    tables = _Tables()
    frame: tuple[int, bytes] | None = None
    components: dict[int, tuple[int, int, int]] = {}  # id: (h, v, quant table)
    proven = not strays
    scans = 0
    single_scan = False
    for marker, body in bodies:
        if marker == DQT:
            tables.read_dqt(body)
        elif marker == DHT:
            tables.read_dht(body)
        elif marker in (DNL, DAC, EXP):
            proven = False
        elif marker in _ALL_FRAMES:
            if frame is not None:
                proven = False  # libjpeg refuses a second frame; leave it to the decode
            frame = (marker, body)
            components = {
                body[6 + 3 * i]: (body[7 + 3 * i] >> 4, body[7 + 3 * i] & 15, body[8 + 3 * i])
                for i in range(body[5])
            }
            proven = proven and _frame_ok(marker, body, components)
        elif marker == SOS:
            if frame is None:
                return False
            if single_scan:
                raise DamagedFile(
                    "damaged: a second scan follows a scan that held the whole image"
                    " (decoders expect the end of the image there)"
                )
            scans += 1
            ok, single_scan = _scan_ok(frame[0], body, components, tables, scans)
            proven = proven and ok
    return proven and frame is not None and scans > 0


def _frame_ok(marker: int, body: bytes, components: dict[int, tuple[int, int, int]]) -> bool:
    height, width = int.from_bytes(body[1:3], "big"), int.from_bytes(body[3:5], "big")
    return (
        marker in _HUFFMAN_FRAMES
        and body[0] == 8
        and body[5] in (1, 3)
        and len(components) == body[5]
        and 0 < height <= _MAX_DIMENSION
        and 0 < width <= _MAX_DIMENSION
        and all(1 <= h <= 4 and 1 <= v <= 4 and q <= 3 for h, v, q in components.values())
    )


def _scan_ok(
    frame: int,
    body: bytes,
    components: dict[int, tuple[int, int, int]],
    tables: _Tables,
    number: int,
) -> tuple[bool, bool]:
    """(proven, whether this scan is a sequential image's only scan) for one SOS."""
    n = body[0]
    ids = [body[1 + 2 * i] for i in range(n)]
    selectors = [body[2 + 2 * i] for i in range(n)]
    ss, se, approx = body[1 + 2 * n], body[2 + 2 * n], body[3 + 2 * n]
    ah, al = approx >> 4, approx & 15
    if not 1 <= n <= 4 or len(set(ids)) != n or any(c not in components for c in ids):
        return False, False
    if n > 1 and sum(components[c][0] * components[c][1] for c in ids) > _MAX_BLOCKS_IN_MCU:
        return False, False
    if any(components[c][2] not in tables.quant for c in ids):
        return False, False
    progressive = frame == 0xC2
    if not progressive:
        if (ss, se, ah, al) != (0, 63, 0, 0) or n != len(components) or number != 1:
            return False, False
        # Every table is looked at (a bogus one is refused even after an absent one).
        found = [tables.huffman(0, s >> 4) for s in selectors]
        found += [tables.huffman(1, s & 15) for s in selectors]
        return all(found), True
    # T.81 G.1.1.1.1, as libjpeg checks it: a DC band alone, AC bands of one component,
    # successive approximation by one bit.
    if (ss == 0 and se != 0) or (ss > 0 and (ss > se or se > 63 or n != 1)):
        return False, False
    if (ah != 0 and al != ah - 1) or al > 13:
        return False, False
    if ss == 0:  # the DC first pass decodes with the DC table; its refinements need none
        ok = ah != 0 or all([tables.huffman(0, s >> 4) for s in selectors])
    else:
        ok = all([tables.huffman(1, s & 15) for s in selectors])
    return ok, False
