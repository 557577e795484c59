"""Cover areas of a photo (faces, a letter, a badge) and crop it: bytes in, clean bytes out.

    >>> result = redact(photo_bytes, [(120, 40, 80, 96)])          # doctest: +SKIP
    >>> result.format, result.boxes_applied                           # doctest: +SKIP
    (<ImageFormat.JPEG: 'jpeg'>, ((112, 30, 96, 116),))
    >>> redact(photo_bytes, [], crop=(0, 200, 1200, 900)).notes     # doctest: +SKIP

Boxes are ``(x, y, w, h)`` in pixels of the *upright* photo (EXIF orientation
applied), the coordinates :func:`skinvault.photos.clues.find_clues` returns.
Each box is padded by 10 % on every side, because detectors draw tight boxes
and an ear, a hairline or the end of a word just outside one still identifies.
For JPEG output the area is then grown to whole 8 × 8 blocks, so no block
mixes fill with picture and the encoder smears no trace of the picture into
the fill.

**Fill, not blur, by default.** A solid fill leaves nothing to recover. Blur is
an explicit option, and a strong one: the area is first pixelated to at most 8
blocks across its longer side, then Gaussian-blurred with a radius of about one
block. A plain Gaussian blur or a fine mosaic is *not* safe: face recognisers
trained on blurred faces re-identify moderately blurred and 16 × 16-mosaic
faces well above chance (McPherson, Shokri & Shmatikov, "Defeating Image
Obfuscation with Deep Learning", 2016), and text under light blur can be
guessed by matching candidate words. Eight blocks leave at most 64 averages of
a face, too few for recognition; the blur only removes the block edges so the
result does not look like a broken image.

**Re-encoding is unavoidable.** Changed pixels need a new encoding: JPEG at
quality 95 with full-resolution chroma (4:4:4, see :func:`_encode`), PNG and WebP
losslessly, TIFF with lossless Deflate, HEIF/AVIF as JPEG at quality 95 (every
viewer opens it; the pixels are re-encoded anyway). The orientation is applied
to the pixels, so no EXIF is needed; the ICC profile's colour data is kept
byte for byte (skin colour matters clinically; the final scrub makes its text
neutral, see :mod:`skinvault.photos.icc`); nothing else is written. The result then
passes through :func:`skinvault.photos.scrub.scrub` as a final guard, so it is
held to the same standard as every other output.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from PIL import Image, ImageFilter, ImageOps

from skinvault.errors import DamagedFile, RegionOutside, TooLarge
from skinvault.photos.limits import check_file_size, open_image
from skinvault.photos.scrub import scrub
from skinvault.photos.sniff import ImageFormat, sniff

Box = tuple[int, int, int, int]

#: Padding added on every side of a box, as a fraction of its width/height.
PADDING = 0.10
#: A blurred box keeps at most this many blocks across its longer side.
MAX_BLOCKS = 8
JPEG_QUALITY = 95
#: Opaque black in every mode we write (converted modes cover the rest).
_FILL: dict[str, int | tuple[int, ...]] = {
    "L": 0,
    "LA": (0, 255),
    "RGB": (0, 0, 0),
    "RGBA": (0, 0, 0, 255),
    "CMYK": (0, 0, 0, 255),
}
_BLURRABLE = {"L", "LA", "RGB", "RGBA", "CMYK"}
# Pillow's JPEG subsampling codes: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0.
_SUBSAMPLING_NAMES = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}


class RedactMode(StrEnum):
    FILL = "fill"
    BLUR = "blur"


@dataclass(frozen=True)
class Decoded:
    """An upright, fully decoded photo and what re-encoding it needs to know."""

    image: Image.Image
    format: ImageFormat
    icc_profile: bytes | None
    #: Pillow's subsampling code of the source JPEG (for the notes), or None.
    subsampling: int | None
    notes: tuple[str, ...] = ()

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


@dataclass(frozen=True)
class Redacted:
    """The clean, re-encoded bytes and what was done to them."""

    data: bytes
    format: ImageFormat
    #: The areas actually covered, one per box inside the image, in input order:
    #: padded, block-aligned for JPEG, clamped, in pre-crop upright pixels.
    boxes_applied: tuple[Box, ...]
    notes: tuple[str, ...]
    #: (width, height) of the output.
    size: tuple[int, int]
    #: The crop actually applied (clamped to the image), or None.
    crop: Box | None = None


def decode(data: bytes) -> Decoded:
    """Decode ``data`` fully and apply its EXIF orientation to the pixels.

    Raises :class:`UnsupportedFormat`, :class:`DamagedFile` or :class:`TooLarge`
    with a plain sentence, like the scrubber does.
    """
    check_file_size(len(data))
    fmt = sniff(data)
    notes: list[str] = []
    try:
        with open_image(data) as source:
            if getattr(source, "n_frames", 1) > 1:
                notes.append("only the first frame or page is kept")
            icc = source.info.get("icc_profile") or None
            subsampling = None
            if fmt is ImageFormat.JPEG:
                from PIL import JpegImagePlugin  # noqa: PLC0415

                code = JpegImagePlugin.get_sampling(source)
                subsampling = code if code in _SUBSAMPLING_NAMES else None
            orientation = source.getexif().get(0x0112, 1)
            source.load()
            upright = ImageOps.exif_transpose(source)
    except TooLarge:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, KeyError, IndexError) as exc:
        raise DamagedFile(f"the image data cannot be decoded ({exc})") from exc
    if orientation not in (1, None):
        notes.append("orientation applied to the pixels")
    upright = _working(upright)
    upright.info = {}  # nothing from the source reaches the encoder by accident
    return Decoded(upright, fmt, bytes(icc) if icc else None, subsampling, tuple(notes))


def padded(box: Box, size: tuple[int, int], padding: float = PADDING) -> Box | None:
    """``box`` grown by ``padding`` on every side and clamped to ``size``; None if outside."""
    x, y, w, h = box
    if w <= 0 or h <= 0:
        return None
    dx, dy = max(1, round(w * padding)), max(1, round(h * padding))
    left, top = max(0, x - dx), max(0, y - dy)
    right, bottom = min(size[0], x + w + dx), min(size[1], y + h + dy)
    if right <= left or bottom <= top:
        return None
    return left, top, right - left, bottom - top


def _aligned(box: Box, size: tuple[int, int], grid: int, origin: tuple[int, int]) -> Box:
    """``box`` grown outward to the JPEG block grid (counted from ``origin``), clamped.

    A fill that ends mid-block shares DCT blocks with the picture beside it, so
    the encoder smears a little of that picture into the fill; whole blocks
    decode to the flat fill colour.
    """
    x, y, w, h = box
    ox, oy = origin
    left = ox + (x - ox) // grid * grid
    top = oy + (y - oy) // grid * grid
    right = ox - (-(x + w - ox) // grid) * grid
    bottom = oy - (-(y + h - oy) // grid) * grid
    left, top = max(0, left), max(0, top)
    right, bottom = min(size[0], right), min(size[1], bottom)
    return left, top, right - left, bottom - top


def _working(image: Image.Image) -> Image.Image:
    """A mode every step below supports, without losing what the source had."""
    if image.mode in ("1", "P", "PA"):
        has_alpha = image.mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if has_alpha else "RGB")
    return image


def _fill(image: Image.Image, box: Box) -> None:
    x, y, w, h = box
    image.paste(_FILL.get(image.mode, 0), (x, y, x + w, y + h))


def _blur(image: Image.Image, box: Box, strength: float) -> None:
    x, y, w, h = box
    region = image.crop((x, y, x + w, y + h))
    blocks = max(1, int(MAX_BLOCKS / strength))
    scale = max(w, h) / blocks
    small = (max(1, round(w / scale)), max(1, round(h / scale)))
    mosaic = region.resize(small, Image.Resampling.BOX).resize((w, h), Image.Resampling.NEAREST)
    if mosaic.mode in _BLURRABLE:
        mosaic = mosaic.filter(ImageFilter.GaussianBlur(radius=scale * strength))
    image.paste(mosaic, (x, y))


def _clamped_crop(crop: Box, size: tuple[int, int]) -> Box:
    x, y, w, h = crop
    if w <= 0 or h <= 0:
        raise RegionOutside(f"the crop {x},{y},{w},{h} has no area (width and height must be > 0)")
    left, top = max(0, x), max(0, y)
    right, bottom = min(size[0], x + w), min(size[1], y + h)
    if right <= left or bottom <= top:
        raise RegionOutside(
            f"the crop {x},{y},{w},{h} lies outside the {size[0]} × {size[1]} image"
        )
    return left, top, right - left, bottom - top


def _encode(decoded: Decoded, image: Image.Image) -> tuple[bytes, ImageFormat, str]:
    """Encode ``image`` in (nearly) the source format: bytes, format, a note saying how."""
    out = io.BytesIO()
    extra: dict[str, Any] = {}
    if decoded.icc_profile:
        extra["icc_profile"] = decoded.icc_profile
    fmt = decoded.format
    if fmt in (ImageFormat.JPEG, ImageFormat.HEIF):
        if image.mode not in ("L", "RGB", "CMYK"):
            # JPEG has no alpha; keep grey grey so a grey ICC profile still fits.
            image = image.convert("L" if image.mode.startswith("L") else "RGB")
        # Always 4:4:4: subsampling chroma that was already subsampled and
        # upsampled compounds the loss (measured mean error on a saturated test
        # image 4.9 vs 1.8 levels, on a photo 0.34 vs 0.16), and skin colour
        # matters clinically. The price is ~30 % more bytes.
        image.save(out, "JPEG", quality=JPEG_QUALITY, subsampling=0, **extra)
        how = f"JPEG, quality {JPEG_QUALITY}, 4:4:4"
        if decoded.subsampling not in (0, None):
            how += f" (source {_SUBSAMPLING_NAMES[decoded.subsampling]})"
        if fmt is ImageFormat.HEIF:
            how = f"JPEG (was HEIF; {how.removeprefix('JPEG, ')})"
        return out.getvalue(), ImageFormat.JPEG, how
    if fmt is ImageFormat.PNG:
        image.save(out, "PNG", **extra)
        return out.getvalue(), fmt, "PNG, lossless"
    if fmt is ImageFormat.WEBP:
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.mode else "RGB")
        image.save(out, "WEBP", lossless=True, quality=100, exact=True, **extra)
        return out.getvalue(), fmt, "WebP, lossless"
    image.save(out, "TIFF", compression="tiff_adobe_deflate", **extra)
    return out.getvalue(), fmt, "TIFF, lossless Deflate"


def _block_grid(decoded: Decoded) -> int:
    """The JPEG block size of the output in pixels (1 for lossless outputs)."""
    return 8 if decoded.format in (ImageFormat.JPEG, ImageFormat.HEIF) else 1


def redact_decoded(
    decoded: Decoded,
    boxes: Sequence[Box],
    *,
    mode: RedactMode | str = RedactMode.FILL,
    blur_strength: float = 1.0,
    crop: Box | None = None,
) -> Redacted:
    """:func:`redact` for a photo already decoded (the CLI detects and redacts one decode)."""
    mode = RedactMode(mode)
    if blur_strength < 1.0:
        raise ValueError("blur_strength below 1 would no longer defeat recognition")
    image = decoded.image.copy()
    size = image.size
    region = None if crop is None else _clamped_crop(crop, size)
    grid = _block_grid(decoded)
    applied: list[Box] = []
    for box in boxes:
        area = padded(box, size)
        if area is None:
            continue
        if grid > 1:
            area = _aligned(area, size, grid, region[:2] if region else (0, 0))
        if mode is RedactMode.FILL:
            _fill(image, area)
        else:
            _blur(image, area, blur_strength)
        applied.append(area)
    notes = list(decoded.notes)
    if applied:
        how = "filled in black" if mode is RedactMode.FILL else "pixelated and blurred"
        notes.append(f"{len(applied)} area(s) {how}, padded by {PADDING:.0%}")
    skipped = len(boxes) - len(applied)
    if skipped:
        notes.append(f"{skipped} box(es) outside the image ignored")
    if region is not None:
        assert crop is not None
        x, y, w, h = region
        image = image.crop((x, y, x + w, y + h))
        clamped = " (clamped to the image)" if region != tuple(crop) else ""
        notes.append(f"cropped to {w} × {h} at {x},{y}{clamped}")
    data, fmt, how = _encode(decoded, image)
    notes.append(
        f"re-encoded as {how}: changed pixels need a new encoding; no metadata written"
        + ("; ICC profile kept" if decoded.icc_profile else "")
    )
    cleaned, _ = scrub(data)  # final guard: held to the scrubber's own standard
    return Redacted(cleaned, fmt, tuple(applied), tuple(notes), image.size, region)


def redact(
    data: bytes,
    boxes: Sequence[Box],
    *,
    mode: RedactMode | str = RedactMode.FILL,
    blur_strength: float = 1.0,
    crop: Box | None = None,
) -> Redacted:
    """Cover every box (fill by default), then crop if asked, and re-encode without metadata.

    ``boxes`` and ``crop`` are ``(x, y, w, h)`` in upright pixels of the input;
    ``blur_strength`` ≥ 1 makes the blur coarser (fewer blocks, wider blur).
    """
    return redact_decoded(decode(data), boxes, mode=mode, blur_strength=blur_strength, crop=crop)


#: Outline colours of :func:`outlined` by clue kind (anything else: magenta).
OUTLINE_COLOURS = {"face": (255, 40, 40), "text": (255, 200, 0)}


def outlined(decoded: Decoded, boxes: Sequence[tuple[str, Box]]) -> bytes:
    """A JPEG of the upright photo with each ``(kind, box)`` outlined; no metadata, ICC kept.

    For showing what was found before deciding what to redact; it still shows
    everything, so it is written only where the user asked (``clues --preview``).
    """
    from PIL import ImageDraw  # noqa: PLC0415

    image = decoded.image.convert("RGB")
    draw = ImageDraw.Draw(image)
    width = max(2, round(max(image.size) / 300))
    for kind, (x, y, w, h) in boxes:
        colour = OUTLINE_COLOURS.get(kind, (255, 0, 255))
        draw.rectangle((x, y, x + w - 1, y + h - 1), outline=colour, width=width)
    out = io.BytesIO()
    extra: dict[str, Any] = {}
    if decoded.icc_profile and decoded.image.mode in ("RGB", "RGBA"):
        extra["icc_profile"] = decoded.icc_profile  # a grey or CMYK profile would not fit
    image.save(out, "JPEG", quality=90, **extra)
    cleaned, _ = scrub(out.getvalue())
    return cleaned
