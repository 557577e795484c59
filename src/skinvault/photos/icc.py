"""ICC colour profiles: parse, validate, and rebuild without identifying text.

A profile is a 128-byte header, a tag table and tag data (ICC.1:2022). Only
what a colour-managing decoder reads is written back: the header fields that
describe the colour space, and the colour tags (white point, primaries, tone
curves, matrices, LUTs, ...) copied byte for byte so colours stay the same.
Text tags (``desc``, ``cprt``, ``dmnd``, ``dmdd`` and any other ``text``,
``desc`` or ``mluc`` tag) become one neutral text; the device, creator, date
and platform header fields are zeroed; the profile ID is recomputed (MD5, as
the specification defines it). Anything that is not a well-formed profile is
refused with :class:`NotAProfile`, so callers drop it and say so.

    >>> rebuild(b"not a profile")
    Traceback (most recent call last):
    ...
    skinvault.photos.icc.NotAProfile: it is 13 bytes, shorter than an ICC header
"""

from __future__ import annotations

import hashlib
import itertools
import struct

from skinvault.errors import PhotoError

_HEADER = 128
_MAX_TAGS = 200
#: Tags a colour-managing decoder reads; everything else is dropped.
_COLOUR_TAGS = frozenset(
    {
        b"wtpt", b"bkpt", b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC", b"kTRC",
        b"chad", b"chrm", b"lumi", b"A2B0", b"A2B1", b"A2B2", b"B2A0", b"B2A1", b"B2A2",
        b"D2B0", b"D2B1", b"D2B2", b"D2B3", b"B2D0", b"B2D1", b"B2D2", b"B2D3", b"gamt",
        b"pre0", b"pre1", b"pre2", b"clrt", b"clro", b"clot", b"ncl2", b"cicp", b"meas",
        b"rig0", b"rig2", b"ciis", b"bfd ", b"psd0", b"psd1", b"psd2", b"psd3",
    }
)  # fmt: skip
#: Required text tags, written back with neutral text.
_NEUTRAL_TAGS = (b"desc", b"cprt")
NEUTRAL_TEXT = "ICC profile"
_TEXT_TYPES = {b"desc", b"text", b"mluc", b"utf8", b"utf6", b"zut8", b"zxml"}


class NotAProfile(PhotoError):
    """The bytes in an ICC slot are not a valid ICC profile."""


def _neutral(version: int, sig: bytes) -> bytes:
    text = NEUTRAL_TEXT.encode("ascii")
    if version >= 4:
        utf16 = NEUTRAL_TEXT.encode("utf-16-be")
        return (
            b"mluc"
            + bytes(4)
            + struct.pack(">II2s2sII", 1, 12, b"en", b"US", len(utf16), 28)
            + utf16
        )
    if sig == b"cprt":
        return b"text" + bytes(4) + text + b"\x00"
    # textDescriptionType: ASCII, empty Unicode and empty ScriptCode descriptions.
    return (
        b"desc"
        + bytes(4)
        + struct.pack(">I", len(text) + 1)
        + text
        + b"\x00"
        + bytes(8)
        + bytes(3 + 67)
    )


_PARA_PARAMS = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}


def defined_size(value: bytes) -> int | None:
    """Bytes a colour tag's type defines (ICC.1 clause 10); None for types sized by offsets."""
    kind = value[:4]
    if kind == b"XYZ ":
        return 8 + 12 * ((len(value) - 8) // 12)
    if kind == b"curv" and len(value) >= 12:
        return 12 + 2 * int.from_bytes(value[8:12], "big")
    if kind == b"para" and len(value) >= 10:
        params = _PARA_PARAMS.get(int.from_bytes(value[8:10], "big"))
        return None if params is None else 12 + 4 * params
    if kind == b"sf32":
        return 8 + 4 * ((len(value) - 8) // 4)
    if kind in (b"sig ", b"cicp"):
        return 12
    if kind == b"meas":
        return 36
    if kind == b"chrm" and len(value) >= 10:
        return 12 + 16 * int.from_bytes(value[8:10], "big")
    if kind in (b"mft1", b"mft2") and len(value) >= 52:
        inputs, outputs, grid = value[8], value[9], value[10]
        if kind == b"mft1":
            return int(48 + 256 * inputs + grid ** min(inputs, 16) * outputs + 256 * outputs)
        entries_in, entries_out = (
            int.from_bytes(value[48:50], "big"),
            int.from_bytes(value[50:52], "big"),
        )
        lut = grid ** min(inputs, 16) * outputs
        return int(52 + 2 * (entries_in * inputs + lut + entries_out * outputs))
    return None


_TRC = frozenset({b"rTRC", b"gTRC", b"bTRC", b"kTRC"})
#: Colour tags that hold exactly one XYZ number.
_ONE_XYZ = frozenset({b"wtpt", b"bkpt", b"rXYZ", b"gXYZ", b"bXYZ", b"lumi"})


def _colour_value(sig: bytes, value: bytes) -> bytes:
    """A colour tag's bytes at its type's defined size; raises :class:`NotAProfile`."""
    size = 20 if sig in _ONE_XYZ and value[:4] == b"XYZ " else defined_size(value)
    if size is None:
        return value
    if size > len(value):
        raise NotAProfile(f"its tag {sig!r} is shorter than its type defines")
    if sig in _TRC and value[:4] == b"curv" and size > 14:
        points = struct.unpack(f">{(size - 12) // 2}H", value[12:size])
        if any(b < a for a, b in itertools.pairwise(points)):
            raise NotAProfile(f"its tone curve {sig!r} is not monotonic, so not colour data")
    return value[:size]


def tags(profile: bytes) -> list[tuple[bytes, int, int]]:
    """(signature, offset, size) of every tag, after validating header and table."""
    size = len(profile)
    if size < _HEADER + 4:
        raise NotAProfile(f"it is {size} bytes, shorter than an ICC header")
    (declared,) = struct.unpack_from(">I", profile, 0)
    if declared != size:
        raise NotAProfile(f"its header declares {declared} bytes but it holds {size}")
    if profile[36:40] != b"acsp":
        raise NotAProfile("it has no 'acsp' profile signature")
    (count,) = struct.unpack_from(">I", profile, _HEADER)
    table_end = _HEADER + 4 + 12 * count
    if count > _MAX_TAGS or table_end > size:
        raise NotAProfile(f"its tag table ({count} tags) does not fit in the profile")
    out = []
    for i in range(count):
        sig, offset, length = struct.unpack_from(">4sII", profile, _HEADER + 4 + 12 * i)
        if offset < table_end or length < 8 or offset + length > size:
            raise NotAProfile(f"its tag {sig!r} lies outside the tag data")
        out.append((sig, offset, length))
    # Tags may share identical data (three TRCs often do) but never partly overlap.
    spans = sorted({(o, o + n) for _, o, n in out})
    for (_, end), (start, _) in itertools.pairwise(spans):
        if start < end:
            raise NotAProfile("two of its tags overlap")
    return out


def colour_tags(profile: bytes) -> dict[bytes, bytes]:
    """The colour tags' data by signature (what must survive a rebuild unchanged)."""
    return {sig: profile[o : o + n] for sig, o, n in tags(profile) if sig in _COLOUR_TAGS}


def texts(profile: bytes) -> list[bytes]:
    """Raw bytes of every text-like tag and text header field, for residue checks.

    A tag holding exactly the neutral text :func:`rebuild` writes is not listed: it is
    written back as it is, so finding it in the output is no residue. (A v4 profile's
    neutral text is UTF-16; listed, it made the scrubber refuse its own output, and
    every version and re-upload of an iPhone photo lost its Display P3 profile.)
    """
    try:
        found = tags(profile)
    except NotAProfile:
        return [profile]
    neutral = {_neutral(profile[8], sig) for sig in _NEUTRAL_TAGS}
    out = [
        value
        for _, o, n in found
        if (value := profile[o : o + n])[:4] in _TEXT_TYPES and value not in neutral
    ]
    return [*out, profile[48:56], profile[80:84]]


def rebuild(profile: bytes) -> bytes:
    """A validated profile rebuilt from its colour fields; raises :class:`NotAProfile`."""
    tags(profile)
    version = profile[8]
    header = bytearray(profile[:_HEADER])
    header[4:8] = bytes(4)  # preferred CMM
    header[24:36] = bytes(12)  # creation date and time
    header[40:44] = bytes(4)  # primary platform
    header[44:48] = struct.pack(">I", struct.unpack_from(">I", header, 44)[0] & 0x3)  # flags
    header[48:56] = bytes(8)  # device manufacturer and model
    header[80:84] = bytes(4)  # creator
    header[84:128] = bytes(44)  # profile ID and reserved bytes
    entries = list(colour_tags(profile).items())
    for sig in _NEUTRAL_TAGS:
        entries.append((sig, _neutral(version, sig)))
    table_end = _HEADER + 4 + 12 * len(entries)
    body = bytearray()
    placed: dict[bytes, int] = {}
    rows = []
    for sig, value in entries:
        if value not in placed:
            placed[value] = table_end + len(body)
            body += value + bytes(-len(value) % 4)
        rows.append(struct.pack(">4sII", sig, placed[value], len(value)))
    out = header + struct.pack(">I", len(entries)) + b"".join(rows) + body
    out[0:4] = struct.pack(">I", len(out))
    if version >= 4:
        digest = bytearray(out)
        digest[44:48] = digest[64:68] = bytes(4)
        digest[84:100] = bytes(16)
        out[84:100] = hashlib.md5(digest, usedforsecurity=False).digest()
    return bytes(out)
