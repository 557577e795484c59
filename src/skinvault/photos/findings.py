"""What a photo reveals beyond its pixels, as typed findings with a plain-language sentence.

>>> f = Finding(Category.LOCATION, "GPS position", "EXIF", "GPS position ≈ 52.52 N, 13.41 E")
>>> f.as_json()["category"]
'location'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Category(StrEnum):
    """Closed vocabulary of what a finding is about."""

    LOCATION = "location"
    TIME = "time"
    DEVICE = "device"
    PERSON = "person"
    SOFTWARE = "software"
    THUMBNAIL = "thumbnail"
    PEOPLE_TAGS = "people-tags"
    COMMENT = "comment"
    TRAILER = "trailer"
    OTHER = "other"


#: Headings for grouped, human-readable output, in display order.
CATEGORY_TITLES: dict[Category, str] = {
    Category.LOCATION: "Where the photo was taken",
    Category.TIME: "When it was taken",
    Category.DEVICE: "The camera or phone",
    Category.PERSON: "Names of people",
    Category.PEOPLE_TAGS: "People tagged in the photo",
    Category.THUMBNAIL: "Hidden previews (may show the uncropped original)",
    Category.SOFTWARE: "Software and editing history",
    Category.COMMENT: "Comments, captions and descriptions",
    Category.TRAILER: "Data hidden after the image",
    Category.OTHER: "Other metadata",
}


@dataclass(frozen=True)
class Finding:
    """One thing a photo reveals. ``description`` is a sentence a patient can read."""

    category: Category
    label: str
    where: str
    description: str

    def as_json(self) -> dict[str, str]:
        return {
            "category": self.category.value,
            "label": self.label,
            "where": self.where,
            "description": self.description,
        }


@dataclass(frozen=True)
class Cleaned:
    """The result of scrubbing one photo's bytes.

    The output is ``parts`` in order (a writer can hand them to ``os.writev``
    without joining megabytes); ``data`` joins them. ``removed`` holds the
    input's findings when the container computed them while cleaning (saving a
    second parse); None means "ask ``findings()``".
    """

    parts: tuple[bytes | memoryview, ...]
    lossless: bool
    notes: tuple[str, ...] = field(default=())
    removed: tuple[Finding, ...] | None = None
    #: (offset, length) ranges of the output holding coded image data copied
    #: byte for byte from input ranges that parsing already proved free of
    #: structure; verification may skip re-scanning their contents.
    opaque: tuple[tuple[int, int], ...] = ()
    #: Byte strings of the metadata that cleaning removed (names, serials,
    #: dates, maker-note and XMP text): verification fails if one is found in
    #: the output outside ``opaque`` ranges.
    secrets: frozenset[bytes] = frozenset()
    #: The structure proves a decoder reads every pixel (JPEG only, see
    #: photos/jpeg_structure.py): an upload need not decode them to know.
    decodable: bool = False

    @classmethod
    def of(
        cls,
        data: bytes,
        lossless: bool,
        notes: tuple[str, ...] = (),
        secrets: frozenset[bytes] = frozenset(),
    ) -> Cleaned:
        return cls((data,), lossless, notes, secrets=secrets)

    @property
    def data(self) -> bytes:
        return (
            self.parts[0]
            if len(self.parts) == 1 and isinstance(self.parts[0], bytes)
            else b"".join(self.parts)
        )


def dedupe(findings: list[Finding]) -> list[Finding]:
    """Drop exact repeats (the same tag often sits in EXIF and XMP), keeping order."""
    seen: set[tuple[Category, str]] = set()
    out: list[Finding] = []
    for f in findings:
        key = (f.category, f.description)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
