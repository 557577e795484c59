"""verify()'s own re-read: metadata a cleaner left behind *and did not list as removed*
(so the removed-strings check cannot see it) still stops the output, in every format.

The backstop tests (test_scrub_backstop.py) hand back a photo whose leftovers the strict
re-read or the removed-strings check already refuse; a hand mutant that skipped the
findings re-read (``if residue:`` → ``if False:``) passed them all (issue 17).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from skinvault.errors import ScrubFailed
from skinvault.photos.scrub import scrub, verify
from skinvault.photos.sniff import ImageFormat
from tests import factories

LEFT_BEHIND: dict[str, tuple[ImageFormat, Callable[[], bytes]]] = {
    "jpeg": (ImageFormat.JPEG, lambda: factories.jpeg(comment=b"Patient Ann Smith")),
    "png": (ImageFormat.PNG, lambda: factories.png(orientation=6)),
    "webp": (ImageFormat.WEBP, lambda: factories.webp(orientation=6)),
}


@pytest.mark.parametrize("name", sorted(LEFT_BEHIND))
def test_metadata_left_and_not_listed_as_removed_stops_the_output(name: str) -> None:
    fmt, make = LEFT_BEHIND[name]
    with pytest.raises(ScrubFailed, match=r"^cleaning left metadata behind \("):
        verify(fmt, make(), opaque=(), secrets=())


@pytest.mark.parametrize("name", sorted(LEFT_BEHIND))
def test_the_same_photo_once_scrubbed_passes_the_re_read(name: str) -> None:
    fmt, make = LEFT_BEHIND[name]
    cleaned, report = scrub(make())
    assert report.format is fmt
    verify(fmt, cleaned)  # nothing left: no exception
