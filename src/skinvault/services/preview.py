"""The privacy preview shown before an upload is stored: metadata findings and pixel clues.

    >>> preview = privacy_preview(raw_bytes, max_bytes=settings.max_upload_bytes)  # doctest: +SKIP
    >>> [f.category.value for f in preview.findings]                # doctest: +SKIP
    ['location', 'device']
    >>> [(c.kind, c.box) for c in preview.clues]                   # doctest: +SKIP
    [('face', (3012, 40, 410, 520))]
    >>> [item.text for item in preview.checklist if item.found]    # doctest: +SKIP
    ['A face is visible. Crop or cover it, unless the question is about the face.']

Pure: nothing is stored, written or logged, no vault is touched; the bytes
live only as long as the caller keeps them. The upload flow calls this, shows
the result, and only then (if the person goes on) calls the storing service.
Boxes are in pixels of the upright photo, whose size is ``size``, so a page
can scale them onto any thumbnail.
"""

from __future__ import annotations

from dataclasses import dataclass

from skinvault.errors import TooLarge
from skinvault.photos.clues import Clue, find_clues
from skinvault.photos.findings import Category, Finding
from skinvault.photos.redact import decode
from skinvault.photos.scrub import inspect
from skinvault.photos.sniff import ImageFormat


@dataclass(frozen=True)
class CheckItem:
    """One line of the checklist; ``found`` when skinvault saw this in the photo."""

    text: str
    found: bool = False


@dataclass(frozen=True)
class Preview:
    """What a photo would reveal, before anything is stored."""

    format: ImageFormat
    size: tuple[int, int]  # upright width, height: the coordinate space of the boxes
    findings: tuple[Finding, ...]
    clues: tuple[Clue, ...]
    checklist: tuple[CheckItem, ...]


#: What a person checks before sending, whatever skinvault found.
CHECKLIST = (
    "Only the body area the question is about is in the picture.",
    "A plain, neutral background: no room, no window, no mirror.",
    "No documents, screens, badges, tattoos or jewellery that could identify you.",
    "No face, unless the question is about the face.",
    "Even, soft light and no flash: on overexposed skin a pale patch cannot be measured.",
)
_FACE = "A face is visible. Crop or cover it, unless the question is about the face."
_TEXT = "Readable text is visible (a letter, label, badge or screen). Crop or cover it."
_METADATA = "The file carries hidden details ({}); they are removed when it is stored."


def checklist_for(
    findings: tuple[Finding, ...], clues: tuple[Clue, ...]
) -> tuple[CheckItem, ...]:
    """The checklist for what was found: found items first, then the usual reminders."""
    items = []
    kinds = {c.kind for c in clues}
    if "face" in kinds:
        items.append(CheckItem(_FACE, found=True))
    if "text" in kinds:
        items.append(CheckItem(_TEXT, found=True))
    if findings:
        what = sorted({f.category for f in findings}, key=list(Category).index)
        items.append(CheckItem(_METADATA.format(", ".join(c.value for c in what)), found=True))
    return (*items, *(CheckItem(text) for text in CHECKLIST))


def privacy_preview(data: bytes, *, max_bytes: int) -> Preview:
    """Findings, clues and a checklist for ``data``, storing nothing.

    Raises :class:`TooLarge` over ``max_bytes`` (before any parsing), and
    :class:`UnsupportedFormat` / :class:`DamagedFile` like the scrubber.
    """
    if len(data) > max_bytes:
        raise TooLarge(f"is {len(data):,} bytes, more than the {max_bytes:,}-byte upload limit")
    report = inspect(data)
    decoded = decode(data)
    clues = tuple(find_clues(decoded.image))
    return Preview(
        report.format,
        decoded.size,
        report.findings,
        clues,
        checklist_for(report.findings, clues),
    )
