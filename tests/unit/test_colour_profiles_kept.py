"""Colour profiles survive every copy made of a scrubbed photo: a second scrub, the
display version browsers get, the face-free version, and the thumbnail.

The photo is tests/data/corpus/005-heic-mobile-iphone-13-pro-max.heic (an iPhone 13 Pro
Max HEIC with Apple's Display P3 profile, ICC v4; source and licence in the corpus
MANIFEST). Shown without its profile, a P3 photo's colours are read as sRGB: skin looks
duller than it is (mean error 4 levels over this photo, more in saturated red areas).
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
from PIL import Image, ImageCms, ImageOps

from skinvault.photos import icc
from skinvault.photos.derivative import display_version, make_version
from skinvault.photos.scrub import scrub
from skinvault.photos.thumbnail import decode as decode_small
from skinvault.photos.thumbnail import thumbnail, thumbnail_of
from tests.conftest import icc_profile

P3_HEIC = Path(__file__).parents[1] / "data" / "corpus" / "005-heic-mobile-iphone-13-pro-max.heic"


@cache
def _scrubbed_heic() -> bytes:
    return scrub(P3_HEIC.read_bytes())[0]


@cache
def _apple_p3() -> bytes:
    pillow_heif.register_heif_opener()
    with Image.open(P3_HEIC) as image:
        return bytes(image.info["icc_profile"])


def _p3_photo(fmt: str) -> bytes:
    """A small photo in ``fmt`` carrying Apple's original Display P3 profile (its text
    names Apple and the profile), before scrubbing."""
    pixels = Image.effect_noise((64, 48), 60).convert("RGB")
    out = io.BytesIO()
    extra = {"lossless": True} if fmt == "WEBP" else {}
    pixels.save(out, fmt, icc_profile=_apple_p3(), **extra)
    return out.getvalue()


def _neutral_only(profile: bytes) -> None:
    """The profile is the scrubbed one: Apple's text gone, only the neutral text left."""
    assert b"Apple" not in profile and b"A\x00p\x00p\x00l\x00e" not in profile
    described = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(profile)))
    assert described.strip() == icc.NEUTRAL_TEXT


def test_the_corpus_iphone_heic_carries_a_v4_display_p3_profile() -> None:
    """The premise: the original's profile is a v4 Display P3 with Apple's text, and the
    scrubbed photo keeps its colour tags under neutral text."""
    original = _apple_p3()
    assert original[8] == 4
    assert "Display P3" in ImageCms.getProfileDescription(
        ImageCms.ImageCmsProfile(io.BytesIO(original))
    )
    kept = icc_profile(_scrubbed_heic())
    assert kept is not None and icc.colour_tags(kept) == icc.colour_tags(original)
    _neutral_only(kept)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "TIFF", "HEIF"])
def test_a_scrubbed_photo_with_a_v4_profile_passes_the_scrubber_again(fmt: str) -> None:
    """The scrubber's own output (a v4 profile with neutral UTF-16 text) is not refused
    as if that neutral text were removed metadata left behind: a patient can upload
    again a photo downloaded from the vault, and a version keeps its profile."""
    once, _ = scrub(_p3_photo(fmt))
    twice, _ = scrub(once)
    profile = icc_profile(twice)
    assert profile is not None and profile == icc_profile(once)
    _neutral_only(profile)


def test_the_neutral_text_is_the_only_text_the_residue_check_lets_through() -> None:
    """Apple's own text in a profile is still reported as removed text (the residue check
    keeps looking for it); the neutral tags the rebuild writes are not."""
    original = _apple_p3()
    rebuilt = icc.rebuild(original)
    assert any(b"Copyright Apple" in t for t in icc.texts(original))
    assert not any(b"I\x00C\x00C" in t or b"ICC profile" in t for t in icc.texts(rebuilt))


def test_the_display_version_of_an_iphone_heic_keeps_its_scrubbed_profile_exactly() -> None:
    """The display JPEG carries the scrubbed photo's profile exactly (so a colour-managing
    browser shows P3 colours as P3), and its pixels are the decoded pixels, not converted."""
    source = _scrubbed_heic()
    made = display_version(source)
    profile = icc_profile(made.data)
    assert profile is not None and profile == icc_profile(source)
    _neutral_only(profile)
    with Image.open(io.BytesIO(source)) as original, Image.open(io.BytesIO(made.data)) as shown:
        upright = ImageOps.exif_transpose(original).convert("RGB")
        difference = np.abs(
            np.asarray(upright, dtype=np.int16) - np.asarray(shown.convert("RGB"), dtype=np.int16)
        )
    assert float(difference.mean()) < 1.5  # JPEG q95, not a P3 → sRGB conversion (≈ 4)


def test_a_face_free_version_of_a_scrubbed_p3_jpeg_keeps_its_profile() -> None:
    source, _ = scrub(_p3_photo("JPEG"))
    made = make_version(source, cover=[(8, 8, 16, 16)], crop=None, colour_profile=True)
    assert icc_profile(made.data) == icc_profile(source)


def test_the_deidentified_version_still_converts_to_srgb_and_drops_the_profile() -> None:
    source, _ = scrub(_p3_photo("JPEG"))
    made = make_version(source, cover=[], crop=None, colour_profile=False)
    assert icc_profile(made.data) is None


@pytest.mark.parametrize("fmt", ["JPEG", "HEIF", "TIFF"])
def test_a_thumbnail_carries_the_scrubbed_profile_of_its_photo(fmt: str) -> None:
    """A thumbnail of a P3 photo without its profile shows the wrong colours: it embeds
    the scrubbed photo's profile (never anything the scrubbed photo does not carry)."""
    source, _ = scrub(_p3_photo(fmt))
    preview = thumbnail(source, 32)
    profile = icc_profile(preview.data)
    assert profile is not None and profile == icc_profile(source)
    _neutral_only(profile)
    assert preview.data == thumbnail_of(decode_small(source, 32), 32).data


def test_a_thumbnail_never_carries_the_original_text_of_a_profile() -> None:
    """Handed pixels that still carry an unscrubbed profile (not what an upload does, but
    the thumbnail must not depend on it): the thumbnail's profile is the rebuilt one."""
    raw = _p3_photo("JPEG")
    preview = thumbnail_of(decode_small(raw, 32), 32)
    profile = icc_profile(preview.data)
    assert profile is not None and profile == icc.rebuild(_apple_p3())
    _neutral_only(profile)


def test_a_thumbnail_of_a_photo_without_a_profile_has_none() -> None:
    out = io.BytesIO()
    Image.effect_noise((64, 48), 60).convert("RGB").save(out, "JPEG")
    assert icc_profile(thumbnail(out.getvalue(), 32).data) is None
