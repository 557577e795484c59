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
    """Raw bytes of every text-like tag and text header field, for residue checks."""
    try:
        found = tags(profile)
    except NotAProfile:
        return [profile]
    out = [profile[o : o + n] for sig, o, n in found if profile[o : o + 4] in _TEXT_TYPES]
    return [*out, profile[48:56], profile[80:84]]


def rebuild(profile: bytes) -> bytes:
    """A validated profile rebuilt from its colour fields; raises :class:`NotAProfile`."""
    found = tags(profile)
    version = profile[8]
    header = bytearray(profile[:_HEADER])
    header[4:8] = bytes(4)  # preferred CMM
    header[24:36] = bytes(12)  # creation date and time
    header[40:44] = bytes(4)  # primary platform
    header[44:48] = struct.pack(">I", struct.unpack_from(">I", header, 44)[0] & 0x3)  # flags
    header[48:56] = bytes(8)  # device manufacturer and model
    header[80:84] = bytes(4)  # creator
    header[84:128] = bytes(44)  # profile ID and reserved bytes
    entries: list[tuple[bytes, bytes]] = []
    for sig, offset, length in found:
        if sig in _COLOUR_TAGS and profile[offset : offset + 4] not in _TEXT_TYPES:
            entries.append((sig, profile[offset : offset + length]))
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
