"""Upload receipts and "check a copy": what a patient keeps to know a photo reached the chart.

    >>> got = receipt_for(vault, photo_id=p, actor=patient)            # doctest: +SKIP
    >>> got.stored_sha256, got.original_sha256                          # doctest: +SKIP
    ('9f2c…', '41ab…')
    >>> text = signed_text(vault, got)                                  # doctest: +SKIP
    >>> verify_text(text, public_key_hex(vault.keys.signing_key()))    # doctest: +SKIP
    True
    >>> digest = hashlib.sha256(local_file).hexdigest()
    >>> find_copy(vault, actor=me, patient_id=pid, sha256=digest)  # doctest: +SKIP

A receipt describes the photo *as it was saved*: the site, the time, the SHA-256
of the stored (scrubbed) photo and of the file the person chose, and who could see
it at that moment (the care team then, the consents in force then). It is rebuilt
from the record each time (care relationships and consent answers keep their
dates), so the same photo always gives the same receipt, byte for byte, and the
same signature.

The download is plain UTF-8 text that anyone can read and keep. Its last line is an
Ed25519 signature, made with the service's audit checkpoint signing key, over every
byte before that line; the key's public half is printed in the receipt and is the
``public_key`` of every signed audit head the clinic keeps (``keys/audit-head.json``).
The text's first line names what it is, so the signature cannot be mistaken for an
audit checkpoint's (those sign a different first line). How to check one by hand:
``docs/patient-copies.md``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select

from skinvault.actors import Actor
from skinvault.audit.chain import public_key_hex
from skinvault.bootstrap import Vault
from skinvault.db.models import BodySite, CareRelationship, Consent, Patient, Photo, User
from skinvault.errors import NotFound
from skinvault.policy.decide import PatientAction, consent_in_force
from skinvault.policy.purposes import PURPOSE_TEXTS, Purpose, Scope
from skinvault.services import records
from skinvault.services.consents import facts_of

#: The first line of every receipt: what the signature below vouches for.
RECEIPT_DOMAIN = "skinvault upload receipt, version 1"
SIGNATURE_PREFIX = "Signature (Ed25519, over every line above): "
_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")

_SCOPE_WORDS = {
    Scope.DEIDENTIFIED: "de-identified only",
    Scope.CROPPED: "cropped only",
    Scope.INTERNAL: "inside this clinic only",
    Scope.NO_FACE: "no face",
}


@dataclass(frozen=True)
class CareMember:
    name: str
    since: datetime


@dataclass(frozen=True)
class ConsentLine:
    purpose: Purpose
    title: str
    granted: bool
    scopes: tuple[str, ...]
    recorded_at: datetime | None  # None: never answered


@dataclass(frozen=True)
class Receipt:
    """One photo as saved, and who could see it then."""

    organisation: str
    photo_id: str
    patient_name: str
    site_label: str | None
    uploaded_at: datetime
    saved_by: str
    taken_on: str | None
    format: str
    width: int
    height: int
    size: int
    stored_sha256: str
    original_sha256: str | None
    care_team: tuple[CareMember, ...]
    consents: tuple[ConsentLine, ...]
    deleted_at: datetime | None

    @property
    def file_name(self) -> str:
        return f"receipt-{self.uploaded_at:%Y%m%d-%H%M%S}-{self.photo_id[:8]}.txt"


def _at(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _day(moment: datetime) -> str:
    return f"{moment:%d %B %Y}".lstrip("0")


def receipt_for(vault: Vault, *, photo_id: str, actor: Actor) -> Receipt:
    """The receipt of one photo, for the patient (or their care team, who may list it)."""
    with vault.reading() as session:
        photo = session.get(Photo, photo_id)
        if photo is None:
            raise NotFound(f"there is no photo {photo_id}")
        patient_id = photo.patient_id
    records.authorize(vault, actor, patient_id, PatientAction.LIST_PHOTOS)
    with vault.reading() as session:
        photo = session.get(Photo, photo_id)
        patient = session.get(Patient, patient_id)
        assert photo is not None and patient is not None
        at = photo.uploaded_at
        site = session.get(BodySite, photo.site_id) if photo.site_id else None
        uploader = session.get(User, photo.uploaded_by) if photo.uploaded_by else None
        if uploader is not None and uploader.id == patient.user_id:
            saved_by = "you"
        elif uploader is not None:
            saved_by = uploader.display_name or "a member of your care team"
        else:
            saved_by = "the service"
        team = []
        for rel in session.scalars(
            select(CareRelationship)
            .where(CareRelationship.patient_id == patient_id)
            .order_by(CareRelationship.since)
        ):
            if rel.since <= at and (rel.until is None or rel.until > at):
                member = session.get(User, rel.clinician_id)
                team.append(CareMember(member.display_name if member else "a clinician", rel.since))
        facts = [
            facts_of(c)
            for c in session.scalars(select(Consent).where(Consent.patient_id == patient_id))
        ]
        lines = []
        for purpose in Purpose:
            if purpose is Purpose.CARE:
                continue
            latest = consent_in_force(facts, purpose, at)
            in_force = bool(
                latest
                and latest.granted
                and (latest.revoked_at is None or latest.revoked_at > at)
                and (latest.expires_at is None or latest.expires_at > at)
            )
            lines.append(
                ConsentLine(
                    purpose,
                    PURPOSE_TEXTS[purpose].title,
                    in_force,
                    tuple(_SCOPE_WORDS[s] for s in sorted(latest.scopes) if s in _SCOPE_WORDS)
                    if latest and in_force
                    else (),
                    latest.recorded_at if latest else None,
                )
            )
        source = {"photo": " (read from the photo before its details were removed)",
                  "person": " (as you gave it)"}.get(photo.taken_on_source or "", "")  # fmt: skip
        return Receipt(
            organisation=vault.settings.organisation,
            photo_id=photo.id,
            patient_name=patient.display_name,
            site_label=site.label if site else None,
            uploaded_at=at,
            saved_by=saved_by,
            taken_on=f"{photo.taken_on.isoformat()}{source}" if photo.taken_on else None,
            format=photo.format,
            width=photo.width,
            height=photo.height,
            size=photo.size,
            stored_sha256=photo.content_sha256,
            original_sha256=photo.original_sha256,
            care_team=tuple(team),
            consents=tuple(lines),
            deleted_at=photo.deleted_at,
        )


def who_could_see(receipt: Receipt) -> list[str]:
    """The "who could see it" sentences, as the page and the text show them."""
    said = []
    if receipt.care_team:
        names = ", ".join(f"{m.name} (since {_day(m.since)})" for m in receipt.care_team)
        said.append(f"Your care team: {names}.")
    else:
        said.append("Nobody in a care team yet: no clinician was linked to your record.")
    for line in receipt.consents:
        if line.granted:
            limits = f", {', '.join(line.scopes)}" if line.scopes else ""
            said.append(
                f"{line.title}: yes{limits} (your answer of {_day(line.recorded_at)})"
                if line.recorded_at
                else f"{line.title}: yes{limits}"
            )
    refused = [line.title[:1].lower() + line.title[1:] for line in receipt.consents
               if not line.granted]  # fmt: skip
    if refused:
        said.append(f"Not used for: {', '.join(refused)} (no consent in force).")
    said.append(
        "A clinician outside your care team only in an emergency, giving a written reason;"
        " a privacy officer reviews it and it appears in your access history."
    )
    return said


def receipt_lines(receipt: Receipt) -> list[str]:
    """The receipt as lines of text (no signature): what the page shows and the file signs."""
    out = [
        RECEIPT_DOMAIN,
        f"Issued by: {receipt.organisation}",
        f"Patient: {receipt.patient_name}",
        f"Photo: {receipt.photo_id}",
        f"Body site: {receipt.site_label or 'not given'}",
        f"Saved: {_at(receipt.uploaded_at)}, by {receipt.saved_by}",
        f"Taken on: {receipt.taken_on or 'not known'}",
        f"Stored photo: {receipt.format.upper()}, {receipt.width} x {receipt.height} pixels,"
        f" {receipt.size:,} bytes, with its hidden details removed",
        f"SHA-256 of the stored photo: {receipt.stored_sha256}",
        "SHA-256 of the file you chose: "
        + (receipt.original_sha256 or "not recorded (saved before receipts existed)"),
        "Who could see it when it was saved:",
        *(f"  - {s}" for s in who_could_see(receipt)),
    ]
    if receipt.deleted_at is not None:
        out.append(f"Deleted: {_at(receipt.deleted_at)} (its key was destroyed)")
    return out


def signed_text(vault: Vault, receipt: Receipt) -> str:
    """The downloadable receipt: the lines, the signer's public key, then the signature."""
    private = vault.keys.signing_key()
    body = (
        "\n".join(
            [
                *receipt_lines(receipt),
                f"Signed with the service's audit key: {public_key_hex(private)}",
            ]
        )
        + "\n"
    )
    signature = Ed25519PrivateKey.from_private_bytes(private).sign(body.encode("utf-8"))
    return f"{body}{SIGNATURE_PREFIX}{signature.hex()}\n"


def verify_text(text: str, public_key: str) -> bool:
    """True when ``text`` is a receipt signed by ``public_key`` (hex) and unchanged since."""
    body, found, tail = text.rpartition(SIGNATURE_PREFIX)
    if not found or not body.startswith(RECEIPT_DOMAIN + "\n"):
        return False
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key))
        key.verify(bytes.fromhex(tail.strip()), body.encode("utf-8"))
    except (ValueError, InvalidSignature):
        return False
    return True


# -- check a copy ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CopyMatch:
    """A photo in the record that a local file is a copy of."""

    photo_id: str
    site_label: str | None
    uploaded_at: datetime
    #: "stored": the file is the stored (scrubbed) photo; "original": the file they chose.
    which: str
    deleted_at: datetime | None


def normalise_sha256(text: str) -> str | None:
    """A SHA-256 as 64 lower-case hex characters, or None when ``text`` is not one."""
    cleaned = text.strip().lower()
    return cleaned if _HEX64.match(cleaned) else None


def find_copy(vault: Vault, *, actor: Actor, patient_id: str, sha256: str) -> list[CopyMatch]:
    """The patient's photos whose stored or original SHA-256 is ``sha256`` (oldest first).

    Nothing is stored or audited: the lookup reads hashes only, and the file it came
    from is never sent (the browser hashes it) or is hashed and dropped at once.
    """
    records.authorize(vault, actor, patient_id, PatientAction.LIST_PHOTOS)
    wanted = normalise_sha256(sha256)
    if wanted is None:
        return []
    with vault.reading() as session:
        sites = {
            s.id: s.label
            for s in session.scalars(select(BodySite).where(BodySite.patient_id == patient_id))
        }
        rows = session.scalars(
            select(Photo)
            .where(
                Photo.patient_id == patient_id,
                (Photo.content_sha256 == wanted) | (Photo.original_sha256 == wanted),
            )
            .order_by(Photo.uploaded_at)
        )
        return [
            CopyMatch(
                p.id,
                sites.get(p.site_id or ""),
                p.uploaded_at,
                "stored" if p.content_sha256 == wanted else "original",
                p.deleted_at,
            )
            for p in rows
        ]


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


__all__ = [
    "CopyMatch",
    "Receipt",
    "find_copy",
    "receipt_for",
    "receipt_lines",
    "signed_text",
    "verify_text",
    "who_could_see",
]
