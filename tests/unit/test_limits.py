"""Pixel limits: one gate (``limits.open_image``) for every photo opened, and no warning
filter touched on the way (``warnings.catch_warnings`` is process-wide, so a worker thread
using it undoes another thread's silencing; that once turned a sign-in into a 500)."""

from __future__ import annotations

import io
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from skinvault.errors import DamagedFile, TooLarge, UnsupportedFormat
from skinvault.photos import limits, redact, thumbnail
from skinvault.services import drafts
from skinvault.tracking import align, capture
from tests import factories

# Pillow warns from 89.5 MP by default; our limit (and Pillow's default error) is 179 MP.
BETWEEN = (10_000, 10_000)  # 100 MP: accepted, so it must open without a warning
OVER = (15_000, 12_000)  # 180 MP: over our limit, but under twice Pillow's own
FAR_OVER = (20_000, 20_000)  # 400 MP: over twice Pillow's own limit too

DECODERS: dict[str, Callable[[bytes], Any]] = {
    "scrubber decode": redact.decode,
    "thumbnail job": lambda data: thumbnail.decode(data, 320),
    "upload preview": drafts.decode_small,
    "alignment": align.decode,
}


def _no_filter_swaps(*args: object, **kwargs: object) -> None:
    raise AssertionError("warnings.catch_warnings used while opening a photo")


def test_a_photo_under_our_limit_opens_without_a_warning_or_a_filter_swap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = factories.jpeg_with_sof_size(*BETWEEN)
    with monkeypatch.context() as patched:  # undone before pytest's own catch_warnings runs
        patched.setattr(warnings, "catch_warnings", _no_filter_swaps)
        with limits.open_image(data) as image:  # warnings are errors in this suite
            assert image.size == BETWEEN
        assert capture.capture_date(data) is not None  # the photo's own date is read
        for name, decoder in DECODERS.items():
            # the header says 100 MP over a tiny photo's data: decoded as far as it goes, or
            # refused as damaged; never as too large, and never with a warning
            try:
                decoder(data)
            except (DamagedFile, UnsupportedFormat) as refused:
                assert not isinstance(refused, TooLarge), (name, refused)


@pytest.mark.parametrize("size", [OVER, FAR_OVER], ids=["over-ours", "over-pillows"])
def test_a_photo_over_our_limit_is_refused_as_too_large_before_decoding(
    size: tuple[int, int],
) -> None:
    data = factories.jpeg_with_sof_size(*size)
    with pytest.raises(TooLarge, match=r"MP|too large"):
        limits.open_image(data)
    for name in ("scrubber decode", "upload preview"):
        with pytest.raises(TooLarge):
            DECODERS[name](data)
    assert capture.capture_date(data) is None  # not read from a photo refused anyway


CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"


def test_a_heic_opens_in_a_fresh_process_without_any_other_code_registering_heif() -> None:
    """pillow-heif must register itself through the gate: a worker process whose first photo
    is a HEIC has run no other decoder (an in-process test cannot see this)."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from skinvault.tracking import align, capture\n"
        "data = Path(sys.argv[1]).read_bytes()\n"
        "print(capture.capture_date(data), align.decode(data).shape)\n"
    )
    photo = CORPUS / "005-heic-mobile-iphone-13-pro-max.heic"
    done = subprocess.run(  # the exit code is asserted below, with the error shown
        [sys.executable, "-c", script, str(photo)],
        check=False, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    day, shape = done.stdout.split(" ", 1)
    assert day != "None" and "3)" in shape, done.stdout


def test_only_the_formats_skinvault_takes_reach_pillow() -> None:
    gif = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 150, 120)).save(gif, "GIF")
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    for data in (gif.getvalue(), eps):
        with pytest.raises(OSError, match="cannot identify"):
            limits.open_image(data)
    with pytest.raises(UnsupportedFormat, match="not a JPEG, PNG, WebP, TIFF or HEIF/AVIF image"):
        align.decode(eps)  # and the message names no in-memory file object
