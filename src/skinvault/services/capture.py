"""Asking a patient for a photo, with guidance that keeps photos of a site comparable.

>>> ask_for_photo(vault, actor=dr_lee, patient_id=p, site="left-hand")  # doctest: +SKIP
>>> [r.guidance for r in open_requests(vault, actor=ann, patient_id=p)]  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from skinvault.actors import Actor
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.db.models import Photo, PhotoRequest, User
from skinvault.errors import NotFound
from skinvault.policy.decide import PatientAction
from skinvault.services.notifications import Kind, notify, notify_patient
from skinvault.services.records import authorize

#: The same rules every time, so two dates of one site can be compared.
GENERAL_GUIDANCE = (
    "Use daylight or the same lamp each time, no flash. Hold the phone about 30 cm away,"
    " straight on. Show only this body area on a plain background; no face, jewellery or"
    " papers. If you have the reference card, put it next to the area."
)
SITE_GUIDANCE = {
    "face": "Tie hair back; take the cheek or forehead patch only, eyes out of the picture.",
    "left-hand": "Lay the hand flat on a plain surface, back of the hand up, fingers apart.",
    "right-hand": "Lay the hand flat on a plain surface, back of the hand up, fingers apart.",
    "back": "Ask someone to take it, standing straight, from shoulders to waist.",
    "scalp": "Part the hair along the patch; take it from above.",
}


@dataclass(frozen=True)
class PhotoRequestView:
    id: str
    site: str
    guidance: str
    requested_by: str
    created_at: datetime
    fulfilled_at: datetime | None


def guidance_for(site: str) -> str:
    extra = SITE_GUIDANCE.get(site)
    return f"{extra} {GENERAL_GUIDANCE}" if extra else GENERAL_GUIDANCE


def ask_for_photo(
    vault: Vault, *, actor: Actor, patient_id: str, site: str, note: str = ""
) -> PhotoRequestView:
    """A care-team member asks for a photo of ``site``; the patient sees it with guidance."""
    authorize(vault, actor, patient_id, PatientAction.REQUEST_PHOTO)
    guidance = guidance_for(site) + (f" {note.strip()}" if note.strip() else "")
    with vault.sessions.begin() as session:
        row = PhotoRequest(
            id=vault.tokens.new_id(),
            patient_id=patient_id,
            requested_by=actor.id,
            site=site[:64],
            guidance=guidance[:2000],
            created_at=vault.clock.now(),
        )
        session.add(row)
        record(
            session,
            clock=vault.clock,
            actor=actor.audit_name,
            action=Action.PHOTO_REQUEST,
            object=f"patient:{patient_id}",
            outcome=Outcome.DONE,
            reason=site,
        )
        notify_patient(
            session,
            vault,
            patient_id=patient_id,
            kind=Kind.PHOTO_ASKED,
            ref=f"photo-request:{row.id}",
        )
        return PhotoRequestView(row.id, row.site, row.guidance, actor.name, row.created_at, None)


def open_requests(vault: Vault, *, actor: Actor, patient_id: str) -> list[PhotoRequestView]:
    """Requests not yet answered with a photo, oldest first."""
    authorize(vault, actor, patient_id, PatientAction.LIST_PHOTOS)
    with vault.reading() as session:
        rows = session.execute(
            select(PhotoRequest, User.display_name)
            .join(User, User.id == PhotoRequest.requested_by, isouter=True)
            .where(PhotoRequest.patient_id == patient_id, PhotoRequest.fulfilled_at.is_(None))
            .order_by(PhotoRequest.created_at)
        ).all()
        return [
            PhotoRequestView(r.id, r.site, r.guidance, name or "your care team", r.created_at, None)
            for r, name in rows
        ]


def fulfil(vault: Vault, *, request_id: str, photo_id: str) -> None:
    """Mark a request answered by a stored photo of the same patient."""
    with vault.sessions.begin() as session:
        row = session.get(PhotoRequest, request_id)
        photo = session.get(Photo, photo_id)
        if row is None or photo is None or photo.patient_id != row.patient_id:
            raise NotFound("there is no such photo request for this patient")
        row.fulfilled_photo_id = photo_id
        row.fulfilled_at = vault.clock.now()
        if row.requested_by:
            notify(
                session,
                vault,
                user_id=row.requested_by,
                kind=Kind.PHOTO_ANSWERED,
                ref=f"photo-request:{row.id}",
                link=f"/portal/photos/{photo_id}",
            )
