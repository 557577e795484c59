"""Redaction: covered pixels are gone, everything else is kept, nothing else is written."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageDraw

from skinvault.errors import DamagedFile, TooLarge, UnsupportedFormat
from skinvault.photos import icc
from skinvault.photos.redact import (
    MAX_BLOCKS,
    Redacted,
    RedactMode,
    RegionOutside,
    padded,
    redact,
)
from skinvault.photos.scrub import inspect
from skinvault.photos.sniff import ImageFormat
from tests import factories
from tests.conftest import decoded, exiftool_json, icc_colour

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
SIZE = (240, 180)
BOXES = [(20, 30, 60, 50), (150, 100, 40, 40)]
# exiftool groups a redacted photo may show: the file itself, its colour profile
# and the bare image structure (IFD0 only for TIFF, whose structure lives there).
STRUCTURE_GROUPS = {"ExifTool", "System", "File", "Composite", "JFIF", "PNG", "RIFF"}
TIFF_STRUCTURE = {
    "ImageWidth",
    "ImageHeight",
    "BitsPerSample",
    "Compression",
    "PhotometricInterpretation",
    "StripOffsets",
    "SamplesPerPixel",
    "RowsPerStrip",
    "StripByteCounts",
    "PlanarConfiguration",
    "Predictor",
    "ExtraSamples",
    "SampleFormat",
}


def detailed(size: tuple[int, int] = SIZE) -> Image.Image:
    """A busy, deterministic picture: shapes, lines and text over a gradient."""
    rng = random.Random(7)
    img = factories.image("RGB", size)
    draw = ImageDraw.Draw(img)
    for _ in range(60):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x, y, x + rng.randrange(4, 30), y + rng.randrange(4, 30)), fill=colour)
        draw.line((x, y, rng.randrange(size[0]), rng.randrange(size[1])), fill=colour, width=2)
    draw.text((25, 40), "Jane Patient", fill=(255, 255, 255))
    return img


def encoded(fmt: str, orientation: int = 1, icc: bytes | None = SRGB, **kw: object) -> bytes:
    buf = io.BytesIO()
    extra: dict[str, object] = {"exif": factories.gps_exif(orientation), **kw}
    if icc:
        extra["icc_profile"] = icc
    image = detailed()
    if fmt == "HEIF":
        import pillow_heif

        pillow_heif.register_heif_opener()
        extra["quality"] = 90
    elif fmt == "JPEG":
        extra.update(quality=95, comment=b"Jane Patient")
    elif fmt == "WEBP":
        extra["lossless"] = True
    image.save(buf, fmt, **extra)
    return buf.getvalue()


def pixels(data: bytes) -> np.ndarray:
    mode, size, raw = decoded(data)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[str(mode)]
    width, height = size  # type: ignore[misc]
    return np.frombuffer(raw, np.uint8).reshape(height, width, channels).astype(np.int16)  # type: ignore[arg-type]


def detail(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """High-pass of the grey region: what a recogniser looks at, without the colour wash."""
    from PIL import ImageFilter

    x, y, w, h = box
    grey = image[y : y + h, x : x + w].mean(axis=2).astype(np.uint8)
    smooth = np.asarray(Image.fromarray(grey).filter(ImageFilter.BoxBlur(3)), float)
    return (grey.astype(float) - smooth).ravel()


def mask_of(boxes: tuple[tuple[int, int, int, int], ...], shape: tuple[int, ...]) -> np.ndarray:
    inside = np.zeros(shape[:2], bool)
    for x, y, w, h in boxes:
        inside[max(0, y) : max(0, y + h), max(0, x) : max(0, x + w)] = True
    return inside


def metadata_left(result: Redacted, tmp_path: Path) -> list[str]:
    path = tmp_path / f"out.{result.format.value}"
    path.write_bytes(result.data)
    (meta,) = exiftool_json(path)
    left = []
    for key, value in meta.items():
        group, _, tag = key.partition(":")
        if not tag or group in STRUCTURE_GROUPS or group.startswith("ICC"):
            continue
        if group == "IFD0" and result.format is ImageFormat.TIFF and tag in TIFF_STRUCTURE:
            continue
        left.append(f"{key}={value}")
    return left


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
def test_lossless_formats_fill_every_box_and_keep_every_other_pixel(
    fmt: str, tmp_path: Path
) -> None:
    original = encoded(fmt)
    result = redact(original, BOXES)
    assert result.format.value == fmt.lower().replace("tif", "tiff").replace("tifff", "tiff")
    before, after = pixels(original), pixels(result.data)
    inside = mask_of(result.boxes_applied, before.shape)
    assert (after[inside] == 0).all(), "a covered pixel is not black"
    assert (after[~inside] == before[~inside]).all(), "a pixel outside the boxes changed"
    assert metadata_left(result, tmp_path) == []
    assert icc_colour(result.data) == icc.colour_tags(SRGB)
    assert inspect(result.data).findings == ()


def test_boxes_are_padded_by_a_tenth_and_clamped_to_the_image() -> None:
    assert padded((20, 30, 60, 50), SIZE) == (14, 25, 72, 60)
    assert padded((230, 170, 20, 20), SIZE) == (228, 168, 12, 12)
    assert padded((300, 300, 10, 10), SIZE) is None
    assert padded((10, 10, 0, 5), SIZE) is None


def test_jpeg_is_re_encoded_at_high_quality_with_its_icc_and_nothing_else(
    tmp_path: Path,
) -> None:
    original = encoded("JPEG")
    result = redact(original, BOXES)
    assert result.format is ImageFormat.JPEG
    before, after = pixels(original), pixels(result.data)
    # Areas are grown to whole JPEG blocks, so the fill decodes flat; only the
    # outermost pixel row blends with the neighbour outside (chroma upsampling).
    core = mask_of(
        tuple((x + 1, y + 1, w - 2, h - 2) for x, y, w, h in result.boxes_applied), before.shape
    )
    assert after[core].max() <= 2, "a covered pixel kept picture content"
    for x, y, w, h in result.boxes_applied:
        assert x % 8 == y % 8 == 0 and (w % 8 == 0 or x + w == SIZE[0])
        assert h % 8 == 0 or y + h == SIZE[1]
    # Away from the box edges (JPEG blocks straddle them), only re-encoding noise.
    near = mask_of(
        tuple((x - 16, y - 16, w + 32, h + 32) for x, y, w, h in result.boxes_applied), before.shape
    )
    assert np.abs(after[~near] - before[~near]).mean() < 2.5
    assert any("re-encoded" in n for n in result.notes)
    assert metadata_left(result, tmp_path) == []
    assert icc_colour(result.data) == icc.colour_tags(SRGB)
    assert b"Jane Patient" not in result.data


def test_jpeg_output_keeps_full_chroma_resolution() -> None:
    from PIL import JpegImagePlugin

    for code in (0, 2):
        original = encoded("JPEG", subsampling=code)
        out = redact(original, BOXES).data
        with Image.open(io.BytesIO(out)) as image:
            assert JpegImagePlugin.get_sampling(image) == 0


def test_orientation_is_applied_to_the_pixels_and_boxes_are_upright() -> None:
    original = encoded("PNG", orientation=6)
    result = redact(original, [(10, 20, 30, 40)])
    before, after = pixels(original), pixels(result.data)  # decoded() turns the original upright
    assert after.shape == before.shape == (SIZE[0], SIZE[1], 3)
    inside = mask_of(result.boxes_applied, before.shape)
    assert (after[inside] == 0).all() and (after[~inside] == before[~inside]).all()
    assert "orientation applied to the pixels" in result.notes


def test_heif_comes_out_as_a_clean_jpeg(tmp_path: Path) -> None:
    result = redact(encoded("HEIF"), BOXES)
    assert result.format is ImageFormat.JPEG and result.data[:2] == b"\xff\xd8"
    assert metadata_left(result, tmp_path) == []
    assert icc_colour(result.data) == icc.colour_tags(SRGB)
    assert any("was HEIF" in n for n in result.notes)


def test_blur_leaves_nothing_recognisable_inside_and_changes_nothing_outside() -> None:
    original = encoded("PNG")
    result = redact(original, BOXES, mode=RedactMode.BLUR)
    before, after = pixels(original), pixels(result.data)
    for x, y, w, h in result.boxes_applied:
        b = after[y : y + h, x : x + w].astype(float).ravel()
        # Not a fill (the area still looks like a blur of colour)...
        assert b.std() > 1
        # ...but detail is gone: the fine structure of the original does not survive.
        fine_before, fine_after = detail(before, (x, y, w, h)), detail(after, (x, y, w, h))
        assert abs(np.corrcoef(fine_before, fine_after)[0, 1]) < 0.25
        assert fine_after.std() < fine_before.std() / 20
        # At most MAX_BLOCKS distinct blocks across: row-to-row change is smooth.
        region = after[y : y + h, x : x + w].astype(float)
        assert (
            np.abs(np.diff(region, axis=1)).mean()
            < np.abs(np.diff(before[y : y + h, x : x + w].astype(float), axis=1)).mean() / 3
        )
    inside = mask_of(result.boxes_applied, before.shape)
    assert (after[~inside] == before[~inside]).all()
    assert MAX_BLOCKS <= 8


def test_blur_weaker_than_the_safe_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="recognition"):
        redact(encoded("PNG"), BOXES, mode="blur", blur_strength=0.5)


def test_crop_keeps_the_region_and_boxes_stay_in_original_coordinates() -> None:
    original = encoded("PNG")
    crop = (10, 20, 120, 100)
    result = redact(original, [(40, 50, 30, 30)], crop=crop)
    assert result.size == (120, 100) and result.crop == crop
    before, after = pixels(original), pixels(result.data)
    assert after.shape == (100, 120, 3)
    ((bx, by, bw, bh),) = result.boxes_applied
    region = before[20:120, 10:130].copy()
    inside = np.zeros(region.shape[:2], bool)
    inside[by - 20 : by - 20 + bh, bx - 10 : bx - 10 + bw] = True
    assert (after[inside] == 0).all()
    assert (after[~inside] == region[~inside]).all()


def test_crop_without_boxes_only_crops() -> None:
    result = redact(encoded("PNG"), [], crop=(0, 0, 50, 40))
    assert result.boxes_applied == () and result.size == (50, 40)
    assert (pixels(result.data) == pixels(encoded("PNG"))[:40, :50]).all()


def test_crop_past_the_edge_is_clamped_and_crop_outside_is_refused() -> None:
    result = redact(encoded("PNG"), [], crop=(200, 150, 100, 100))
    assert result.size == (40, 30) and any("clamped" in n for n in result.notes)
    with pytest.raises(RegionOutside, match="outside"):
        redact(encoded("PNG"), [], crop=(500, 500, 10, 10))


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (factories.jpeg()[:400], DamagedFile),
        (b"GIF89a" + bytes(40), UnsupportedFormat),
        (b"", DamagedFile),
        (factories.jpeg_with_sof_size(20000, 20000), TooLarge),
    ],
    ids=["truncated-jpeg", "gif", "empty", "bomb"],
)
def test_bad_input_raises_a_photo_error(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        redact(data, BOXES)


def test_palette_and_grey_images_are_redacted_too() -> None:
    for mode in ("P", "L"):
        buf = io.BytesIO()
        detailed().convert(mode).save(buf, "PNG")
        result = redact(buf.getvalue(), BOXES)
        after = pixels(result.data)
        assert (after[mask_of(result.boxes_applied, after.shape)] == 0).all()
