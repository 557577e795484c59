"""The closed body-site vocabulary: code, label, laterality, SNOMED CT body structure.

Every site a photo can be filed under is one `Site`. Its SNOMED CT concept is the
"Skin of ..." body-structure concept that DICOM lists for dermatology (DICOM PS3.16
CID 4029 "Dermatology Anatomic Site", version 20240913). Following the DICOM
convention (CID 4029 note 8), laterality is not pre-coordinated into the concept but
carried separately as a SNOMED CT qualifier value (DICOM CID 244): Left 7771000,
Right 24028007, Right and left 51440002. A FHIR exporter puts the concept in
``bodySite`` and the laterality in the body-structure laterality extension
(R5 ``BodyStructure.includedStructure.laterality``); a DICOM exporter puts the
concept in the Anatomic Region Sequence and the laterality in its modifier.

Sources checked (see docs/tracking.md): the CID 4029 expansion published in
bvdh/dicom-terminology-in-fhir (ValueSet-dicom-cid-4029-DermatologyAnatomicSite.fsh)
for every body-structure id and display below, and FHIR examples using
7771000/24028007/51440002 for laterality. Displays are the DICOM code meanings.

`from_legacy()` maps the free-text sites of schema <= 0008 ("face", "left-arm", ...)
onto this vocabulary; it is what migration 0009 uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SNOMED_SYSTEM = "http://snomed.info/sct"

Laterality = Literal["left", "right"]
View = Literal["front", "back"]

#: SNOMED CT qualifier values for laterality (DICOM CID 244).
LATERALITY_SNOMED: dict[str, tuple[str, str]] = {
    "left": ("7771000", "Left"),
    "right": ("24028007", "Right"),
    "bilateral": ("51440002", "Right and left"),
}


@dataclass(frozen=True, slots=True)
class Site:
    """One place on the body a series of photos is kept for."""

    code: str  #: stable, URL-safe, stored in the database
    label: str  #: what a person reads ("Left forearm (back)")
    region: str  #: the body-map region id, shared by left/right variants
    laterality: Laterality | None
    snomed_code: str  #: SNOMED CT body structure concept id
    snomed_display: str
    view: View  #: which side of the body map draws it

    @property
    def laterality_snomed(self) -> tuple[str, str] | None:
        """(code, display) of the SNOMED CT laterality qualifier, or None if unpaired."""
        return LATERALITY_SNOMED[self.laterality] if self.laterality else None


# (region, label, snomed id, snomed display, view, paired?)
_REGIONS: tuple[tuple[str, str, str, str, View, bool], ...] = (
    # head and neck, front
    ("scalp", "Scalp", "43067004", "Skin of scalp", "back", False),
    ("forehead", "Forehead", "68698007", "Skin of forehead", "front", False),
    ("face", "Face", "73897004", "Skin of face", "front", False),
    ("eyelid", "Eyelids and eye area", "362916000", "Skin of eye region", "front", True),
    ("cheek", "Cheek", "36141000", "Skin of cheek", "front", True),
    ("nose", "Nose", "113179006", "Skin of nose", "front", False),
    ("lips", "Lips and mouth area", "110488009", "Skin of perioral region of face", "front", False),
    ("chin", "Chin", "23747009", "Skin of chin", "front", False),
    ("ear", "Ear", "1902009", "Skin of ear", "front", True),
    ("neck", "Neck (front)", "11584001", "Skin of anterior portion of neck", "front", False),
    ("neck-back", "Neck (back)", "4658004", "Skin of nuchal region", "back", False),
    # trunk, front
    ("chest", "Chest", "244106003", "Skin of anterior surface of thorax", "front", False),
    ("breast", "Breast", "82038008", "Skin of breast", "front", True),
    ("axilla", "Armpit", "76261009", "Skin of axilla", "front", True),
    ("abdomen", "Abdomen", "75093004", "Skin of abdomen", "front", False),
    ("umbilicus", "Navel", "315003", "Skin of umbilicus", "front", False),
    ("groin", "Groin", "39687006", "Skin of inguinal region", "front", True),
    ("genital-area", "Genital area", "60944009", "Skin of external genitalia", "front", False),
    # trunk, back
    ("upper-back", "Upper back", "244111001", "Skin of posterior surface of thorax", "back", False),
    ("lower-back", "Lower back", "113182001", "Skin of lower back", "back", False),
    ("buttock", "Buttock", "22180002", "Skin of buttock", "back", True),
    ("perineum", "Perineum", "48014002", "Skin of perineum", "back", False),
    # upper limb
    (
        "upper-arm",
        "Upper arm (front)",
        "45981001",
        "Skin of anterior surface of upper arm",
        "front",
        True,
    ),
    (
        "upper-arm-back",
        "Upper arm (back)",
        "72939005",
        "Skin of posterior surface of upper arm",
        "back",
        True,
    ),
    ("elbow-front", "Inner elbow", "17957002", "Skin of antecubital fossa", "front", True),
    ("elbow", "Elbow", "181536004", "Skin of posterior surface of elbow", "back", True),
    (
        "forearm",
        "Forearm (front)",
        "70559009",
        "Skin of anterior surface of forearm",
        "front",
        True,
    ),
    (
        "forearm-back",
        "Forearm (back)",
        "41550009",
        "Skin of posterior surface of forearm",
        "back",
        True,
    ),
    ("palm", "Palm", "70887009", "Skin of palm of hand", "front", True),
    (
        "hand-back",
        "Back of hand",
        "281642007",
        "Skin of part of dorsal surface of hand",
        "back",
        True,
    ),
    ("fingers", "Fingers", "244169007", "Skin of digit of hand", "front", True),
    # lower limb
    ("thigh", "Thigh (front)", "61248009", "Skin of anterior surface of thigh", "front", True),
    ("thigh-back", "Thigh (back)", "4578000", "Skin of posterior surface of thigh", "back", True),
    ("knee", "Knee", "181553006", "Skin of anterior surface of knee", "front", True),
    ("knee-back", "Back of knee", "84507004", "Skin of popliteal fossa", "back", True),
    (
        "shin",
        "Lower leg (front)",
        "25763004",
        "Skin of anterior surface of lower leg",
        "front",
        True,
    ),
    (
        "calf",
        "Lower leg (back)",
        "47224004",
        "Skin of posterior surface of lower leg",
        "back",
        True,
    ),
    ("foot", "Foot (top)", "60496002", "Skin of foot", "front", True),
    ("heel", "Heel", "84607009", "Skin of heel", "back", True),
    ("toes", "Toes", "52034004", "Skin of toe", "front", True),
    # whole limbs, for photos that show most of one (and for legacy sites)
    ("arm", "Arm", "371311000", "Skin of upper extremity", "front", True),
    ("hand", "Hand", "33712006", "Skin of hand", "front", True),
    ("leg", "Leg", "371304004", "Skin of lower extremity", "front", True),
    ("back", "Back", "66643007", "Skin of back", "back", False),
    ("other", "Other (describe in the note)", "39937001", "Skin", "front", False),
)


def _build() -> dict[str, Site]:
    sites: dict[str, Site] = {}
    for region, label, sct, display, view, paired in _REGIONS:
        if paired:
            for side in ("left", "right"):
                lat: Laterality = "left" if side == "left" else "right"
                code = f"{region}-{side}"
                sites[code] = Site(
                    code,
                    f"{side.capitalize()} {label[0].lower()}{label[1:]}",
                    region,
                    lat,
                    sct,
                    display,
                    view,
                )
        else:
            sites[region] = Site(region, label, region, None, sct, display, view)
    return sites


SITES: dict[str, Site] = _build()

#: The free-text sites of schema <= 0008 and the site each one becomes.
LEGACY: dict[str, str] = {
    "face": "face",
    "scalp": "scalp",
    "neck": "neck",
    "chest": "chest",
    "abdomen": "abdomen",
    "back": "back",
    "left-arm": "arm-left",
    "right-arm": "arm-right",
    "left-hand": "hand-left",
    "right-hand": "hand-right",
    "left-leg": "leg-left",
    "right-leg": "leg-right",
    "left-foot": "foot-left",
    "right-foot": "foot-right",
    "genital-area": "genital-area",
    "other": "other",
}


def get(code: str) -> Site:
    """The site for a code; KeyError when it is not in the vocabulary."""
    return SITES[code]


def is_site(code: str | None) -> bool:
    return code is not None and code in SITES


def from_legacy(text: str | None) -> Site:
    """The site an old free-text value maps to: a vocabulary code, a legacy name, else other."""
    key = (text or "").strip().lower().replace(" ", "-").replace("_", "-")
    if key in SITES:
        return SITES[key]
    return SITES[LEGACY.get(key, "other")]


def by_view(view: View) -> list[Site]:
    return [s for s in SITES.values() if s.view == view]


def choices() -> list[tuple[str, str]]:
    """(code, label) pairs in vocabulary order, for a select list."""
    return [(s.code, s.label) for s in SITES.values()]
