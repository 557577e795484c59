"""HEIC/HEIF: box-level scrubbing keeps the coded image bytes and drops the rest."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pillow_heif
import pytest

from skinvault.errors import DamagedFile, ScrubFailed, TooLarge, UnsupportedFormat
from skinvault.photos import heif
from skinvault.photos.findings import Category
from skinvault.photos.scrub import inspect, scrub, verify
from skinvault.photos.sniff import ImageFormat
from tests import factories
from tests.conftest import (
    CORPUS_FILES,
    CorpusFile,
    corpus_params,
    decoded,
    exiftool_json,
    icc_colour,
)

HEIF_FILES = corpus_params({"heif"})


def _primary_bytes(data: bytes) -> bytes:
    _, meta = heif.parse(data)
    assert meta.primary is not None
    return b"".join(heif._payload(data, meta, i) for i in sorted(heif._kept_items(data, meta)))


@pytest.mark.parametrize("item", HEIF_FILES)
def test_corpus_heif_keeps_coded_image_bytes_and_loses_every_finding(item: CorpusFile) -> None:
    original = item.path.read_bytes()
    cleaned, report = scrub(original)
    assert report.lossless is True
    assert inspect(cleaned).findings == ()
    assert _primary_bytes(cleaned) == _primary_bytes(original)
    if item.pillow_opens:
        assert decoded(cleaned) == decoded(original)
        assert icc_colour(cleaned) == icc_colour(original)


@pytest.mark.parametrize("item", HEIF_FILES)
def test_exiftool_reads_no_exif_xmp_or_thumbnail_from_scrubbed_heif(
    item: CorpusFile, tmp_path: Path
) -> None:
    out = tmp_path / "out.heic"
    out.write_bytes(scrub(item.path.read_bytes())[0])
    (meta,) = exiftool_json(out)
    groups = {key.split(":", 1)[0] for key in meta if ":" in key}
    assert not groups & {"IFD0", "ExifIFD", "GPS", "XMP-x", "XMP-dc", "Apple", "IFD1"}, groups
    assert not [k for k in meta if "GPS" in k or "Thumbnail" in k or "Make" in k]


def test_iphone_thumbnail_xmp_and_gain_map_are_dropped_and_reported() -> None:
    iphone = [f for f in CORPUS_FILES if "iphone-13" in f.name]
    if not iphone:
        pytest.skip("the iPhone 13 HEIC is not in the corpus")
    original = iphone[0].path.read_bytes()
    before = pillow_heif.open_heif(io.BytesIO(original))
    assert before[0].info.get("thumbnails")
    cleaned, report = scrub(original)
    categories = report.categories()
    assert {Category.THUMBNAIL, Category.DEVICE, Category.TIME} <= categories
    assert any("XMP" in f.description for f in report.findings)
    after = pillow_heif.open_heif(io.BytesIO(cleaned))
    assert not after[0].info.get("thumbnails")
    assert not after.info.get("exif") and not after.info.get("xmp")
    assert b"iPhone" not in cleaned


def test_made_up_heif_gps_and_owner_are_found_then_removed() -> None:
    original = factories.heif()
    report = inspect(original)
    assert {Category.LOCATION, Category.DEVICE, Category.PERSON} <= report.categories()
    cleaned, _ = scrub(original)
    assert b"Jane Patient" not in cleaned and b"PhoneMaker" not in cleaned
    assert decoded(cleaned) == decoded(original)


def test_truncated_heif_is_damaged() -> None:
    original = factories.heif()
    for cut in (len(original) // 2, len(original) - 3, 40):
        with pytest.raises(DamagedFile):
            scrub(original[:cut])


def test_item_data_past_the_end_is_damaged() -> None:
    original = bytearray(factories.heif())
    mdat = original.index(b"mdat") - 4
    size = struct.unpack_from(">I", original, mdat)[0]
    del original[mdat + size - 10 :]  # the image data is cut off but the boxes still parse
    struct.pack_into(">I", original, mdat, len(original) - mdat)
    with pytest.raises(DamagedFile, match="past the end"):
        scrub(bytes(original))


def test_heif_without_a_still_image_is_refused() -> None:
    video = struct.pack(">I4s4sI4s", 20, b"ftyp", b"heic", 0, b"mif1") + struct.pack(
        ">I4s", 8, b"moov"
    )
    with pytest.raises(UnsupportedFormat, match="no meta box"):
        scrub(video)


def test_declared_pixel_bomb_is_refused_before_decoding() -> None:
    original = bytearray(factories.heif())
    ispe = original.index(b"ispe")
    struct.pack_into(">II", original, ispe + 8, 100_000, 100_000)
    with pytest.raises(TooLarge):
        scrub(bytes(original))


def _top_box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


@pytest.mark.parametrize("item", HEIF_FILES)
def test_the_strict_re_read_takes_only_what_the_cleaner_writes(item: CorpusFile) -> None:
    cleaned, _ = scrub(item.path.read_bytes())
    heif.strict(cleaned)  # the cleaner's own output passes, and so does verify
    verify(ImageFormat.HEIF, cleaned)
    top, _ = heif.parse(cleaned)
    mdat = next(b for b in top if b.kind == b"mdat")
    meta = next(b for b in top if b.kind == b"meta")
    bent = {
        # a box the cleaner never writes, between its own boxes
        "a free box": cleaned[: meta.start]
        + _top_box(b"free", b"Jane Roe")
        + cleaned[meta.start :],
        # a box after the last one
        "a box at the end": cleaned + _top_box(b"free", b"Jane Roe"),
        # mdat stretched past the item data it holds (the extents no longer fill it)
        "a padded mdat": cleaned[: mdat.start]
        + struct.pack(">I4s", mdat.end - mdat.start + 8, b"mdat")
        + cleaned[mdat.start + 8 :]
        + b"Jane Roe",
    }
    for what, data in bent.items():
        with pytest.raises(DamagedFile) as refused:
            heif.strict(data)
        if what != "a free box":  # that one also moves the data the offsets point at
            assert "not in the form the cleaner writes" in str(refused.value), what
        with pytest.raises(ScrubFailed, match="strict re-read"):
            verify(ImageFormat.HEIF, data)
