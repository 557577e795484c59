"""HEIC/HEIF/AVIF: box-level, lossless scrubbing (ISO/IEC 23008-12, ISO BMFF).

The coded image bytes are never decoded or re-encoded. The ``meta`` box is
rebuilt to describe only the items needed to draw the primary image: the
primary item, the tiles a grid (or other derived image) is made of, and an
alpha plane. Everything else goes, together with the bytes it points to: the
Exif and XMP items, thumbnails, depth and gain maps, other items, unknown
image properties (``udes`` user descriptions included), and every top-level
box other than ``ftyp``, ``meta`` and ``mdat`` (``moov`` video tracks, ``uuid``
vendor boxes). The output is ``ftyp``, the new ``meta``, and one ``mdat``
holding the kept items' data, with the item locations rewritten.

Orientation lives in the ``irot``/``imir`` properties, which are kept, so no
EXIF has to be written back.

    >>> clean(open("IMG_0001.HEIC", "rb").read()).lossless     # doctest: +SKIP
    True
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from skinvault.errors import DamagedFile, UnsupportedFormat
from skinvault.photos import exif, icc, residue, xmp
from skinvault.photos.findings import Category, Cleaned, Finding
from skinvault.photos.limits import check_pixels

_ALPHA_AUX = {b"urn:mpeg:hevc:2015:auxid:1", b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha"}
# Image properties that describe how to decode and display the pixels.
_KEEP_PROPERTIES = {
    b"hvcC", b"av1C", b"lhvC", b"vvcC", b"jpgC", b"oinf", b"tols", b"a1op", b"a1lx",
    b"lsel", b"ispe", b"pixi", b"colr", b"irot", b"imir", b"clap", b"pasp", b"rloc",
    b"auxC", b"clli", b"mdcv", b"cclv", b"amve", b"reve", b"cmin", b"cmex", b"uncC",
    b"cmpd", b"cmpC", b"icef", b"splz", b"sbpm", b"cloc", b"iscl",
}  # fmt: skip
_META_CHILDREN = {b"hdlr", b"dinf", b"pitm", b"iloc", b"iinf", b"iref", b"iprp", b"idat"}
_TOP_LEVEL_QUIET = {b"ftyp", b"meta", b"mdat", b"free", b"skip"}
_MAX_BOXES = 100_000
_MAX_ITEMS = 100_000


@dataclass(frozen=True)
class Box:
    kind: bytes
    start: int  # offset of the header
    body: int  # offset of the payload
    end: int  # offset past the box


def _boxes(data: bytes, start: int, end: int) -> list[Box]:
    out: list[Box] = []
    pos = start
    while pos < end:
        if end - pos < 8:
            if start == 0:
                break  # a few stray bytes at the end of the file: reported as trailing data
            raise DamagedFile(f"damaged: a box header at byte {pos} is cut off")
        size, kind = struct.unpack_from(">I4s", data, pos)
        body = pos + 8
        if size == 1:
            if end - pos < 16:
                raise DamagedFile(f"damaged: a box header at byte {pos} is cut off")
            (size,) = struct.unpack_from(">Q", data, body)
            body += 8
        elif size == 0:
            size = end - pos
        if size < body - pos or pos + size > end:
            raise DamagedFile(
                f"truncated or damaged: box {kind!r} at byte {pos} claims {size:,} bytes,"
                f" but only {end - pos:,} remain"
            )
        out.append(Box(kind, pos, body, pos + size))
        if len(out) > _MAX_BOXES:
            raise DamagedFile("damaged: far too many boxes")
        pos += size
    return out


def _top_end(data: bytes, boxes: list[Box]) -> int:
    return boxes[-1].end if boxes else 0


class _Cursor:
    """Sequential big-endian reads inside one box, never past its end."""

    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data, self.pos, self.end = data, pos, end

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise DamagedFile("damaged: a HEIF box is shorter than its fields")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big") if n else 0

    def cstring(self) -> bytes:
        stop = self.data.find(b"\x00", self.pos, self.end)
        if stop < 0:
            stop = self.end
        text = self.data[self.pos : stop]
        self.pos = min(stop + 1, self.end)
        return text


@dataclass(frozen=True)
class Item:
    id: int
    type: bytes
    name: str
    content_type: str
    infe: Box


@dataclass
class Location:
    method: int  # 0: file offsets, 1: offsets into idat
    extents: list[tuple[int, int]]  # absolute (offset, length) in file or idat payload


@dataclass
class Meta:
    box: Box
    children: list[Box]
    primary: int | None = None
    items: dict[int, Item] = field(default_factory=dict)
    locations: dict[int, Location] = field(default_factory=dict)
    refs: list[tuple[bytes, int, list[int]]] = field(default_factory=list)
    iref_version: int = 0
    properties: list[Box] = field(default_factory=list)  # ipco children, 1-based in ipma
    associations: dict[int, list[tuple[bool, int]]] = field(default_factory=dict)
    ipma_version: int = 0
    ipma_flags: int = 0
    idat: Box | None = None

    def child(self, kind: bytes) -> Box | None:
        return next((c for c in self.children if c.kind == kind), None)


def _full(data: bytes, box: Box) -> tuple[int, int, _Cursor]:
    cur = _Cursor(data, box.body, box.end)
    version = cur.uint(1)
    flags = cur.uint(3)
    return version, flags, cur


def _parse_iloc(data: bytes, box: Box, meta: Meta) -> None:
    version, _, cur = _full(data, box)
    if version > 2:
        raise UnsupportedFormat(f"a HEIF item location table of version {version}")
    sizes = cur.uint(1)
    offset_size, length_size = sizes >> 4, sizes & 15
    sizes = cur.uint(1)
    base_size, index_size = sizes >> 4, (sizes & 15 if version else 0)
    count = cur.uint(2 if version < 2 else 4)
    for _ in range(count):
        item_id = cur.uint(2 if version < 2 else 4)
        method = cur.uint(2) & 15 if version else 0
        if cur.uint(2) != 0:
            raise UnsupportedFormat("a HEIF file whose image data lives in another file")
        base = cur.uint(base_size)
        extents = []
        for _ in range(cur.uint(2)):
            cur.uint(index_size)
            offset = base + cur.uint(offset_size)
            extents.append((offset, cur.uint(length_size)))
        if method > 1:
            raise UnsupportedFormat("a HEIF file with items built from other items' data")
        meta.locations[item_id] = Location(method, extents)


def _parse_iinf(data: bytes, box: Box, meta: Meta) -> None:
    version, _, cur = _full(data, box)
    cur.uint(2 if version == 0 else 4)
    for infe in _boxes(data, cur.pos, box.end):
        if infe.kind != b"infe":
            continue
        v, _, c = _full(data, infe)
        if v < 2:
            continue  # version 0/1 entries carry no item type; nothing to keep or drop
        item_id = c.uint(2 if v == 2 else 4)
        c.uint(2)  # protection index
        kind = c.take(4)
        name = c.cstring().decode("utf-8", "replace")
        content_type = c.cstring().decode("utf-8", "replace") if kind == b"mime" else ""
        meta.items[item_id] = Item(item_id, kind, name, content_type, infe)
        if len(meta.items) > _MAX_ITEMS:
            raise DamagedFile("damaged: far too many HEIF items")


def _parse_iref(data: bytes, box: Box, meta: Meta) -> None:
    version, _, cur = _full(data, box)
    meta.iref_version = version
    width = 2 if version == 0 else 4
    for ref in _boxes(data, cur.pos, box.end):
        c = _Cursor(data, ref.body, ref.end)
        source = c.uint(width)
        targets = [c.uint(width) for _ in range(c.uint(2))]
        meta.refs.append((ref.kind, source, targets))


def _parse_iprp(data: bytes, box: Box, meta: Meta) -> None:
    for child in _boxes(data, box.body, box.end):
        if child.kind == b"ipco":
            meta.properties = _boxes(data, child.body, child.end)
        elif child.kind == b"ipma":
            version, flags, cur = _full(data, child)
            meta.ipma_version, meta.ipma_flags = version, flags
            for _ in range(cur.uint(4)):
                item_id = cur.uint(2 if version < 1 else 4)
                links = []
                for _ in range(cur.uint(1)):
                    raw = cur.uint(2 if flags & 1 else 1)
                    top = 0x8000 if flags & 1 else 0x80
                    links.append((bool(raw & top), raw & (top - 1)))
                meta.associations.setdefault(item_id, []).extend(links)


def parse(data: bytes) -> tuple[list[Box], Meta]:
    """Top-level boxes and the parsed ``meta`` box."""
    top = _boxes(data, 0, len(data))
    if not top or top[0].kind != b"ftyp":
        raise DamagedFile("not a HEIF file: it does not start with an ftyp box")
    meta_box = next((b for b in top if b.kind == b"meta"), None)
    if meta_box is None:
        raise UnsupportedFormat(
            "a HEIF image sequence or video without a still image (no meta box)"
        )
    meta = Meta(meta_box, _boxes(data, meta_box.body + 4, meta_box.end))
    for child in meta.children:
        if child.kind == b"pitm":
            version, _, cur = _full(data, child)
            meta.primary = cur.uint(2 if version == 0 else 4)
        elif child.kind == b"iloc":
            _parse_iloc(data, child, meta)
        elif child.kind == b"iinf":
            _parse_iinf(data, child, meta)
        elif child.kind == b"iref":
            _parse_iref(data, child, meta)
        elif child.kind == b"iprp":
            _parse_iprp(data, child, meta)
        elif child.kind == b"idat":
            meta.idat = child
    if meta.primary is None or meta.primary not in meta.items:
        raise DamagedFile("damaged: the HEIF file names no primary image")
    for prop in meta.properties:
        if prop.kind == b"ispe":
            _, _, cur = _full(data, prop)
            check_pixels(cur.uint(4), cur.uint(4))
    return top, meta


def _payload(data: bytes, meta: Meta, item_id: int, limit: int = 1 << 26) -> bytes:
    """The bytes of one item (at most ``limit``), from the file or from idat."""
    location = meta.locations.get(item_id)
    if location is None:
        return b""
    base, end = (0, len(data))
    if location.method == 1:
        if meta.idat is None:
            raise DamagedFile("damaged: an item points into a missing idat box")
        base, end = meta.idat.body, meta.idat.end
    parts = []
    for offset, length in location.extents:
        start = base + offset
        stop = end if length == 0 else start + length
        if start > end or stop > end:
            raise DamagedFile(f"truncated or damaged: item {item_id}'s data lies past the end")
        parts.append(data[start : min(stop, start + limit)])
    return b"".join(parts)[:limit]


def _aux_type(data: bytes, meta: Meta, item_id: int) -> bytes:
    for _, index in meta.associations.get(item_id, []):
        if 0 < index <= len(meta.properties) and meta.properties[index - 1].kind == b"auxC":
            _, _, cur = _full(data, meta.properties[index - 1])
            return cur.cstring()
    return b""


def _kept_items(data: bytes, meta: Meta) -> set[int]:
    """The primary item, what it is derived from, and its alpha plane."""
    assert meta.primary is not None
    keep = {meta.primary}
    changed = True
    while changed:
        changed = False
        for kind, source, targets in meta.refs:
            if kind in (b"dimg", b"base") and source in keep:
                new = set(targets) - keep
            elif kind == b"auxl" and source not in keep and set(targets) & keep:
                new = {source} if _aux_type(data, meta, source) in _ALPHA_AUX else set()
            else:
                continue
            if new:
                keep |= new
                changed = True
    return keep & set(meta.items)


def _item_findings(data: bytes, meta: Meta, item: Item) -> list[Finding]:
    if item.type == b"Exif":
        payload = _payload(data, meta, item.id)
        if len(payload) < 4:
            return [Finding(Category.OTHER, "EXIF block", "EXIF", "An empty or damaged EXIF item")]
        skip = int.from_bytes(payload[:4], "big")
        block = payload[4 + skip :] if 4 + skip < len(payload) else payload[4:]
        if block.startswith(b"Exif\x00\x00"):
            block = block[6:]
        return exif.findings(block, "EXIF")
    if item.type == b"mime" and ("xmp" in item.content_type or "rdf" in item.content_type):
        return xmp.findings(_payload(data, meta, item.id), "XMP")
    thumbnail_of = {s for k, s, _ in meta.refs if k == b"thmb"}
    size = sum(length for _, length in meta.locations.get(item.id, Location(0, [])).extents)
    if item.id in thumbnail_of:
        return [
            Finding(
                Category.THUMBNAIL,
                "Embedded thumbnail",
                "HEIF item",
                f"An embedded thumbnail image ({size:,} bytes) — may show the original before"
                " cropping or editing",
            )
        ]
    aux = _aux_type(data, meta, item.id).decode("latin-1", "replace")
    what = (
        f"an auxiliary image ({aux})" if aux else f"an extra “{item.type.decode('latin-1')}” item"
    )
    return [
        Finding(
            Category.OTHER,
            "Extra item",
            "HEIF item",
            f"{what[0].upper()}{what[1:]} ({size:,} bytes)",
        )
    ]


def _udes_finding(data: bytes, prop: Box) -> Finding:
    _, _, cur = _full(data, prop)
    texts = [cur.cstring().decode("utf-8", "replace") for _ in range(4)]
    shown = " / ".join(t for t in texts[1:] if t.strip())[:60]
    return Finding(Category.COMMENT, "Description", "HEIF udes", f"Image description “{shown}”")


def findings(data: bytes) -> list[Finding]:
    top, meta = parse(data)
    keep = _kept_items(data, meta)
    out: list[Finding] = []
    for item_id, item in meta.items.items():
        if item_id not in keep:
            out.extend(_item_findings(data, meta, item))
    for item_id in keep:
        for _, index in meta.associations.get(item_id, []):
            if not 0 < index <= len(meta.properties):
                continue
            prop = meta.properties[index - 1]
            if prop.kind == b"udes":
                out.append(_udes_finding(data, prop))
            elif prop.kind not in _KEEP_PROPERTIES:
                name = prop.kind.decode("latin-1")
                out.append(
                    Finding(
                        Category.OTHER,
                        "Image property",
                        "HEIF",
                        f"An unknown “{name}” image property",
                    )
                )
    for child in meta.children:
        if child.kind not in _META_CHILDREN:
            name = child.kind.decode("latin-1")
            size = child.end - child.start
            out.append(
                Finding(
                    Category.OTHER,
                    "Extra box",
                    "HEIF meta",
                    f"An extra “{name}” box ({size:,} bytes)",
                )
            )
    for box in top:
        if box.kind not in _TOP_LEVEL_QUIET:
            name = box.kind.decode("latin-1")
            size = box.end - box.start
            what = (
                "A video track (such as a Live Photo)"
                if name == "moov"
                else f"An extra “{name}” box"
            )
            out.append(Finding(Category.OTHER, "Extra box", "HEIF", f"{what} ({size:,} bytes)"))
    end = _top_end(data, top)
    if end < len(data):
        out.append(
            Finding(
                Category.TRAILER,
                "Trailing data",
                "after the image",
                f"{len(data) - end:,} bytes of extra data hidden after the end of the image",
            )
        )
    return out


# --- writing -----------------------------------------------------------------


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _fullbox(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def _uint(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


def _new_properties(meta: Meta, keep: set[int]) -> tuple[list[Box], dict[int, int]]:
    """The ipco children still referenced, and old index -> new index."""
    used = sorted(
        {
            index
            for item_id in keep
            for _, index in meta.associations.get(item_id, [])
            if 0 < index <= len(meta.properties)
            and meta.properties[index - 1].kind in _KEEP_PROPERTIES
        }
    )
    return [meta.properties[i - 1] for i in used], {old: new for new, old in enumerate(used, 1)}


def _iprp(
    data: bytes, meta: Meta, keep: set[int], removed: list[bytes], kept: list[bytes]
) -> bytes:
    props, first = _new_properties(meta, keep)
    rebuilt = [_property(data, p, removed, kept) for p in props]
    # A property that could not be rebuilt is dropped, with its associations.
    by_new = {new: old for old, new in first.items()}
    boxes = [r for r in rebuilt if r is not None]
    survivors = [by_new[i] for i, r in enumerate(rebuilt, 1) if r is not None]
    renumber = {old: new for new, old in enumerate(survivors, 1)}
    ipco = _box(b"ipco", *boxes)
    wide_ids = meta.ipma_version >= 1
    wide_index = bool(meta.ipma_flags & 1) or len(props) > 127
    rows = []
    for item_id in sorted(keep):
        links = [
            (essential, renumber[index])
            for essential, index in meta.associations.get(item_id, [])
            if index in renumber
        ]
        if not links:
            continue
        row = _uint(item_id, 4 if wide_ids else 2) + _uint(len(links), 1)
        for essential, index in links:
            top = 0x8000 if wide_index else 0x80
            row += _uint(index | (top if essential else 0), 2 if wide_index else 1)
        rows.append(row)
    ipma = _fullbox(
        b"ipma", 1 if wide_ids else 0, 1 if wide_index else 0, _uint(len(rows), 4), *rows
    )
    return _box(b"iprp", ipco, ipma)


def _iref(meta: Meta, keep: set[int]) -> bytes:
    width = 2 if meta.iref_version == 0 else 4
    refs = []
    for kind, source, targets in meta.refs:
        kept = [t for t in targets if t in keep]
        if source in keep and kept:
            refs.append(
                _box(
                    kind,
                    _uint(source, width),
                    _uint(len(kept), 2),
                    *(_uint(t, width) for t in kept),
                )
            )
    return _fullbox(b"iref", meta.iref_version, 0, *refs) if refs else b""


def _iloc(ids: list[int], placed: dict[int, tuple[int, list[tuple[int, int]]]], base: int) -> bytes:
    """iloc version 1/2 with 4- or 8-byte offsets; method-0 offsets are shifted by ``base``."""
    version = 2 if ids and max(ids) > 0xFFFF else 1
    largest = max(
        (off + length + base for _, extents in placed.values() for off, length in extents),
        default=0,
    )
    size = 8 if largest > 0xFFFFFFFF else 4
    rows = []
    for item_id in ids:
        method, extents = placed[item_id]
        row = _uint(item_id, 2 if version == 1 else 4) + _uint(method, 2) + _uint(0, 2)
        row += _uint(len(extents), 2)
        for off, length in extents:
            row += _uint(off + (base if method == 0 else 0), size) + _uint(length, size)
        rows.append(row)
    count = _uint(len(ids), 2 if version == 1 else 4)
    return _fullbox(b"iloc", version, 0, bytes([size << 4 | size, 0]), count, *rows)


def _infe(item: Item) -> bytes:
    """An item info entry rebuilt from its fields, with an empty (free-text) item name."""
    wide = item.id > 0xFFFF
    body = _uint(item.id, 4 if wide else 2) + _uint(0, 2) + item.type + b"\x00"
    if item.type == b"mime":
        body += item.content_type.encode("utf-8") + b"\x00"
    return _fullbox(b"infe", 3 if wide else 2, 0, body)


_HDLR = _fullbox(b"hdlr", 0, 0, bytes(4), b"pict", bytes(12), b"\x00")
_DINF = _box(b"dinf", _fullbox(b"dref", 0, 0, _uint(1, 4), _fullbox(b"url ", 0, 1)))
#: Image properties of a fixed size (ISO/IEC 23008-12, 14496-12): longer ones are cut.
_FIXED_PROPERTIES = {
    b"ispe": 12,
    b"irot": 1,
    b"imir": 1,
    b"pasp": 8,
    b"clap": 32,
    b"clli": 4,
    b"mdcv": 24,
}


def _property(data: bytes, prop: Box, removed: list[bytes], kept: list[bytes]) -> bytes | None:
    """A kept image property rebuilt at its defined size; None to drop it."""
    body = data[prop.body : prop.end]
    if prop.kind in _FIXED_PROPERTIES:
        n = _FIXED_PROPERTIES[prop.kind]
        if len(body) < n:
            return None
        removed.append(body[n:])
        return _box(prop.kind, body[:n])
    if prop.kind == b"colr":
        kind = body[:4]
        if kind == b"nclx" and len(body) >= 11:
            removed.append(body[11:])
            return _box(b"colr", body[:11])
        if kind in (b"prof", b"rICC"):
            try:
                rebuilt = icc.rebuild(body[4:])
            except icc.NotAProfile:
                removed.append(body)
                return None
            removed.extend(icc.texts(body[4:]))
            kept.extend((*icc.colour_tags(body[4:]).values(), icc.NEUTRAL_TEXT.encode()))
            return _box(b"colr", kind, rebuilt)
        return None
    if prop.kind == b"hvcC":
        return _hvcc(body, removed)
    if prop.kind == b"pixi" and body:
        n = 4 + 1 + (body[4] if len(body) > 4 else 0)
        if len(body) < n:
            return None
        removed.append(body[n:])
        return _box(b"pixi", body[:n])
    return data[prop.start : prop.end]


def _hvcc(body: bytes, removed: list[bytes]) -> bytes | None:
    """HEVC decoder configuration keeping only parameter sets (VPS, SPS, PPS), no SEI."""
    if len(body) < 23:
        return None
    cur = _Cursor(body, 23, len(body))
    arrays = []
    for _ in range(body[22]):
        kind = cur.uint(1)
        units = [cur.take(cur.uint(2)) for _ in range(cur.uint(2))]
        if kind & 0x3F in (32, 33, 34):
            arrays.append(
                bytes([kind]) + _uint(len(units), 2) + b"".join(_uint(len(u), 2) + u for u in units)
            )
        else:
            removed.extend(units)
    removed.append(body[cur.pos :])
    return _box(b"hvcC", body[:22], bytes([len(arrays)]), *arrays)


def _iinf(data: bytes, meta: Meta, ids: list[int]) -> bytes:
    entries = [_infe(meta.items[i]) for i in ids]
    if len(entries) <= 0xFFFF:
        return _fullbox(b"iinf", 0, 0, _uint(len(entries), 2), *entries)
    return _fullbox(b"iinf", 1, 0, _uint(len(entries), 4), *entries)


def clean(data: bytes) -> Cleaned:
    """Rebuild the file holding only the primary image's items and properties."""
    top, meta = parse(data)
    keep = _kept_items(data, meta)
    ids = sorted(keep)
    _check_extents(data, top, meta, keep)
    removed: list[bytes] = [
        data[b.start : b.end] for b in top if b.kind not in (b"ftyp", b"meta", b"mdat")
    ]
    removed.append(data[_top_end(data, top) :])
    for item_id, item in meta.items.items():
        removed.append(item.name.encode("utf-8"))
        if item_id not in keep:
            removed.append(_payload(data, meta, item_id))
    for child in meta.children:
        if child.kind not in (b"iloc", b"iinf", b"iref", b"iprp", b"pitm", b"idat"):
            removed.append(data[child.body : child.end])
    for prop in meta.properties:
        if prop.kind not in _KEEP_PROPERTIES:
            removed.append(data[prop.body : prop.end])
    kept_colour: list[bytes] = []
    view = memoryview(data)
    mdat_parts: list[memoryview] = []
    idat_parts: list[memoryview] = []
    placed: dict[int, tuple[int, list[tuple[int, int]]]] = {}
    mdat_size = idat_size = 0
    for item_id in ids:
        location = meta.locations.get(item_id)
        if location is None:
            raise DamagedFile(f"damaged: image item {item_id} has no data location")
        area = (0, len(data)) if location.method == 0 else None
        if location.method == 1:
            if meta.idat is None:
                raise DamagedFile("damaged: an item points into a missing idat box")
            area = (meta.idat.body, meta.idat.end)
        assert area is not None
        extents = []
        for offset, length in location.extents:
            start = area[0] + offset
            stop = area[1] if length == 0 else start + length
            if start > area[1] or stop > area[1]:
                raise DamagedFile(f"truncated: image item {item_id}'s data lies past the end")
            if location.method == 0:
                extents.append((mdat_size, stop - start))
                mdat_parts.append(view[start:stop])
                mdat_size += stop - start
            else:
                extents.append((idat_size, stop - start))
                idat_parts.append(view[start:stop])
                idat_size += stop - start
        placed[item_id] = (location.method, extents)

    assert meta.primary is not None
    pitm = (
        _fullbox(b"pitm", 0, 0, _uint(meta.primary, 2))
        if meta.primary <= 0xFFFF
        else _fullbox(b"pitm", 1, 0, _uint(meta.primary, 4))
    )
    iprp = _iprp(data, meta, keep, removed, kept_colour)

    def meta_box(base: int) -> bytes:
        children = [_HDLR, _DINF, pitm]
        children += [
            _iinf(data, meta, ids),
            _iref(meta, keep),
            iprp,
            _iloc(ids, placed, base),
        ]
        if idat_parts:
            children.append(_box(b"idat", *(bytes(p) for p in idat_parts)))
        return _fullbox(b"meta", 0, 0, *children)

    ftyp = _ftyp(data, top[0])
    large = mdat_size + 8 > 0xFFFFFFFF
    header = 16 if large else 8
    draft = meta_box(0)
    base = len(ftyp) + len(draft) + header
    final = meta_box(base)
    if len(final) != len(draft):
        raise DamagedFile("internal: HEIF meta box size changed while placing offsets")
    if large:
        mdat_header = struct.pack(">I4sQ", 1, b"mdat", mdat_size + 16)
    else:
        mdat_header = struct.pack(">I4s", mdat_size + 8, b"mdat")
    parts: tuple[bytes | memoryview, ...] = (ftyp, final, mdat_header, *mdat_parts)
    opaque, pos = [], base
    for part in mdat_parts:
        opaque.append((pos, len(part)))
        pos += len(part)
    return Cleaned(
        parts,
        lossless=True,
        opaque=tuple(opaque),
        secrets=residue.without(residue.strings(*removed), *kept_colour),
    )


def strict(data: bytes, opaque: tuple[tuple[int, int], ...] = ()) -> None:
    """Raise :class:`DamagedFile` unless the file is exactly what :func:`clean` writes.

    Cleaning it again must give the same bytes: every box rebuilt from its parsed fields at
    its defined size and in the order ``clean`` writes them, only the primary image's
    items and properties, their extents packed into one ``mdat`` with nothing around them.
    (The coded image data is compared too; ``opaque`` is not needed.)
    """
    del opaque
    raw = bytes(data)
    again = clean(raw)
    if again.data != raw:
        raise DamagedFile("its boxes are not in the form the cleaner writes")


def _ftyp(data: bytes, box: Box) -> bytes:
    """The file type box from its fields: major brand, minor version, whole brands."""
    body = data[box.body : box.end]
    if len(body) < 8:
        raise DamagedFile("damaged: the ftyp box is too short")
    brands = body[8 : 8 + (len(body) - 8) // 4 * 4]
    return _box(b"ftyp", body[:8], brands)


def is_avif(data: bytes) -> bool:
    """Whether the file's major brand says AVIF (written as .avif, not .heic)."""
    return data[8:12] in (b"avif", b"avis")


def _check_extents(data: bytes, top: list[Box], meta: Meta, keep: set[int]) -> None:
    """Kept image data must lie in an mdat (or idat) and overlap no other structure or item."""
    mdats = [(b.body, b.end) for b in top if b.kind == b"mdat"]
    spans: list[tuple[int, int, int]] = []  # start, end, item id (file offsets only)
    for item_id, location in meta.locations.items():
        if location.method != 0:
            continue
        for offset, length in location.extents:
            end = len(data) if length == 0 else offset + length
            spans.append((offset, end, item_id))
    for start, end, item_id in spans:
        if item_id not in keep:
            continue
        if not any(m0 <= start and end <= m1 for m0, m1 in mdats):
            raise DamagedFile(
                f"damaged: image item {item_id}'s data lies outside the file's media data box;"
                " refusing to copy it"
            )
        for s0, s1, other in spans:
            if other != item_id and start < s1 and s0 < end:
                raise DamagedFile(
                    f"damaged: image item {item_id}'s data overlaps item {other}'s;"
                    " refusing to copy it"
                )
