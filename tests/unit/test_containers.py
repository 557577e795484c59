"""JPEG, PNG and WebP scrubbing on photos built with chosen metadata."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image, ImageCms

from skinvault.errors import DamagedFile, PhotoError, TooLarge, UnsupportedFormat
from skinvault.photos import exif, icc
from skinvault.photos.findings import Category
from skinvault.photos.scrub import inspect, scrub
from tests import factories
from tests.conftest import decoded, icc_colour, icc_profile

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize("make", [factories.jpeg, factories.png, factories.webp])
def test_gps_time_device_and_owner_are_found_then_removed(make: object) -> None:
    original = make()  # type: ignore[operator]
    report = inspect(original)
    categories = report.categories()
    assert {Category.LOCATION, Category.TIME, Category.DEVICE, Category.PERSON} <= categories
    gps = next(f for f in report.findings if f.category is Category.LOCATION)
    assert "≈ 52.52 N, 13.41 E" in gps.description

    cleaned, scrub_report = scrub(original)
    assert scrub_report.lossless is True
    assert inspect(cleaned).findings == ()
    assert b"Jane Patient" not in cleaned and b"PhoneMaker" not in cleaned
    assert decoded(cleaned) == decoded(original)


@pytest.mark.parametrize("make", [factories.jpeg, factories.png, factories.webp])
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_orientation_is_kept_so_the_photo_stays_upright(make: object, orientation: int) -> None:
    original = make(orientation)  # type: ignore[operator]
    cleaned, report = scrub(original)
    with Image.open(io.BytesIO(cleaned)) as img:
        assert img.getexif().get(0x0112) == orientation
        assert len(img.getexif()) == 1  # Orientation and nothing else
    assert any("Orientation" in n for n in report.notes)
    assert decoded(cleaned) == decoded(original)


def _with_tag(profile: bytes, sig: bytes, value: bytes) -> bytes:
    """``profile`` with one more tag appended (a valid profile, for size tests)."""
    (count,) = struct.unpack_from(">I", profile, 128)
    table_end = 132 + 12 * count
    rows = [
        struct.pack(">4sII", *struct.unpack_from(">4sII", profile, 132 + 12 * i))
        for i in range(count)
    ]
    shifted = [
        struct.pack(
            ">4sII",
            r[:4],
            struct.unpack(">I", r[4:8])[0] + 12,
            r[8:12] and struct.unpack(">I", r[8:12])[0],
        )
        for r in rows
    ]
    data = profile[table_end:] + bytes(-len(profile) % 4)
    new_row = struct.pack(">4sII", sig, table_end + 12 + len(data), len(value))
    out = bytearray(
        profile[:128] + struct.pack(">I", count + 1) + b"".join(shifted) + new_row + data + value
    )
    out[0:4] = struct.pack(">I", len(out))
    return bytes(out)


def test_icc_colour_data_is_kept_byte_for_byte_and_its_text_made_neutral() -> None:
    original = factories.jpeg(icc=SRGB)
    cleaned, _ = scrub(original)
    profile = icc_profile(cleaned)
    assert profile is not None
    assert icc.colour_tags(profile) == icc.colour_tags(SRGB)
    described = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(profile)))
    assert described.strip() == icc.NEUTRAL_TEXT
    assert decoded(cleaned) == decoded(original)


def test_multi_segment_icc_profile_is_kept_in_order() -> None:
    big_icc = _with_tag(SRGB, b"A2B0", b"mft2" + bytes(range(256)) * 600)  # > 64 KB
    icc.tags(big_icc)  # a valid profile
    original = factories.jpeg(icc=big_icc)
    assert original.count(b"ICC_PROFILE\x00") >= 3
    cleaned, _ = scrub(original)
    profile = icc_profile(cleaned)
    assert profile is not None and icc.colour_tags(profile) == icc.colour_tags(big_icc)


def test_cmyk_jpeg_keeps_its_adobe_marker_and_pixels() -> None:
    original = factories.jpeg(mode="CMYK")
    assert b"Adobe" in original
    cleaned, _ = scrub(original)
    assert b"Adobe" in cleaned
    assert decoded(cleaned) == decoded(original)


def test_entropy_coded_data_is_copied_byte_for_byte() -> None:
    original = factories.jpeg()
    cleaned, _ = scrub(original)
    sos = original.index(b"\xff\xda")
    scan = original[sos : original.rindex(b"\xff\xd9")]
    assert scan in cleaned


def test_trailing_data_and_second_image_after_eoi_are_reported_and_removed() -> None:
    hidden = factories.jpeg()
    original = factories.jpeg() + hidden + b"vendor-trailer"
    report = inspect(original)
    assert Category.THUMBNAIL in report.categories()
    cleaned, _ = scrub(original)
    assert cleaned.endswith(b"\xff\xd9") and cleaned.count(b"\xff\xd8") == 1


def test_png_text_chunks_and_time_are_removed_but_colour_chunks_stay() -> None:
    buf = io.BytesIO()
    factories.image().save(buf, "PNG", icc_profile=SRGB, dpi=(300, 300))
    original = buf.getvalue()
    iend = original.index(b"IEND") - 4
    time_chunk = _png_chunk(b"tIME", struct.pack(">HBBBBB", 2024, 5, 3, 10, 11, 12))
    original = original[:iend] + time_chunk + original[iend:]
    assert Category.TIME in inspect(original).categories()
    cleaned, _ = scrub(original)
    assert b"tIME" not in cleaned and b"iCCP" in cleaned and b"pHYs" in cleaned
    assert icc_colour(cleaned) == icc.colour_tags(SRGB)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    import zlib

    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_webp_vp8x_flags_and_riff_size_are_fixed() -> None:
    original = factories.webp()
    cleaned, _ = scrub(original)
    assert b"XMP " not in cleaned and b"EXIF" not in cleaned
    assert struct.unpack("<I", cleaned[4:8])[0] == len(cleaned) - 8
    flags = cleaned[cleaned.index(b"VP8X") + 8]
    assert flags & 0x0C == 0
    assert decoded(cleaned) == decoded(original)


def test_minimal_exif_holds_only_orientation() -> None:
    block = exif.minimal_exif(6)
    assert exif.orientation(block) == 6
    assert exif.findings(block) == []


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        (b"", DamagedFile, "empty"),
        (b"hello, this is a text file\n", UnsupportedFormat, "not an image"),
        (b"GIF89a" + bytes(20), UnsupportedFormat, "GIF"),
        (factories.jpeg()[:300], DamagedFile, "truncated"),
        (factories.jpeg()[:-2], DamagedFile, "end-of-image"),
        (factories.png()[:-20], DamagedFile, "truncated or corrupt"),
        (factories.webp()[:-10], DamagedFile, "truncated"),
        (factories.jpeg_with_sof_size(65000, 65000), TooLarge, "decompression bomb"),
    ],
    ids=["empty", "text", "gif", "jpeg-cut", "jpeg-no-eoi", "png-cut", "webp-cut", "bomb"],
)
def test_bad_input_gets_a_clear_error(data: bytes, error: type[PhotoError], words: str) -> None:
    with pytest.raises(error, match=words):
        scrub(data)


def test_segment_length_past_the_end_is_damage() -> None:
    data = bytearray(factories.jpeg())
    app1 = data.index(b"\xff\xe1")
    data[app1 + 2 : app1 + 4] = b"\xff\xf0"
    with pytest.raises(DamagedFile, match="past the end"):
        scrub(bytes(data))


def test_png_bomb_is_refused_from_its_header() -> None:
    data = bytearray(factories.png())
    data[16:24] = struct.pack(">II", 100_000, 100_000)
    with pytest.raises(TooLarge):
        inspect(bytes(data))


def test_exif_ifd_loop_terminates_with_findings() -> None:
    # IFD0 whose next-IFD pointer and EXIF pointer both point back at itself.
    ifd = struct.pack(">H", 2)
    ifd += struct.pack(">HHII", 0x010F, 2, 4, int.from_bytes(b"Cam\x00", "big"))
    ifd += struct.pack(">HHII", 0x8769, 4, 1, 8)
    block = b"MM\x00\x2a\x00\x00\x00\x08" + ifd + struct.pack(">I", 8)
    payload = b"Exif\x00\x00" + block
    original = factories.jpeg()
    soi_end = 2
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    looped = original[:soi_end] + segment + original[soi_end:]
    report = inspect(looped)
    assert any("Cam" in f.description for f in report.findings)
    cleaned, _ = scrub(looped)
    assert b"Cam\x00" not in cleaned


def test_verification_skips_copied_scan_data_but_still_sees_added_segments() -> None:
    from skinvault.photos import jpeg
    from skinvault.photos.scrub import clean

    cleaned, _ = clean(factories.jpeg())
    output = cleaned.data
    assert cleaned.opaque and jpeg.findings(output, cleaned.opaque) == []
    # A comment smuggled in after the copied scan data is still found...
    smuggled = output[:-2] + b"\xff\xfe\x00\x08secret" + output[-2:]
    assert [f.category for f in jpeg.findings(smuggled, cleaned.opaque)] == [Category.COMMENT]
    # ...and a range that does not end at a marker is damage, not trust.
    start, length = cleaned.opaque[0]
    with pytest.raises(DamagedFile, match="does not end at a marker"):
        jpeg.findings(output, ((start, length - 1),))


def test_webp_canvas_bomb_is_refused_from_its_header() -> None:
    data = bytearray(factories.webp())
    vp8x = data.index(b"VP8X") + 8
    data[vp8x + 4 : vp8x + 10] = (0xFFFFFF).to_bytes(3, "little") * 2
    with pytest.raises(TooLarge, match="decompression bomb"):
        inspect(bytes(data))


def test_a_simple_lossy_webp_bomb_is_refused_from_its_frame_header() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 150, 120)).save(buf, "WEBP", quality=80)
    data = bytearray(buf.getvalue())
    assert data[12:16] == b"VP8 "  # the simple format: no VP8X canvas header
    inspect(bytes(data))  # as made: accepted
    frame = 20 + 6  # chunk header, then the 3-byte frame tag and 3-byte start code
    data[frame : frame + 4] = struct.pack("<HH", 16383, 16383)  # 268 MP
    with pytest.raises(TooLarge, match="decompression bomb"):
        inspect(bytes(data))
    with pytest.raises(TooLarge):
        scrub(bytes(data))
