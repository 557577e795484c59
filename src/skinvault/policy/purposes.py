"""Purposes of use (a closed vocabulary), consent scopes, and the texts patients see.

    >>> Purpose("ai-training").hl7_code
    'HRESCH'
    >>> PURPOSE_TEXTS[Purpose.TEACHING].version
    '2026-11-1'

Each purpose maps to the closest HL7 v3 PurposeOfUse code (code system
``http://terminology.hl7.org/CodeSystem/v3-ActReason``) for FHIR and audit
export; where HL7 has no exact code, :attr:`Purpose.local_code` names ours.
See docs/purposes.md for the reasoning.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

HL7_PURPOSE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
LOCAL_PURPOSE_SYSTEM = "urn:skinvault:purpose"


class Purpose(StrEnum):
    CARE = "care"
    TEACHING = "teaching"
    RESEARCH = "research"
    PUBLICATION = "publication"
    AI_TRAINING = "ai-training"

    @property
    def hl7_code(self) -> str:
        return _HL7[self]

    @property
    def local_code(self) -> str | None:
        """Our own code where the HL7 one is only the closest, not an exact match."""
        return None if self in (Purpose.CARE, Purpose.RESEARCH) else f"skinvault-{self.value}"

    @property
    def is_secondary(self) -> bool:
        """Anything but care: needs the patient's consent, never affects their care."""
        return self is not Purpose.CARE


#: Break-glass access is emergency treatment.
BREAK_GLASS_HL7_CODE = "ETREAT"

_HL7 = {
    Purpose.CARE: "TREAT",
    # Training practitioners under supervision is part of health care operations.
    Purpose.TEACHING: "HOPERAT",
    Purpose.RESEARCH: "HRESCH",
    # HL7 has no "publication" purpose; marketing is its closest public-facing use.
    Purpose.PUBLICATION: "HMARKT",
    # No v3 ActReason code for training models; it is a kind of research use.
    Purpose.AI_TRAINING: "HRESCH",
}


class Scope(StrEnum):
    """Limits a patient can put on a consent. They are conditions, not purposes."""

    DEIDENTIFIED = "deidentified"  # only with nothing that links the photo to the patient
    CROPPED = "cropped"  # only a crop to the skin area in question
    INTERNAL = "internal"  # only inside this organisation, never published or sent out
    NO_FACE = "no-face"  # only versions in which no face can be seen


@dataclass(frozen=True)
class PurposeText:
    version: str
    title: str
    text: str

    @property
    def in_sentence(self) -> str:
        """The title as it reads inside a sentence: "Allow training AI models", never
        "training ai models" (only the first letter is lowered, and not in an acronym)."""
        first, _, rest = self.title.partition(" ")
        if first.isupper() and len(first) > 1:
            return self.title
        return first[:1].lower() + first[1:] + (f" {rest}" if rest else "")


#: The plain-language texts shown when asking for consent. A change of wording
#: gets a new version, and each consent records the version the patient saw.
PURPOSE_TEXTS: dict[Purpose, PurposeText] = {
    Purpose.CARE: PurposeText(
        "2026-11-1",
        "Your care",
        "The clinicians treating you see your photos to diagnose and follow your skin condition."
        " This is part of your care and needs no extra consent.",
    ),
    Purpose.TEACHING: PurposeText(
        "2026-11-1",
        "Teaching",
        "Doctors and students in training may see your photos to learn, inside this clinic."
        " You can say no and your care stays exactly the same.",
    ),
    Purpose.RESEARCH: PurposeText(
        "2026-11-1",
        "Research",
        "Approved researchers may study your photos, without your name or other details that"
        " identify you. You can say no and your care stays exactly the same.",
    ),
    Purpose.PUBLICATION: PurposeText(
        "2026-11-1",
        "Publication",
        "Your photos may appear in articles, talks or clinic materials that the public can see."
        " You can say no and your care stays exactly the same.",
    ),
    Purpose.AI_TRAINING: PurposeText(
        "2026-11-1",
        "Training AI models",
        "Your photos may be used, without your name, to train computer models that recognise"
        " skin conditions. You can say no and your care stays exactly the same.",
    ),
}
