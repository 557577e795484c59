"""The last line of defence: a cleaner that leaves metadata behind writes nothing.

``scrub()`` re-reads its own output (``verify``) and ``skinvault scrub`` re-reads the file
as written (``batch._verify_written``) before publishing it. These tests put a broken
cleaner in place of the real JPEG one (it hands the input back untouched, metadata and
all) and check that neither path returns or writes those bytes. An outside mutation test
could skip either re-read without any test noticing (issue 17).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from skinvault import batch
from skinvault.errors import ScrubFailed
from skinvault.photos import jpeg
from skinvault.photos.findings import Cleaned
from skinvault.photos.scrub import inspect, scrub
from tests.conftest import CORPUS

PHOTO = CORPUS / "007-jpg-canon-40d.jpg"  # EXIF with the camera, serial and dates


def _leaves_everything(data: bytes) -> Cleaned:
    """A cleaner that forgot to clean."""
    return Cleaned.of(data, lossless=True)


@pytest.fixture
def leaky_cleaner(monkeypatch: pytest.MonkeyPatch) -> bytes:
    data = PHOTO.read_bytes()
    assert inspect(data).findings, "the photo must reveal something for the test to mean it"
    monkeypatch.setattr(jpeg, "clean", _leaves_everything)
    return data


def test_scrub_raises_instead_of_returning_what_a_broken_cleaner_left(leaky_cleaner: bytes) -> None:
    with pytest.raises(ScrubFailed, match="no output was written"):
        scrub(leaky_cleaner)


def test_the_real_cleaner_passes_the_same_check() -> None:
    """The control: the re-read does not refuse every photo."""
    cleaned, report = scrub(PHOTO.read_bytes())
    assert report.findings and inspect(cleaned).findings == ()


def test_the_batch_writes_nothing_when_the_written_copy_still_reveals(
    leaky_cleaner: bytes, tmp_path: Path
) -> None:
    source = tmp_path / "in.jpg"
    source.write_bytes(leaky_cleaner)
    out = tmp_path / "out"
    result = batch.scrub_file(source, batch.Destination.folder(out))
    assert result.error and "no output was written" in result.error, result
    assert result.output is None
    assert sorted(p.name for p in out.iterdir()) == []  # no copy, no temporary file
    assert source.read_bytes() == leaky_cleaner  # the input is untouched


def test_in_place_keeps_the_original_when_the_written_copy_still_reveals(
    leaky_cleaner: bytes, tmp_path: Path
) -> None:
    source = tmp_path / "in.jpg"
    source.write_bytes(leaky_cleaner)
    result = batch.scrub_file(source, batch.Destination.in_place())
    assert result.error and "no output was written" in result.error, result
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jpg"]
