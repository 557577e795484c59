"""TIFF: lossless scrubbing by rebuilding the file around its first image.

A TIFF file is itself a TIFF structure, so its own first directory (IFD0)
holds the Artist, DateTime, Software and camera tags that EXIF blocks carry
elsewhere, next to the structural tags that say how to decode the pixels.
Cleaning writes a new classic TIFF in the same byte order holding only the
first image: the allowlisted structural tags (size, compression, strips or
tiles, colour, resolution), Orientation and the ICC profile, with the strip or
tile data copied byte for byte. Everything else goes: XMP, IPTC, Photoshop
resources, the EXIF and GPS directories, GeoTIFF coordinates, unknown tags,
and any further pages or previews.

    >>> cleaned = clean(open("scan.tif", "rb").read())      # doctest: +SKIP
    >>> findings(cleaned.data)                               # doctest: +SKIP
    []

DNG raw files and old-style JPEG compression are refused rather than rewritten.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from skinvault.errors import DamagedFile, UnsupportedFormat
from skinvault.photos import exif, icc, iptc, residue, xmp
from skinvault.photos.findings import Category, Cleaned, Finding
from skinvault.photos.ifd import EXIF_IFD, GPS_IFD, Entry, Ifd, TiffReader, walk
from skinvault.photos.limits import check_pixels

WHERE = "TIFF"
_WIDTH, _HEIGHT, _COMPRESSION = 256, 257, 259
_SAMPLES, _ROWS_PER_STRIP, _PLANAR = 277, 278, 284
_STRIP_OFFSETS, _STRIP_COUNTS = 273, 279
_TILE_WIDTH, _TILE_LENGTH, _TILE_OFFSETS, _TILE_COUNTS = 322, 323, 324, 325
_JPEG_TABLES = 347
_XMP, _IPTC, _PHOTOSHOP, _ICC = 700, 33723, 34377, 34675
_SUB_IFDS, _LAYERS, _DNG_VERSION = 330, 37724, 50706
_OLD_JPEG, _NEW_JPEG = 6, 7
#: ModelPixelScale, ModelTiepoint, ModelTransformation and the GeoKey directories.
_GEOTIFF = frozenset({33550, 33922, 34264, 34735, 34736, 34737})

#: Tags that describe how to decode the first image; the only ones written back.
_KEEP = frozenset(
    {
        254,  # NewSubfileType
        255,  # SubfileType
        _WIDTH,
        _HEIGHT,
        258,  # BitsPerSample
        _COMPRESSION,
        262,  # PhotometricInterpretation
        266,  # FillOrder
        _STRIP_OFFSETS,
        exif.ORIENTATION,
        _SAMPLES,
        _ROWS_PER_STRIP,
        _STRIP_COUNTS,
        282,  # XResolution
        283,  # YResolution
        _PLANAR,
        292,  # T4Options
        293,  # T6Options
        296,  # ResolutionUnit
        301,  # TransferFunction
        317,  # Predictor
        318,  # WhitePoint
        319,  # PrimaryChromaticities
        320,  # ColorMap
        _TILE_WIDTH,
        _TILE_LENGTH,
        _TILE_OFFSETS,
        _TILE_COUNTS,
        332,  # InkSet
        338,  # ExtraSamples
        339,  # SampleFormat
        _JPEG_TABLES,  # only with compression 7
        529,  # YCbCrCoefficients
        530,  # YCbCrSubSampling
        531,  # YCbCrPositioning
        532,  # ReferenceBlackWhite
        _ICC,
    }
)
_SHORT, _LONG, _RATIONAL, _UNDEFINED, _BYTE = 3, 4, 5, 7, 1
#: TIFF 6.0 field types and counts of every kept tag; "spp" is SamplesPerPixel,
#: "chunks" the number of strips or tiles, None any count. Others are refused.
_SPEC: dict[int, tuple[frozenset[int], int | str | None]] = {
    254: (frozenset({_LONG}), 1),
    255: (frozenset({_SHORT}), 1),
    _WIDTH: (frozenset({_SHORT, _LONG}), 1),
    _HEIGHT: (frozenset({_SHORT, _LONG}), 1),
    258: (frozenset({_SHORT}), "spp"),
    _COMPRESSION: (frozenset({_SHORT}), 1),
    262: (frozenset({_SHORT}), 1),
    266: (frozenset({_SHORT}), 1),
    _STRIP_OFFSETS: (frozenset({_SHORT, _LONG}), "chunks"),
    exif.ORIENTATION: (frozenset({_SHORT}), 1),
    _SAMPLES: (frozenset({_SHORT}), 1),
    _ROWS_PER_STRIP: (frozenset({_SHORT, _LONG}), 1),
    _STRIP_COUNTS: (frozenset({_SHORT, _LONG}), "chunks"),
    282: (frozenset({_RATIONAL}), 1),
    283: (frozenset({_RATIONAL}), 1),
    _PLANAR: (frozenset({_SHORT}), 1),
    292: (frozenset({_LONG}), 1),
    293: (frozenset({_LONG}), 1),
    296: (frozenset({_SHORT}), 1),
    301: (frozenset({_SHORT}), "transfer"),
    317: (frozenset({_SHORT}), 1),
    318: (frozenset({_RATIONAL}), 2),
    319: (frozenset({_RATIONAL}), 6),
    320: (frozenset({_SHORT}), "colormap"),
    _TILE_WIDTH: (frozenset({_SHORT, _LONG}), 1),
    _TILE_LENGTH: (frozenset({_SHORT, _LONG}), 1),
    _TILE_OFFSETS: (frozenset({_SHORT, _LONG}), "chunks"),
    _TILE_COUNTS: (frozenset({_SHORT, _LONG}), "chunks"),
    332: (frozenset({_SHORT}), 1),
    338: (frozenset({_SHORT}), "extra"),
    339: (frozenset({_SHORT}), "spp"),
    _JPEG_TABLES: (frozenset({_UNDEFINED}), None),
    529: (frozenset({_RATIONAL}), 3),
    530: (frozenset({_SHORT}), 2),
    531: (frozenset({_SHORT}), 1),
    532: (frozenset({_RATIONAL}), "refbw"),
    _ICC: (frozenset({_UNDEFINED, _BYTE}), None),
}
_REQUIRED = frozenset({_WIDTH, _HEIGHT, _STRIP_OFFSETS, _STRIP_COUNTS, _TILE_OFFSETS, _TILE_COUNTS})


# What exif.findings already reports (text, time and maker-note tags, EXIF/GPS pointers).
_EXIF_COVERED = frozenset({*exif._TEXT_TAGS, *exif._TIME_TAGS, exif._MAKER_NOTE, exif.ORIENTATION})
# exif.findings' own summaries, replaced here by TIFF-aware ones.
_EXIF_SUMMARIES = frozenset({"Other EXIF tags", "Embedded thumbnail"})
_NAMES = {
    269: "DocumentName",
    280: "MinSampleValue",
    281: "MaxSampleValue",
    285: "PageName",
    286: "XPosition",
    287: "YPosition",
    290: "GrayResponseUnit",
    291: "GrayResponseCurve",
    297: "PageNumber",
    32781: "ImageID",
    34665: "ExifIFD",
    37393: "ImageNumber",
    50706: "DNGVersion",
    50707: "DNGBackwardVersion",
    50708: "UniqueCameraModel",
    34853: "GPSInfo",
    50341: "PrintIM",
    59932: "Padding",
    18246: "Rating",
    18249: "RatingPercent",
}
_NAMES_SHOWN = 4
_MAX_PAGES = 65_536


def _first_ifd(data: bytes) -> tuple[TiffReader, Ifd]:
    reader = TiffReader(data)
    return reader, reader.read_ifd(reader.first_ifd_offset)


def _later_pages(reader: TiffReader, ifd0: Ifd) -> int:
    """How many images follow the first one; a loop or a bad pointer is damage."""
    seen = {ifd0.offset}
    offset, pages = ifd0.next_offset, 0
    while offset:
        if offset in seen or pages >= _MAX_PAGES:
            raise DamagedFile("damaged: its chain of pages loops back on itself")
        seen.add(offset)
        offset = reader.read_ifd(offset).next_offset
        pages += 1
    return pages


def _packet_findings(reader: TiffReader, ifd0: Ifd) -> list[Finding]:
    e, out = ifd0.entries, []
    embedded = (
        (_XMP, "XMP", xmp.findings),
        (_IPTC, "IPTC", iptc.findings),
        (_PHOTOSHOP, "Photoshop", iptc.photoshop_findings),
    )
    for tag, name, scan in embedded:
        if tag in e:
            found = scan(e[tag].value, f"{name} (TIFF)")
            out.extend(
                found
                or [
                    Finding(
                        Category.OTHER,
                        f"{name} block",
                        f"{name} (TIFF)",
                        f"An {name} metadata block ({len(e[tag].value):,} bytes)",
                    )
                ]
            )
    if _GEOTIFF & e.keys():
        out.append(
            Finding(
                Category.LOCATION,
                "GeoTIFF",
                WHERE,
                "GeoTIFF map coordinates — shows where",
            )
        )
    if _LAYERS in e:
        out.append(
            Finding(
                Category.THUMBNAIL,
                "Photoshop layers",
                WHERE,
                f"Photoshop layer data ({len(e[_LAYERS].value):,} bytes) — may hold the"
                " unedited or uncropped original",
            )
        )
    return out


def _other_tags(ifd0: Ifd, exif_ifd: Ifd | None, gps_read: bool) -> list[int]:
    """Tags no other finding describes and cleaning drops."""
    handled = _KEEP | _EXIF_COVERED | _GEOTIFF | {_XMP, _IPTC, _PHOTOSHOP, _LAYERS, _SUB_IFDS}
    if exif_ifd is not None:
        handled |= {EXIF_IFD}
    if gps_read:
        handled |= {GPS_IFD}
    tags = [t for t in ifd0.entries if t not in handled]
    if exif_ifd is not None:
        tags += [t for t in exif_ifd.entries if t not in _EXIF_COVERED]
    return tags


def findings(data: bytes) -> list[Finding]:
    """Everything identifying in a TIFF file; the kept structure is not a finding."""
    reader, ifd0 = _first_ifd(data)
    pages = _later_pages(reader, ifd0)
    dirs = walk(reader)
    out = [f for f in exif.findings(data, WHERE) if f.label not in _EXIF_SUMMARIES]
    out.extend(_packet_findings(reader, ifd0))
    previews = pages + (_SUB_IFDS in ifd0.entries)
    if previews:
        out.append(
            Finding(
                Category.THUMBNAIL,
                "Further images",
                WHERE,
                f"{previews} more image{'s' * (previews > 1)} after the first — a second"
                " image (page or preview) may show the original before cropping or editing",
            )
        )
    other = _other_tags(ifd0, dirs.exif, dirs.gps is not None)
    if other:
        names = ", ".join(_NAMES.get(t, f"tag {t}") for t in other[:_NAMES_SHOWN])
        more = ", …" if len(other) > _NAMES_SHOWN else ""
        out.append(
            Finding(
                Category.OTHER,
                "Other TIFF fields",
                WHERE,
                f"{len(other)} other TIFF field{'s' * (len(other) > 1)} ({names}{more})",
            )
        )
    return out


@dataclass(frozen=True)
class _ImageData:
    offsets_tag: int
    counts_tag: int
    chunks: tuple[tuple[int, int], ...]  # (offset, length) of each strip or tile


def _raw_tags(reader: TiffReader, ifd: Ifd) -> set[int]:
    """Every tag listed in a directory, including those whose value was unusable."""
    (count,) = struct.unpack(reader.order + "H", reader.data[ifd.offset : ifd.offset + 2])
    start = ifd.offset + 2
    return {
        struct.unpack(reader.order + "H", reader.data[pos : pos + 2])[0]
        for pos in range(start, start + 12 * count, 12)
    }


def _integers(reader: TiffReader, entry: Entry, what: str) -> tuple[int, ...]:
    if entry.type not in (3, 4):
        raise DamagedFile(f"damaged: its {what} have field type {entry.type}, not a whole number")
    return tuple(int(v) for v in reader.numbers(entry))


def _expected_chunks(reader: TiffReader, e: dict[int, Entry], tiled: bool) -> int:
    width, height = reader.integer(e.get(_WIDTH)), reader.integer(e.get(_HEIGHT))
    planes = reader.integer(e.get(_SAMPLES), 1) if reader.integer(e.get(_PLANAR), 1) == 2 else 1
    if tiled:
        tw, th = reader.integer(e.get(_TILE_WIDTH)), reader.integer(e.get(_TILE_LENGTH))
        if not tw or not th:
            raise DamagedFile("damaged: it is tiled but declares no tile size")
        return -(-width // tw) * -(-height // th) * planes
    rows = reader.integer(e.get(_ROWS_PER_STRIP), height) or height
    return -(-height // min(rows, height)) * planes


def _image_data(reader: TiffReader, ifd0: Ifd) -> _ImageData:
    e, raw = ifd0.entries, _raw_tags(reader, ifd0)
    for tag in (_STRIP_OFFSETS, _STRIP_COUNTS, _TILE_OFFSETS, _TILE_COUNTS):
        if tag in raw and tag not in e:
            raise DamagedFile("damaged: its table of image data points past the end of the file")
    tiled = _TILE_OFFSETS in e or _TILE_COUNTS in e
    offsets_tag, counts_tag = (
        (_TILE_OFFSETS, _TILE_COUNTS) if tiled else (_STRIP_OFFSETS, _STRIP_COUNTS)
    )
    kind = "tile" if tiled else "strip"
    if offsets_tag not in e and counts_tag not in e:
        raise UnsupportedFormat(
            "a TIFF whose first image holds no image data (no strips or tiles); nothing to keep"
        )
    if offsets_tag not in e or counts_tag not in e:
        raise DamagedFile(f"damaged: it lists {kind} offsets or {kind} lengths but not both")
    offsets = _integers(reader, e[offsets_tag], f"{kind} offsets")
    counts = _integers(reader, e[counts_tag], f"{kind} lengths")
    if len(offsets) != len(counts):
        raise DamagedFile(
            f"damaged: it lists {len(offsets)} {kind} offsets but {len(counts)} {kind} lengths"
        )
    if len(offsets) < _expected_chunks(reader, e, tiled):
        raise DamagedFile(f"damaged: it has too few {kind}s for its declared image size")
    for number, (offset, length) in enumerate(zip(offsets, counts, strict=True), 1):
        if length and offset + length > len(reader.data):
            raise DamagedFile(
                f"damaged: {kind} {number} of the image lies past the end of the file"
                " (truncated or corrupt)"
            )
    return _ImageData(offsets_tag, counts_tag, tuple(zip(offsets, counts, strict=True)))


def _refuse(reader: TiffReader, ifd0: Ifd) -> None:
    e = ifd0.entries
    if _DNG_VERSION in e:
        raise UnsupportedFormat(
            "a DNG raw file; skinvault does not rewrite raw camera files — export it to JPEG"
            " or TIFF first"
        )
    if reader.integer(e.get(_COMPRESSION), 1) == _OLD_JPEG:
        raise UnsupportedFormat(
            "a TIFF with old-style JPEG compression (TIFF 6.0 compression 6), which skinvault"
            " cannot rewrite safely — re-save it as a current TIFF or as JPEG first"
        )
    width, height = reader.integer(e.get(_WIDTH)), reader.integer(e.get(_HEIGHT))
    if width <= 0 or height <= 0:
        raise DamagedFile("damaged: its first image declares no width or height")
    check_pixels(width, height)


def _even(n: int) -> int:
    return n + (n & 1)


def clean(data: bytes) -> Cleaned:
    """A new classic TIFF holding only the first image and its structural tags."""
    reader, ifd0 = _first_ifd(data)
    _refuse(reader, ifd0)
    image = _image_data(reader, ifd0)
    kept_colour: list[bytes] = []
    compression = reader.integer(ifd0.entries.get(_COMPRESSION), 1)
    notes: list[str] = []
    removed: list[bytes] = []
    kept: list[tuple[int, Entry]] = []
    invalid: set[int] = set()
    for tag, entry in sorted(ifd0.entries.items()):
        if tag not in _KEEP or (tag == _JPEG_TABLES and compression != _NEW_JPEG):
            removed.append(entry.value)
            continue
        if not _fits(reader, ifd0, entry, len(image.chunks)):
            if tag in _REQUIRED:
                raise DamagedFile(f"damaged: its tag {tag} has a type or count TIFF does not allow")
            invalid.add(tag)
            removed.append(entry.value)
            notes.append(
                f"dropped TIFF tag {tag}: field type {entry.type} with {entry.count} values"
                " is not what the TIFF specification defines for it"
            )
            continue
        value = entry.value
        if tag == _ICC:
            try:
                value = icc.rebuild(entry.value)
            except icc.NotAProfile as exc:
                removed.append(entry.value)
                notes.append(f"dropped the ICC colour slot: {exc}, not a valid ICC profile")
                continue
            removed.extend(icc.texts(entry.value))
            kept_colour.extend((*icc.colour_tags(entry.value).values(), icc.NEUTRAL_TEXT.encode()))
            kept.append((tag, Entry(tag, _UNDEFINED, len(value), value, entry.value_offset)))
            continue
        kept.append((tag, entry))
    _check_ranges(reader, ifd0, image, {t for t, _ in kept}, invalid)
    order, count = reader.order, len(image.chunks)
    counts_value = struct.pack(f"{order}{count}I", *(n for _, n in image.chunks))

    # Pass 1: where every out-of-line value and every strip or tile will go.
    values: list[tuple[int, int, int, bytes]] = []  # tag, type, count, value bytes
    for tag, entry in kept:
        if tag == image.offsets_tag:
            values.append((tag, 4, count, bytes(4 * count)))  # filled in below
        elif tag == image.counts_tag:
            values.append((tag, 4, count, counts_value))
        else:
            values.append((tag, entry.type, entry.count, entry.value))
    pos = 8 + 2 + 12 * len(values) + 4
    places: list[int] = []
    for _, _, _, value in values:
        places.append(pos if len(value) > 4 else 0)
        if len(value) > 4:
            pos = _even(pos + len(value))
    new_offsets: list[int] = []
    for _, length in image.chunks:
        new_offsets.append(pos)
        pos = _even(pos + length)
    if pos > 0xFFFFFFFF:
        raise UnsupportedFormat("a TIFF too large to rewrite as a classic (under 4 GiB) TIFF")
    offsets_value = struct.pack(f"{order}{count}I", *new_offsets)

    # Pass 2: header, directory, out-of-line values, then the image data.
    head = bytearray(b"II*\x00" if order == "<" else b"MM\x00*")
    head += struct.pack(order + "IH", 8, len(values))
    tail = bytearray()
    for (tag, typ, n, stored), place in zip(values, places, strict=True):
        value = offsets_value if tag == image.offsets_tag else stored
        head += struct.pack(order + "HHI", tag, typ, n)
        if place:
            head += struct.pack(order + "I", place)
            tail += value + b"\x00" * (len(value) & 1)
        else:
            head += value.ljust(4, b"\x00")
    head += struct.pack(order + "I", 0) + tail
    view = memoryview(data)
    parts: list[bytes | memoryview] = [bytes(head)]
    opaque = []
    for (offset, length), placed in zip(image.chunks, new_offsets, strict=True):
        parts.append(view[offset : offset + length])
        opaque.append((placed, length))
        if length & 1:
            parts.append(b"\x00")
    pages = _later_pages(reader, ifd0)
    if pages:
        notes.append(f"kept only the first image; dropped {pages} further page(s) or preview(s)")
    dirs = walk(reader)
    for ifd in (dirs.exif, dirs.gps, dirs.interop, dirs.ifd1):
        if ifd is not None:
            removed.extend(e.value for e in ifd.entries.values())
    return Cleaned(
        tuple(parts),
        lossless=True,
        notes=tuple(notes),
        opaque=tuple(opaque),
        secrets=residue.without(residue.strings(*removed), *kept_colour),
    )


def _fits(reader: TiffReader, ifd0: Ifd, entry: Entry, chunks: int) -> bool:
    """Whether a kept entry has a type and count the TIFF 6.0 specification allows."""
    types, rule = _SPEC[entry.tag]
    if entry.type not in types:
        return False
    e = ifd0.entries
    spp = reader.integer(e.get(_SAMPLES), 1) if _SAMPLES in e and e[_SAMPLES].count == 1 else 1
    bps = 1
    if 258 in e and e[258].type == _SHORT and e[258].count >= 1:
        bps = min(int(reader.numbers(e[258])[0]), 16)
    counts: dict[str, int] = {
        "spp": spp,
        "chunks": chunks,
        "colormap": 3 * (1 << bps),
        "refbw": 2 * spp if spp >= 3 else 6,
        "extra": max(spp - (3 if spp >= 3 else 1), 0) or 1,
    }
    if rule is None:
        return entry.count <= 1 << 24
    if rule == "transfer":
        return entry.count in (1 << bps, 3 * (1 << bps))
    if rule == "spp" and entry.count == 1 and entry.tag == 258:
        return True  # one BitsPerSample for all samples is read by every decoder
    if rule == "extra":
        return 1 <= entry.count <= max(spp - 1, 1)
    expected = counts[rule] if isinstance(rule, str) else rule
    return entry.count == expected


def _check_ranges(
    reader: TiffReader, ifd0: Ifd, image: _ImageData, kept: set[int], invalid: set[int]
) -> None:
    """Kept data (strips or tiles, and kept tags' values) must overlap no other structure.

    Every directory, every value of every tag (kept or not) and every piece of
    image data is a byte range; two ranges may coincide exactly only when both
    are tag values (TIFF writers share one rational between tags), and no kept
    range may partly overlap anything.
    """
    ranges: list[tuple[int, int, bool, str]] = [(0, 8, False, "the TIFF header")]
    dirs = walk(reader)
    seen = set()
    for ifd in (ifd0, dirs.exif, dirs.gps, dirs.interop, dirs.ifd1):
        if ifd is None or ifd.offset in seen:
            continue
        seen.add(ifd.offset)
        (count,) = struct.unpack(reader.order + "H", reader.data[ifd.offset : ifd.offset + 2])
        ranges.append((ifd.offset, ifd.offset + 2 + 12 * count + 4, False, "a directory"))
        for entry in ifd.entries.values():
            if ifd is ifd0 and entry.tag in invalid:
                continue  # a count that does not fit: dropped, its range means nothing
            if len(entry.value) > 4:
                mine = ifd is ifd0 and entry.tag in kept
                what = f"tag {entry.tag}'s value" if mine else "a metadata value"
                ranges.append(
                    (entry.value_offset, entry.value_offset + len(entry.value), mine, what)
                )
    ranges.extend((o, o + n, True, "image data") for o, n in image.chunks if n)
    ranges.sort()
    reach: tuple[int, int, bool, str] | None = None  # the range reaching furthest so far
    for current in ranges:
        start, end, kept_here, what = current
        if reach is not None and start < reach[1]:
            shared = (start, end) == reach[:2] and "image data" not in (what, reach[3])
            if (kept_here or reach[2]) and not shared:
                raise DamagedFile(
                    f"damaged: {what if kept_here else reach[3]} (bytes {start:,}-{end:,})"
                    f" overlaps {reach[3] if kept_here else what}; refusing to copy it"
                )
        if reach is None or end > reach[1]:
            reach = current


def strict(data: bytes, opaque: tuple[tuple[int, int], ...] = ()) -> None:
    """Raise :class:`DamagedFile` unless the file is one image with spec-conformant kept tags."""
    reader, ifd0 = _first_ifd(data)
    image = _image_data(reader, ifd0)
    if ifd0.next_offset:
        raise DamagedFile("it holds more than one image")
    for tag, entry in ifd0.entries.items():
        if tag not in _KEEP or not _fits(reader, ifd0, entry, len(image.chunks)):
            raise DamagedFile(f"its tag {tag} is not one kept at its defined type and count")
        if tag == _ICC and icc.rebuild(entry.value) != entry.value:
            raise DamagedFile("its ICC profile is not in rebuilt form")
    _check_ranges(reader, ifd0, image, set(ifd0.entries), set())
