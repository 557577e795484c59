"""Body sites for DICOM and FHIR: the closed vocabulary's SNOMED CT concept and laterality.

    >>> coded("hand-left")
    SiteCode(code='33712006', meaning='Skin of hand', laterality='L')
    >>> site_of("33712006:272741003=24028007")
    'hand-right'

An adapter over :mod:`skinvault.tracking.sites` (DICOM CID 4029 "Dermatology
Anatomic Site" concepts, laterality as CID 244 qualifiers); old free-text sites
("left-hand") are read through its ``from_legacy`` mapping.
"""

from __future__ import annotations

from dataclasses import dataclass

from skinvault.tracking import sites as vocabulary

SNOMED_SYSTEM = vocabulary.SNOMED_SYSTEM
SNOMED_DICOM = "SCT"
LATERALITY_ATTRIBUTE = "272741003"  # SNOMED CT "Laterality" attribute (post-coordination)

#: Laterality qualifiers (DICOM CID 244), keyed by the DICOM Image Laterality letter.
LATERALITY = {
    "L": vocabulary.LATERALITY_SNOMED["left"],
    "R": vocabulary.LATERALITY_SNOMED["right"],
    "B": vocabulary.LATERALITY_SNOMED["bilateral"],
}
_LETTER = {"left": "L", "right": "R"}


@dataclass(frozen=True)
class SiteCode:
    code: str
    meaning: str
    laterality: str | None  # "L", "R", "B" or None for a midline/unpaired site


def coded(site: str | None) -> SiteCode | None:
    """The SNOMED CT concept and laterality of a stored site code (or an old free-text site)."""
    if not site:
        return None
    found = vocabulary.get(site) if vocabulary.is_site(site) else vocabulary.from_legacy(site)
    laterality = _LETTER.get(found.laterality) if found.laterality else None
    return SiteCode(found.snomed_code, found.snomed_display, laterality)


def site_of(code: str | None, laterality: str | None = None) -> str | None:
    """The vocabulary code for a SNOMED CT concept, with laterality ("L"/"R") if paired.

    Accepts the post-coordinated form the FHIR Media carries, ``33712006:272741003=7771000``.
    """
    if not code:
        return None
    concept, _, refinement = code.partition(":")
    if refinement.startswith(LATERALITY_ATTRIBUTE + "="):
        side_code = refinement.split("=", 1)[1]
        laterality = next((k for k, (c, _) in LATERALITY.items() if c == side_code), laterality)
    side = {"L": "left", "R": "right"}.get(laterality or "")
    matches = [vocabulary.get(c) for c, _ in vocabulary.choices()]
    matches = [s for s in matches if s.snomed_code == concept]
    for s in matches:
        if s.laterality == side:
            return s.code
    return matches[0].code if matches else None


def table() -> list[tuple[str, SiteCode]]:
    """Every vocabulary site with its codes (for docs/interop.md)."""
    rows = []
    for code, _label in vocabulary.choices():
        found = coded(code)
        assert found is not None
        rows.append((code, found))
    return rows
