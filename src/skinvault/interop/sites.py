"""Body sites as SNOMED CT codes with laterality, for DICOM and FHIR.

    >>> coded("left-hand")
    SiteCode(code='85562004', meaning='Hand', laterality='L')
    >>> coded("other") is None
    True

A stopgap until the closed body-site vocabulary (``skinvault.tracking.sites``)
lands: today a photo's site is one of the portal's free-text choices
(``face``, ``scalp``, ``left-hand``, …). Each maps to a region code from DICOM
CID 4031 "Common Anatomic Regions" (genitalia from CID 4029 "Dermatology
Anatomic Sites"), checked against pydicom's copy of the DICOM code tables in
tests/interop/test_sites.py. A site that is not in the table gets no code: it
is sent as text only, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

SNOMED_SYSTEM = "http://snomed.info/sct"
SNOMED_DICOM = "SCT"

#: Laterality qualifiers (DICOM CID 244), keyed by the DICOM Image Laterality letter.
LATERALITY = {
    "L": ("7771000", "Left"),
    "R": ("24028007", "Right"),
    "B": ("51440002", "Bilateral"),
}

#: site string -> (SNOMED CT code, meaning as DICOM names it)
_REGIONS = {
    "face": ("89545001", "Face"),
    "scalp": ("41695006", "Scalp"),
    "neck": ("45048000", "Neck"),
    "chest": ("816094009", "Chest"),
    "abdomen": ("818981001", "Abdomen"),
    "back": ("77568009", "Back"),
    "arm": ("53120007", "Upper limb"),
    "hand": ("85562004", "Hand"),
    "leg": ("61685007", "Lower limb"),
    "foot": ("56459004", "Foot"),
    "genital-area": ("60944009", "Skin of external genitalia"),
}
_SIDES = {"left": "L", "right": "R"}


@dataclass(frozen=True)
class SiteCode:
    code: str
    meaning: str
    laterality: str | None  # "L", "R", "B" or None for a midline/unpaired site


def coded(site: str | None) -> SiteCode | None:
    """The SNOMED CT region and laterality of a site string, or None when it has no code."""
    if not site:
        return None
    key = site.strip().lower().replace("_", "-").replace(" ", "-")
    side = None
    for word, letter in _SIDES.items():
        if key.startswith(word + "-"):
            side, key = letter, key[len(word) + 1 :]
            break
    region = _REGIONS.get(key)
    if region is None:
        return None
    return SiteCode(region[0], region[1], side)


def table() -> list[tuple[str, SiteCode]]:
    """Every site string with a code (for docs/interop.md and its test)."""
    rows = []
    for key in _REGIONS:
        paired = key in ("arm", "hand", "leg", "foot")
        for side in ("left", "right") if paired else (None,):
            name = f"{side}-{key}" if side else key
            code = coded(name)
            assert code is not None
            rows.append((name, code))
    return rows
