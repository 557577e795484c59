"""Findings from an XMP packet (RDF/XML), read with bounded regular expressions.

No XML parser is used on purpose: the packet is about to be thrown away, and a
pattern scan cannot be made to expand entities or recurse.

    >>> [f.label for f in findings(b'<x:xmpmeta><rdf:Description dc:creator="Ann"/></x:xmpmeta>')]
    ['Creator']
"""

from __future__ import annotations

import re

from skinvault.photos.findings import Category, Finding

_MAX_SCAN = 4 * 1024 * 1024  # larger packets are scanned only in their first 4 MiB
_SHOWN = 60

# XMP property (prefix:name) -> (category, label, sentence template)
_PROPERTIES: dict[str, tuple[Category, str, str]] = {
    "dc:creator": (Category.PERSON, "Creator", "Creator “{v}”"),
    "dc:rights": (Category.PERSON, "Rights", "Rights holder “{v}”"),
    "photoshop:AuthorsPosition": (Category.PERSON, "Author position", "Author's position “{v}”"),
    "photoshop:CaptionWriter": (Category.PERSON, "Caption writer", "Caption writer “{v}”"),
    "photoshop:Credit": (Category.PERSON, "Credit", "Credit “{v}”"),
    "xmpRights:Owner": (Category.PERSON, "Owner", "Owner “{v}”"),
    "aux:OwnerName": (Category.PERSON, "Owner", "Camera owner “{v}”"),
    "Iptc4xmpExt:PersonInImage": (Category.PEOPLE_TAGS, "Person in image", "Person shown: “{v}”"),
    "MP:PersonDisplayName": (Category.PEOPLE_TAGS, "Person tag", "Person tagged: “{v}”"),
    "xmp:CreatorTool": (Category.SOFTWARE, "Creator tool", "Made with “{v}”"),
    "photoshop:History": (Category.SOFTWARE, "Edit history", "Editing history “{v}”"),
    "xmp:CreateDate": (Category.TIME, "Created", "Created {v} — shows when"),
    "xmp:ModifyDate": (Category.TIME, "Modified", "Modified {v} — shows when"),
    "xmp:MetadataDate": (Category.TIME, "Metadata date", "Metadata written {v}"),
    "exif:DateTimeOriginal": (Category.TIME, "Taken", "Taken {v} — shows when"),
    "photoshop:DateCreated": (Category.TIME, "Created", "Created {v} — shows when"),
    "exif:GPSLatitude": (Category.LOCATION, "GPS latitude", "GPS latitude {v} — shows where"),
    "exif:GPSLongitude": (Category.LOCATION, "GPS longitude", "GPS longitude {v} — shows where"),
    "photoshop:City": (Category.LOCATION, "City", "City “{v}”"),
    "photoshop:State": (Category.LOCATION, "State", "State or region “{v}”"),
    "photoshop:Country": (Category.LOCATION, "Country", "Country “{v}”"),
    "Iptc4xmpCore:Location": (Category.LOCATION, "Location", "Location “{v}”"),
    "tiff:Make": (Category.DEVICE, "Camera make", "Camera make {v}"),
    "tiff:Model": (Category.DEVICE, "Camera model", "Camera model {v}"),
    "aux:SerialNumber": (Category.DEVICE, "Serial number", "Camera serial number {v}"),
    "exifEX:BodySerialNumber": (Category.DEVICE, "Serial number", "Camera serial number {v}"),
    "dc:description": (Category.COMMENT, "Description", "Description “{v}”"),
    "dc:title": (Category.COMMENT, "Title", "Title “{v}”"),
    "dc:subject": (Category.COMMENT, "Keywords", "Keywords “{v}”"),
    "exif:UserComment": (Category.COMMENT, "User comment", "User comment “{v}”"),
    "photoshop:Headline": (Category.COMMENT, "Headline", "Headline “{v}”"),
}

# Fallback for properties not in the table: categorise by the local name.
_BY_NAME: list[tuple[re.Pattern[str], Category]] = [
    (
        re.compile(r"gps|latitude|longitude|altitude|location|city|country|state|address", re.I),
        Category.LOCATION,
    ),
    (
        re.compile(r"author|creator|owner|artist|person|name|rights|contact|credit|byline", re.I),
        Category.PERSON,
    ),
    (re.compile(r"date|time", re.I), Category.TIME),
    (re.compile(r"serial|make|model|lens|camera|device", re.I), Category.DEVICE),
    (re.compile(r"software|tool|producer|history|agent", re.I), Category.SOFTWARE),
    (
        re.compile(r"comment|description|caption|title|subject|keyword|label|headline", re.I),
        Category.COMMENT,
    ),
]
_STRUCTURAL_PREFIXES = ("rdf:", "x:", "xmlns:", "xml:", "stEvt:", "stRef:", "xmpNote:")


def _classify(name: str) -> tuple[Category, str, str] | None:
    if name in _PROPERTIES:
        return _PROPERTIES[name]
    if name.startswith(_STRUCTURAL_PREFIXES):
        return None
    local = name.split(":", 1)[1]
    for pattern, category in _BY_NAME:
        if pattern.search(local):
            return category, local, f"{local} “{{v}}”"
    return None


_TAG = re.compile(rb"<([A-Za-z][\w.-]{0,40}:[A-Za-z][\w.-]{0,60})[\s>/]")
_ATTR = re.compile(rb"\s([A-Za-z][\w.-]{0,40}:[A-Za-z][\w.-]{0,60})=\"([^\"]{0,2000})\"")
_LI = re.compile(rb"<rdf:li[^>]{0,500}>([^<]{0,2000})</rdf:li>")
_REGION_NAME = re.compile(rb"mwg-rs:Name(?:=\"([^\"]{0,500})\"|>([^<]{0,500})<)")
_MS_PERSON = re.compile(rb"MPReg:PersonDisplayName(?:=\"([^\"]{0,500})\"|>([^<]{0,500})<)")


def _clean(raw: bytes) -> str:
    text = " ".join(raw.decode("utf-8", "replace").split())
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _value_after(packet: bytes, prop: bytes, start: int) -> str:
    """Text of an element property: direct text, or the first rdf:li inside it."""
    close = packet.find(b"</" + prop + b">", start)
    if close < 0:
        return ""
    body = packet[start:close]
    li = _LI.search(body)
    raw = li.group(1) if li else body[body.find(b">") + 1 :]
    return "" if b"<" in raw else _clean(raw)


def findings(packet: bytes, where: str = "XMP") -> list[Finding]:
    """Plain-language findings for one XMP packet; always at least one (the packet itself)."""
    packet = packet[:_MAX_SCAN]
    out: list[Finding] = []
    for match in _ATTR.finditer(packet):
        name = match.group(1).decode("ascii", "replace")
        known = _classify(name)
        if known and match.group(2).strip():
            category, label, template = known
            out.append(Finding(category, label, where, template.format(v=_clean(match.group(2)))))
    for match in _TAG.finditer(packet):
        name = match.group(1).decode("ascii", "replace")
        known = _classify(name)
        if known:
            value = _value_after(packet, match.group(1), match.start())
            if value:
                category, label, template = known
                out.append(Finding(category, label, where, template.format(v=value)))
    names = [_clean(a or b) for a, b in _REGION_NAME.findall(packet)]
    names += [_clean(a or b) for a, b in _MS_PERSON.findall(packet)]
    if names or b"mwg-rs:Regions" in packet or b"MP:RegionInfo" in packet:
        shown = ", ".join(dict.fromkeys(n for n in names if n)) or "unnamed"
        out.append(
            Finding(
                Category.PEOPLE_TAGS,
                "Face regions",
                where,
                f"Face/people tags marking who is in the photo: {shown}",
            )
        )
    out.append(
        Finding(
            Category.OTHER,
            "XMP packet",
            where,
            f"An XMP metadata packet ({len(packet):,} bytes) — free-form data written by"
            " cameras and editing apps",
        )
    )
    return out
