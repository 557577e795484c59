"""Record-level access: listing a patient's photos, adding one, managing their consents.

    >>> authorize(vault, actor, patient_id, PatientAction.UPLOAD)      # doctest: +SKIP
    >>> [p.id for p in list_photos(vault, actor=me, patient_id=me_pid)] # doctest: +SKIP

Each check goes through :func:`skinvault.policy.decide.decide_patient`; a
refusal is written to the audit log before :class:`AccessDenied` is raised.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from skinvault.actors import Actor
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.db.models import BodySite, CareRelationship, Consent, Patient, Photo, User
from skinvault.errors import AccessDenied, NotFound
from skinvault.policy.decide import (
    Access,
    CareFacts,
    ConsentFacts,
    Decision,
    PatientAction,
    PhotoFacts,
    decide,
    decide_patient,
)
from skinvault.policy.purposes import Purpose
from skinvault.services import versions
from skinvault.services.consents import facts_of
from skinvault.services.photo_store import StoredPhoto, stored_photo_of


def authorize(vault: Vault, actor: Actor, patient_id: str, action: PatientAction) -> Decision:
    """The decision for ``action`` on the record; raises (after auditing) when refused."""
    with vault.sessions.begin() as session:
        patient = session.get(Patient, patient_id)
        if patient is None:
            raise NotFound(f"there is no patient {patient_id}")
        relationships = [
            CareFacts(r.clinician_id, r.since, r.until)
            for r in session.scalars(
                select(CareRelationship).where(CareRelationship.patient_id == patient_id)
            )
        ]
        decision = decide_patient(
            actor,
            action,
            patient_user_id=patient.user_id,
            relationships=relationships,
            now=vault.clock.now(),
        )
        if not decision.allowed:
            record(
                session,
                clock=vault.clock,
                actor=actor.audit_name,
                action=Action.RECORD_ACCESS,
                object=f"patient:{patient_id}",
                outcome=Outcome.DENIED,
                reason=f"{action.value}: {decision.reason}",
            )
    if not decision.allowed:
        raise AccessDenied(decision.reason)
    return decision


def list_photos(vault: Vault, *, actor: Actor, patient_id: str) -> list[StoredPhoto]:
    """The patient's photos (newest first), for the patient and their care team."""
    authorize(vault, actor, patient_id, PatientAction.LIST_PHOTOS)
    with vault.reading() as session:
        sites = {
            s.id: s
            for s in session.scalars(select(BodySite).where(BodySite.patient_id == patient_id))
        }
        rows = session.scalars(
            select(Photo)
            .where(Photo.patient_id == patient_id, Photo.deleted_at.is_(None))
            .order_by(Photo.uploaded_at.desc())
        )
        return [stored_photo_of(vault, p, sites.get(p.site_id or "")) for p in rows]


def patient_of_user(vault: Vault, user_id: str) -> str | None:
    with vault.reading() as session:
        patient = session.scalars(select(Patient).where(Patient.user_id == user_id)).first()
        return patient.id if patient else None


def patients_of(vault: Vault, member_id: str) -> list[tuple[str, str]]:
    """(patient id, display name) of everyone whose care team ``member_id`` is on now."""
    now = vault.clock.now()
    with vault.reading() as session:
        rows = session.execute(
            select(Patient.id, Patient.display_name, CareRelationship.until, CareRelationship.since)
            .join(CareRelationship, CareRelationship.patient_id == Patient.id)
            .where(CareRelationship.clinician_id == member_id)
        ).all()
    return sorted(
        {
            (pid, name)
            for pid, name, until, since in rows
            if since <= now and (until is None or until > now)
        },
        key=lambda x: x[1],
    )


def user_by_email(vault: Vault, email: str) -> User | None:
    with vault.reading() as session:
        return session.scalars(select(User).where(User.email == email.strip().lower())).first()


@dataclass(frozen=True)
class LibraryPhoto:
    """A library entry: only what the listing shows (no patient, note, dates or findings:
    a de-identified reader must not get them, and no reader of a library needs them)."""

    id: str
    site: str | None
    #: The version its reads serve ("deidentified", "face_free", ...), None for the photo.
    version: str | None


def library(vault: Vault, *, actor: Actor, purpose: Purpose) -> list[LibraryPhoto]:
    """Photos ``actor`` may see for a secondary ``purpose``: the teaching or research library.

    Each photo is decided by :func:`skinvault.policy.decide` exactly as a read
    would be; a consent limited to a version (de-identified, no face, cropped) lists the
    photo, and its reads serve that version. A photo whose version cannot be made (cropped,
    with no area chosen) is left out, as a read would refuse it.
    """
    now = vault.clock.now()
    with vault.reading() as session:
        consents: dict[str, list[ConsentFacts]] = {}
        for c in session.scalars(select(Consent).where(Consent.purpose == purpose.value)):
            consents.setdefault(c.patient_id, []).append(facts_of(c))
        users = {p.id: p.user_id for p in session.scalars(select(Patient))}
        sites = {s.id: s for s in session.scalars(select(BodySite))}
        rows = session.scalars(
            select(Photo)
            .where(Photo.patient_id.in_(list(consents)), Photo.deleted_at.is_(None))
            .order_by(Photo.uploaded_at.desc())
        )
        found = []
        for photo in rows:
            facts = PhotoFacts(photo.id, photo.patient_id, users.get(photo.patient_id))
            decision = decide(
                actor,
                Access.VIEW,
                facts,
                purpose,
                consents=consents[photo.patient_id],
                relationships=[],
                now=now,
            )
            kind = versions.version_kind(
                decision.obligations, photo_format=photo.format, for_browser=False
            )
            blocked = kind is not None and versions.refusal_for(session, photo.id, kind)
            if decision.allowed and not blocked:
                site = sites.get(photo.site_id or "")
                found.append(LibraryPhoto(photo.id, site.code if site else None, kind))
        return found
