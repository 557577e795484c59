"""TIFF scrubbing: the real corpus files and small TIFFs built with chosen metadata."""

from __future__ import annotations

import io
import shutil
import struct
from pathlib import Path

import pytest
from PIL import Image

from skinvault.errors import DamagedFile, UnsupportedFormat
from skinvault.photos import tiff
from skinvault.photos.findings import Category
from skinvault.photos.ifd import TiffReader
from skinvault.photos.scrub import inspect, scrub
from tests import factories
from tests.conftest import (
    CORPUS,
    CORPUS_FILES,
    CorpusFile,
    decoded,
    exiftool_json,
    icc_colour,
    icc_profile,
)

TIFFS = [f for f in CORPUS_FILES if f.format == "tiff" and not f.name.endswith(".dng")]
# exiftool groups a cleaned TIFF may show: its own structure, the colour profile, file facts.
ALLOWED_GROUPS = {"IFD0", "File", "System", "ExifTool", "Composite", "SourceFile"}
IDENTIFYING_IFD0 = {
    "Artist",
    "Copyright",
    "Software",
    "ModifyDate",
    "Make",
    "Model",
    "ImageDescription",
    "HostComputer",
    "DocumentName",
    "ModelTransform",
    "ModelTiePoint",
    "PixelScale",
}
NEEDS_EXIFTOOL = pytest.mark.skipif(
    shutil.which("exiftool") is None, reason="exiftool not installed (scripts/test installs it)"
)


def corpus(name: str) -> bytes:
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"corpus file {name} not found under {CORPUS}")
    return path.read_bytes()


def leftovers(data: bytes, tmp_path: Path) -> dict[str, object]:
    """What exiftool still reads from ``data`` beyond the allowed structure."""
    out = tmp_path / "cleaned.tif"
    out.write_bytes(data)
    (tags,) = exiftool_json(out)
    left = {}
    for key, value in tags.items():
        group, _, name = key.partition(":")
        if group.startswith("ICC") or (group in ALLOWED_GROUPS and name not in IDENTIFYING_IFD0):
            continue
        left[key] = value
    return left


def synthetic(orientation: int = 1, pages: int = 1) -> bytes:
    """A small TIFF with camera, owner, time, software and GPS; optional extra pages."""
    buf = io.BytesIO()
    extra = [factories.image(size=(16, 12)) for _ in range(pages - 1)]
    factories.image().save(
        buf, "TIFF", exif=factories.gps_exif(orientation), save_all=True, append_images=extra
    )
    return buf.getvalue()


def patch_entry(
    data: bytes, tag: int, *, new_tag: int | None = None, value: int | None = None
) -> bytes:
    """Rewrite one IFD0 entry of an uncompressed TIFF in place (tag number or inline LONG/SHORT)."""
    reader = TiffReader(data)
    ifd0 = reader.read_ifd(reader.first_ifd_offset)
    out = bytearray(data)
    (count,) = struct.unpack(reader.order + "H", data[ifd0.offset : ifd0.offset + 2])
    for pos in range(ifd0.offset + 2, ifd0.offset + 2 + 12 * count, 12):
        entry_tag, typ = struct.unpack(reader.order + "HH", data[pos : pos + 4])
        if entry_tag != tag:
            continue
        if new_tag is not None:
            out[pos : pos + 2] = struct.pack(reader.order + "H", new_tag)
        if value is not None:
            code = "H" if typ == 3 else "I"
            packed = struct.pack(reader.order + code, value)
            out[pos + 8 : pos + 8 + len(packed)] = packed
        return bytes(out)
    raise AssertionError(f"tag {tag} not in IFD0")


def set_next_ifd(data: bytes, offset: int | None = None) -> bytes:
    """Point IFD0's next-IFD field at ``offset`` (default: IFD0 itself, a loop)."""
    reader = TiffReader(data)
    start = reader.first_ifd_offset
    (count,) = struct.unpack(reader.order + "H", data[start : start + 2])
    pos = start + 2 + 12 * count
    target = start if offset is None else offset
    return data[:pos] + struct.pack(reader.order + "I", target) + data[pos + 4 :]


# --- the real corpus ------------------------------------------------------------------------


@pytest.mark.parametrize("item", [pytest.param(f, id=f.name) for f in TIFFS] or [None])
def test_corpus_tiff_is_cleaned_losslessly_and_reveals_nothing(
    item: CorpusFile | None, tmp_path: Path
) -> None:
    if item is None:
        pytest.skip(f"no TIFF corpus at {CORPUS}")
    original = item.path.read_bytes()
    cleaned, report = scrub(original)
    assert report.lossless is True
    assert decoded(cleaned) == decoded(original)
    assert icc_colour(cleaned) == icc_colour(original)
    assert tiff.findings(cleaned) == []
    assert cleaned[:2] == original[:2]  # same byte order
    if shutil.which("exiftool") is not None:
        assert leftovers(cleaned, tmp_path) == {}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("096-tiff-cr-mieux11.tiff", {Category.TIME, Category.PERSON, Category.SOFTWARE}),
        ("097-tiff-dudleyleavittutah.tiff", {Category.TIME, Category.PERSON, Category.SOFTWARE}),
        (
            "111-exiftool-exiftool.tif",
            {
                Category.TIME,
                Category.PERSON,
                Category.SOFTWARE,
                Category.DEVICE,
                Category.COMMENT,
                Category.LOCATION,  # IPTC city, province and country
            },
        ),
    ],
)
def test_corpus_findings_name_what_the_manifest_lists(name: str, expected: set[Category]) -> None:
    found = tiff.findings(corpus(name))
    assert expected <= {f.category for f in found}


def test_named_people_and_software_are_spelled_out() -> None:
    text = " ".join(f.description for f in tiff.findings(corpus("096-tiff-cr-mieux11.tiff")))
    assert "Jean Cornillon" in text
    assert "Mac OS X" in text
    assert "2012:01:09" in text


def test_iptc_block_is_reported_with_its_place_names() -> None:
    found = tiff.findings(corpus("111-exiftool-exiftool.tif"))
    iptc = [f for f in found if "IPTC" in f.where]
    assert any("Kingston" in f.description for f in iptc)


def test_xmp_packet_is_a_finding() -> None:
    found = tiff.findings(corpus("094-tiff-arbitro.tiff"))
    assert any("XMP" in f.where for f in found)


def test_geotiff_coordinates_are_a_location() -> None:
    found = tiff.findings(corpus("119-exiftool-geotiff.tif"))
    geo = [f for f in found if f.category is Category.LOCATION]
    assert geo
    assert "GeoTIFF" in geo[0].description


def test_icc_profile_alone_is_not_a_finding() -> None:
    assert tiff.findings(corpus("101-tiff-tless0.tiff")) == []
    assert icc_profile(corpus("101-tiff-tless0.tiff"))


def test_dng_is_refused_but_can_be_inspected() -> None:
    data = corpus("109-exiftool-dng.dng")
    with pytest.raises(UnsupportedFormat, match="DNG"):
        scrub(data)
    assert Category.DEVICE in inspect(data).categories()


# --- small TIFFs with chosen metadata -------------------------------------------------------


def test_synthetic_tiff_metadata_found_then_removed(tmp_path: Path) -> None:
    original = synthetic()
    categories = {f.category for f in tiff.findings(original)}
    assert {
        Category.LOCATION,
        Category.TIME,
        Category.DEVICE,
        Category.PERSON,
        Category.SOFTWARE,
    } <= categories
    cleaned, _ = scrub(original)
    assert tiff.findings(cleaned) == []
    assert decoded(cleaned) == decoded(original)
    for secret in (b"Jane Patient", b"PhoneMaker", b"Model X", b"EditorApp", b"2024:05:03"):
        assert secret not in cleaned


@NEEDS_EXIFTOOL
def test_exiftool_sees_none_of_the_removed_metadata(tmp_path: Path) -> None:
    cleaned, _ = scrub(synthetic(pages=2))
    assert leftovers(cleaned, tmp_path) == {}
    (tags,) = exiftool_json(tmp_path / "cleaned.tif")
    assert not any(k.startswith(("GPS", "ExifIFD", "IFD1")) for k in tags)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_orientation_is_kept_so_the_photo_stays_upright(orientation: int) -> None:
    original = synthetic(orientation)
    cleaned, _ = scrub(original)
    with Image.open(io.BytesIO(cleaned)) as img:
        assert img.getexif().get(0x0112) == orientation
    assert decoded(cleaned) == decoded(original)


def test_further_pages_are_reported_and_dropped() -> None:
    original = synthetic(pages=3)
    found = tiff.findings(original)
    assert any(f.category is Category.THUMBNAIL and "second image" in f.description for f in found)
    cleaned, report = scrub(original)
    with Image.open(io.BytesIO(cleaned)) as img:
        assert getattr(img, "n_frames", 1) == 1
    assert any("first image" in n for n in report.notes)
    assert decoded(cleaned) == decoded(original)  # the first page, unchanged


@pytest.mark.parametrize("compression", ["jpeg", "tiff_adobe_deflate", "packbits", "tiff_lzw"])
def test_compressed_strips_are_copied_byte_for_byte(compression: str) -> None:
    buf = io.BytesIO()
    factories.image().save(
        buf, "TIFF", compression=compression, tiffinfo={315: "Jane Patient", 305: "EditorApp"}
    )
    original = buf.getvalue()
    cleaned, report = scrub(original)
    assert report.lossless is True
    assert b"Jane Patient" not in cleaned
    assert decoded(cleaned) == decoded(original)


def test_other_fields_are_summarised_once() -> None:
    buf = io.BytesIO()
    factories.image().save(buf, "TIFF", tiffinfo={285: "ward 3 page", 297: (1, 2)})
    others = [f for f in tiff.findings(buf.getvalue()) if f.category is Category.OTHER]
    assert len(others) == 1
    assert "PageName" in others[0].description


# --- damaged and refused files --------------------------------------------------------------


def plain() -> bytes:
    buf = io.BytesIO()
    factories.image().save(buf, "TIFF")
    return buf.getvalue()


@pytest.mark.parametrize("cut", [6, 20, 100, 2000])
def test_truncated_file_is_damaged(cut: int) -> None:
    data = corpus("111-exiftool-exiftool.tif")[:cut]
    with pytest.raises(DamagedFile):
        tiff.clean(data)
    with pytest.raises(DamagedFile):
        scrub(data)


def test_strip_offset_past_the_end_is_damaged() -> None:
    data = patch_entry(plain(), 273, value=10_000_000)
    with pytest.raises(DamagedFile, match="past the end"):
        tiff.clean(data)


def test_strip_length_past_the_end_is_damaged() -> None:
    data = patch_entry(plain(), 279, value=10_000_000)
    with pytest.raises(DamagedFile, match="past the end"):
        tiff.clean(data)


def test_ifd_that_points_to_itself_is_damaged_not_a_hang() -> None:
    data = set_next_ifd(plain())
    with pytest.raises(DamagedFile, match="loops"):
        tiff.findings(data)
    with pytest.raises(DamagedFile, match="loops"):
        tiff.clean(data)


def test_next_ifd_past_the_end_is_damaged() -> None:
    data = set_next_ifd(plain(), 10_000_000)
    with pytest.raises(DamagedFile):
        tiff.findings(data)


def test_first_image_without_strips_is_refused() -> None:
    data = patch_entry(patch_entry(plain(), 273, new_tag=65000), 279, new_tag=65001)
    with pytest.raises(UnsupportedFormat, match="no image data"):
        tiff.clean(data)


def test_strip_offsets_without_lengths_are_damaged() -> None:
    data = patch_entry(plain(), 279, new_tag=65001)
    with pytest.raises(DamagedFile):
        tiff.clean(data)


def test_old_style_jpeg_compression_is_refused() -> None:
    data = patch_entry(plain(), 259, value=6)
    with pytest.raises(UnsupportedFormat, match="old-style JPEG"):
        tiff.clean(data)


def test_huge_declared_size_is_refused_before_reading_pixels() -> None:
    from skinvault.errors import TooLarge

    data = patch_entry(patch_entry(plain(), 256, value=60_000), 257, value=60_000)
    with pytest.raises(TooLarge):
        tiff.clean(data)
