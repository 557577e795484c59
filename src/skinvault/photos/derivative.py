"""Versions of a photo made from its decoded pixels: faces covered, cropped, de-identified,
or simply a JPEG every browser shows. Bytes in, bytes out; no database, no disk.

    >>> made = make_version(heic_bytes, cover=[(120, 40, 80, 96)], crop=None,
    ...                     colour_profile=True)                      # doctest: +SKIP
    >>> made.data[:2], made.size                                       # doctest: +SKIP
    (b'\\xff\\xd8', (3024, 4032))

Every version is a fresh JPEG (quality 95, 4:4:4) written from the upright,
decoded pixels, so every browser shows it whatever the original's container
(HEIC and TIFF are broken images in Chromium). Covering and cropping reuse
:func:`skinvault.photos.redact.redact_decoded` (solid fill, 10 % padding, whole
JPEG blocks, the scrubber as a final guard). With ``colour_profile=True`` the
photo's ICC profile is written as the scrubber rebuilt it (colour tags byte for
byte, neutral text; an iPhone's Display P3 stays P3) and the pixels are not
converted. With ``colour_profile=False`` the pixels are first converted to sRGB
and the ICC profile is dropped too: a de-identified version carries nothing but
pixels.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, replace

from PIL import ImageCms

from skinvault.errors import ScrubFailed
from skinvault.photos.clues import Clue, find_faces, find_text_lines
from skinvault.photos.limits import open_image
from skinvault.photos.redact import Box, Decoded, decode, redact_decoded
from skinvault.photos.sniff import ImageFormat


@dataclass(frozen=True)
class Made:
    """A version's JPEG bytes, its size, and the areas actually covered."""

    data: bytes
    size: tuple[int, int]
    covered: tuple[Box, ...]


def _srgb(decoded: Decoded) -> Decoded:
    """The pixels converted from their ICC profile to sRGB, with no profile kept."""
    image = decoded.image
    if decoded.icc_profile and image.mode in ("RGB", "RGBA"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(decoded.icc_profile))
            target = ImageCms.createProfile("sRGB")
            rgb = image.convert("RGB")
            converted = ImageCms.profileToProfile(rgb, source, target, outputMode="RGB")
            if converted is not None:
                image = converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # an unusable profile: the pixels stay as they are, the profile still goes
    return replace(decoded, image=image, icc_profile=None)


def make_version(
    data: bytes,
    *,
    cover: Sequence[Box],
    crop: Box | None,
    colour_profile: bool,
    decoded: Decoded | None = None,
) -> Made:
    """Cover ``cover`` (solid fill), crop to ``crop``, re-encode as a metadata-free JPEG.

    Raises the decoder's :class:`~skinvault.errors.PhotoError` for undecodable bytes and
    :class:`~skinvault.errors.RegionOutside` for a crop outside the photo.
    """
    source = decoded if decoded is not None else decode(data)
    # JPEG output for every source: browsers show it, and the block grid of the fill fits it.
    as_jpeg = replace(source, format=ImageFormat.JPEG)
    if not colour_profile:
        as_jpeg = _srgb(as_jpeg)
    try:
        result = redact_decoded(as_jpeg, cover, crop=crop)
    except ScrubFailed:
        if not as_jpeg.icc_profile:
            raise
        # A profile the scrubber's guard refuses to pass: convert the pixels to sRGB and
        # write no profile instead. (Every ICC v4 profile, an iPhone's Display P3 among
        # them, took this way until the guard stopped taking the neutral text the
        # scrubber writes for removed text: photos/icc.py, texts.)
        result = redact_decoded(_srgb(as_jpeg), cover, crop=crop)
    return Made(result.data, result.size, result.boxes_applied)


def display_version(data: bytes) -> Made:
    """A JPEG of the whole photo for browsers (HEIC, TIFF), ICC profile kept."""
    return make_version(data, cover=(), crop=None, colour_profile=True)


def detect(decoded: Decoded, *, text: bool) -> list[Clue]:
    """Faces (and with ``text``, readable text) in the upright decoded photo.

    Raises RuntimeError naming what failed: a detector that fails is a failure here,
    not a silent skip, because a de-identified version must not keep a name tag. Text
    lines come from the shipped PP-OCRv4 detector (:func:`find_text_lines`).
    """
    rgb = decoded.image if decoded.image.mode == "RGB" else decoded.image.convert("RGB")
    try:
        found = find_faces(rgb)
    except Exception as exc:
        raise RuntimeError(f"the face detector failed ({type(exc).__name__}: {exc})") from exc
    if text:
        try:
            found += find_text_lines(rgb)  # every line found, also the unsure ones
        except Exception as exc:
            raise RuntimeError(
                f"the text detector failed ({type(exc).__name__}: {exc})"
            ) from exc
    return found


def open_size(data: bytes) -> tuple[int, int]:
    """(width, height) of an encoded JPEG version (header only)."""
    with open_image(data) as image:
        return image.size
