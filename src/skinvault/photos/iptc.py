"""Findings from IPTC-IIM records (inside a Photoshop APP13 block or a TIFF tag).

>>> [f.label for f in findings(b"\\x1c\\x02\\x50\\x00\\x03Ann")]
['By-line']
"""

from __future__ import annotations

import struct

from skinvault.photos.findings import Category, Finding

# dataset number in record 2 -> (category, label, template)
_DATASETS: dict[int, tuple[Category, str, str]] = {
    80: (Category.PERSON, "By-line", "Photographer “{v}”"),
    85: (Category.PERSON, "By-line title", "Photographer's title “{v}”"),
    110: (Category.PERSON, "Credit", "Credit “{v}”"),
    115: (Category.PERSON, "Source", "Source “{v}”"),
    116: (Category.PERSON, "Copyright", "Copyright “{v}”"),
    118: (Category.PERSON, "Contact", "Contact “{v}”"),
    122: (Category.PERSON, "Writer", "Caption writer “{v}”"),
    55: (Category.TIME, "Date created", "Date created {v} — shows when"),
    60: (Category.TIME, "Time created", "Time created {v}"),
    90: (Category.LOCATION, "City", "City “{v}”"),
    92: (Category.LOCATION, "Sub-location", "Sub-location “{v}”"),
    95: (Category.LOCATION, "Province/State", "Province or state “{v}”"),
    101: (Category.LOCATION, "Country", "Country “{v}”"),
    5: (Category.COMMENT, "Object name", "Title “{v}”"),
    25: (Category.COMMENT, "Keywords", "Keyword “{v}”"),
    105: (Category.COMMENT, "Headline", "Headline “{v}”"),
    120: (Category.COMMENT, "Caption", "Caption “{v}”"),
    65: (Category.SOFTWARE, "Originating program", "Program “{v}”"),
}
_SHOWN = 60


def findings(records: bytes, where: str = "IPTC") -> list[Finding]:
    """Findings for a run of IIM datasets; stops quietly at the first malformed one."""
    out: list[Finding] = []
    pos, total = 0, 0
    while pos + 5 <= len(records) and records[pos] == 0x1C:
        record, dataset, length = records[pos + 1], records[pos + 2], records[pos + 3 : pos + 5]
        (size,) = struct.unpack(">H", length)
        pos += 5
        if size & 0x8000:  # extended length: not used for text datasets; skip safely
            break
        value = records[pos : pos + size]
        pos += size
        total += 1
        if record == 2 and dataset in _DATASETS:
            text = " ".join(value.decode("utf-8", "replace").split())
            if text:
                category, label, template = _DATASETS[dataset]
                shown = text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"
                out.append(Finding(category, label, where, template.format(v=shown)))
    if total:
        out.append(
            Finding(
                Category.OTHER,
                "IPTC block",
                where,
                f"An IPTC block with {total} fields (captions, names, places, keywords)",
            )
        )
    return out


def photoshop_findings(block: bytes, where: str = "Photoshop/IPTC") -> list[Finding]:
    """Findings for a Photoshop image-resource block (``8BIM`` resources)."""
    out: list[Finding] = []
    pos, resources = 0, 0
    while pos + 12 <= len(block) and block[pos : pos + 4] == b"8BIM":
        (rid,) = struct.unpack(">H", block[pos + 4 : pos + 6])
        name_len = block[pos + 6]
        pos += 6 + ((name_len + 2) & ~1)  # Pascal name padded to even length
        if pos + 4 > len(block):
            break
        (size,) = struct.unpack(">I", block[pos : pos + 4])
        pos += 4
        data = block[pos : pos + size]
        pos += size + (size & 1)
        resources += 1
        if rid == 0x0404:
            out.extend(findings(data, where))
        elif rid in (0x0409, 0x040C):
            out.append(
                Finding(
                    Category.THUMBNAIL,
                    "Photoshop thumbnail",
                    where,
                    f"A Photoshop thumbnail ({len(data):,} bytes)"
                    " — may show the uncropped original",
                )
            )
    if resources and not out:
        out.append(
            Finding(
                Category.OTHER,
                "Photoshop block",
                where,
                f"A Photoshop block with {resources} resources (editing settings, captions)",
            )
        )
    return out
