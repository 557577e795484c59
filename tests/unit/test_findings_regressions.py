"""Files that once came out of `scrub` "clean and lossless" while still carrying metadata.

Each file in tests/data/findings (see its README) stands for a class of defect.
The scrubber must either write a copy in which exiftool finds no metadata and
no byte string of the planted metadata remains, or refuse the file and say why.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pytest
from PIL import Image

from skinvault.errors import DamagedFile, ScrubFailed
from skinvault.photos import jpeg, tiff
from skinvault.photos.scrub import clean, scrub, verify
from skinvault.photos.sniff import ImageFormat, sniff
from tests.conftest import FINDINGS, decoded, exiftool_json

MARKERS = (
    b"LeakMakerCo",
    b"LeakModel-X9",
    b"Artist Jane Roe",
    b"Copyright LeakHolder",
    b"UserComment-LEAK",
    b"GC-X1E",
    b"Jane Q Patientname",
    b"2002:07:14",
)
# Where a kept data range covers metadata, the only safe answer is a refusal.
REFUSED = {
    "tiff-strip-at-ifd.tiff",
    "tiff-stripbytecounts-whole-file.tiff",
    "fuzz-m03204-tiff-strip-at-8.tiff",
    "heic-primary-extent-to-eof.heic",
    "heic-primary-extent-over-item2.heic",
}
# The upload500-* files are the upload path's regressions, tested there.
FILES = sorted(
    p for p in FINDINGS.iterdir() if p.suffix != ".md" and not p.name.startswith("upload500-")
)
# exiftool groups a scrubbed file may show: file facts, colour and decoding structure.
ALLOWED_GROUPS = {
    "ExifTool", "System", "File", "Composite", "JFIF", "Adobe", "APP14", "ICC_Profile",
    "ICC-header", "ICC-view", "ICC-meas", "PNG", "PNG-pHYs", "RIFF", "IFD0", "QuickTime",
    "Meta", "ItemList",
}  # fmt: skip


def test_the_regression_files_are_in_the_repository() -> None:
    assert len(FILES) >= 18, FINDINGS


@pytest.mark.parametrize("path", [f for f in FILES if f.name not in REFUSED], ids=lambda p: p.name)
def test_kept_blocks_carry_no_planted_metadata(path: Path, tmp_path: Path) -> None:
    original = path.read_bytes()
    cleaned, report = scrub(original)
    assert report.lossless is True
    for marker in MARKERS:
        assert marker not in cleaned, f"{marker!r} survived in {path.name}"
    out = tmp_path / f"out{path.suffix}"
    out.write_bytes(cleaned)
    (tags,) = exiftool_json(out)
    for key, value in tags.items():
        group = key.split(":", 1)[0]
        assert group in ALLOWED_GROUPS or key == "SourceFile", f"{key} = {value!r} remains"
        if group == "IFD0" and path.suffix != ".tiff":  # a TIFF's IFD0 is its structure
            assert key == "IFD0:Orientation", f"{key} remains"
        assert not any(m.decode() in str(value) for m in MARKERS), f"{key} = {value!r}"
    with Image.open(io.BytesIO(cleaned)) as im:
        im.load()  # the copy decodes
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about the planted bad counts
            before = decoded(original)
    except (OSError, ValueError):
        return  # some hand-made inputs are too malformed for Pillow; their copies are not
    assert decoded(cleaned) == before


@pytest.mark.parametrize("path", [FINDINGS / n for n in sorted(REFUSED)], ids=lambda p: p.name)
def test_image_data_over_metadata_is_refused_with_a_reason(path: Path) -> None:
    with pytest.raises(DamagedFile, match="overlaps"):
        scrub(path.read_bytes())


def test_an_invalid_icc_payload_is_dropped_and_the_report_says_so() -> None:
    for name, slot in (
        ("jpg-app2-fake-icc.jpg", b"ICC_PROFILE"),
        ("png-fake-iccp.png", b"iCCP"),  # its marker hides inside the zlib data
        ("webp-fake-iccp.webp", b"ICCP"),
    ):
        cleaned, report = scrub((FINDINGS / name).read_bytes())
        assert any("not a valid ICC profile" in n for n in report.notes), name
        assert slot not in cleaned, name


def test_a_tag_count_the_specification_does_not_allow_is_dropped_and_said() -> None:
    for name, tag in (("tiff-orientation-count-1001.tiff", 274), ("tiff-xres-count-60.tiff", 282)):
        cleaned, report = scrub((FINDINGS / name).read_bytes())
        assert any(f"dropped TIFF tag {tag}" in n for n in report.notes), name
        reader, ifd0 = tiff._first_ifd(cleaned)
        assert tag not in ifd0.entries and reader.order in "<>"


def test_webp_chunks_come_out_in_specification_order() -> None:
    cleaned, _ = scrub((FINDINGS / "fuzz-m01744-webp-iccp-injected.webp").read_bytes())
    assert cleaned[12:16] == b"VP8X"
    with Image.open(io.BytesIO(cleaned)) as im:
        im.load()


def _copy_kept_segments(data: bytes) -> bytes:
    """Yesterday's JPEG cleaner: allowlisted segments copied whole, extra bytes and all."""
    parsed = jpeg.parse(data)
    kept = [data[s.start : s.end] for s in parsed.segments if jpeg._is_kept(data, s)]
    return b"\xff\xd8" + b"".join(kept) + b"\xff\xd9"


def test_verify_fails_a_cleaner_that_leaves_metadata_in_kept_blocks() -> None:
    data = (FINDINGS / "jpg-dqt-extra-bytes.jpg").read_bytes()
    cleaned, _ = clean(data)
    leaky = _copy_kept_segments(data)
    assert b"LeakMakerCo" in leaky
    # The strict re-read alone refuses it (a DQT longer than its tables) ...
    with pytest.raises(ScrubFailed, match="strict"):
        verify(ImageFormat.JPEG, leaky)
    # ... and so does the removed-string check alone, given what was removed.
    assert any(b"LeakMakerCo" in s for s in cleaned.secrets)
    with pytest.raises(ScrubFailed, match="LeakMakerCo"):
        verify(ImageFormat.JPEG, b"\xff\xd8" + b"LeakMakerCo-Serial-998877", (), cleaned.secrets)


def test_verify_fails_a_tiff_whose_strip_copies_the_directory() -> None:
    data = (FINDINGS / "tiff-strip-at-ifd.tiff").read_bytes()
    reader, ifd0 = tiff._first_ifd(data)
    secrets = {b"LeakMakerCo", b"Artist Jane Roe"}
    # Yesterday's output: a valid one-image TIFF whose only strip is the old IFD and values.
    assert sniff(data) is ImageFormat.TIFF and ifd0.entries
    with pytest.raises(ScrubFailed, match="removed metadata"):
        verify(ImageFormat.TIFF, data, (), secrets)
    assert reader.order in "<>"
