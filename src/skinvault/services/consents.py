"""Recording consent per purpose, revoking it, and the receipt the patient keeps.

    >>> record_consent(vault, patient_id=p, purpose=Purpose.TEACHING, granted=True,
    ...                scopes={Scope.DEIDENTIFIED}, actor=patient)        # doctest: +SKIP
    >>> consents_for(vault, p)[Purpose.TEACHING].granted                  # doctest: +SKIP
    True

Consent records are never edited: every answer (grant, refusal, withdrawal) is
a new row, and the latest one per purpose is in force from the moment it is
committed. Care needs no consent and cannot be refused here.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from skinvault.actors import Actor
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.db.models import Consent, Patient
from skinvault.errors import ConfigError, NotFound
from skinvault.policy.decide import ConsentFacts, consent_in_force
from skinvault.policy.purposes import (
    HL7_PURPOSE_SYSTEM,
    PURPOSE_TEXTS,
    Purpose,
    Scope,
)

#: The limits in the words of the consent form ("Only if …").
SCOPE_WORDS: dict[Scope, str] = {
    Scope.DEIDENTIFIED: "nothing identifies me",
    Scope.CROPPED: "cropped to the skin area",
    Scope.INTERNAL: "inside this clinic only",
    Scope.NO_FACE: "no face is visible",
}
#: One plain sentence per limit: what the reader actually gets (services/versions.py).
SCOPE_MEANINGS: dict[Scope, str] = {
    Scope.DEIDENTIFIED: "Readers get a copy with faces and readable text covered and no name,"
    " dates, notes or file details that could link it to you.",
    Scope.CROPPED: "Readers get only the area you or your clinician chose on the photo's"
    " page; until an area is chosen, the photo is not shown to them at all.",
    Scope.INTERNAL: "Only people working in this clinic may use it; it is never published"
    " or sent outside.",
    Scope.NO_FACE: "Readers get a copy in which every face is covered with a solid block.",
}


def limits_text(scopes: frozenset[Scope]) -> str:
    """The limits of an answer as the consent page states them.

    >>> limits_text(frozenset({Scope.NO_FACE, Scope.CROPPED}))
    'with limits: cropped to the skin area; no face is visible'
    """
    if not scopes:
        return "with no limits"
    return "with limits: " + "; ".join(SCOPE_WORDS[s] for s in sorted(scopes))


@dataclass(frozen=True)
class ConsentView:
    id: str
    patient_id: str
    purpose: Purpose
    granted: bool
    scopes: frozenset[Scope]
    text_version: str
    recorded_at: datetime
    recorded_by: str | None
    method: str
    expires_at: datetime | None
    revoked_at: datetime | None

    def facts(self) -> ConsentFacts:
        return ConsentFacts(
            self.purpose,
            self.granted,
            self.recorded_at,
            self.scopes,
            self.expires_at,
            self.revoked_at,
        )

    def in_force(self, now: datetime) -> bool:
        return (
            self.granted
            and (self.revoked_at is None or self.revoked_at > now)
            and (self.expires_at is None or self.expires_at > now)
        )


def _view(row: Consent) -> ConsentView:
    return ConsentView(
        id=row.id,
        patient_id=row.patient_id,
        purpose=Purpose(row.purpose),
        granted=row.granted,
        scopes=frozenset(Scope(s) for s in row.scopes.split(",") if s),
        text_version=row.text_version,
        recorded_at=row.recorded_at,
        recorded_by=row.recorded_by,
        method=row.method,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


def facts_of(row: Consent) -> ConsentFacts:
    """The policy's view of one stored answer (the one conversion every service uses)."""
    return _view(row).facts()


def record_consent(
    vault: Vault,
    *,
    patient_id: str,
    purpose: Purpose,
    granted: bool,
    actor: Actor,
    scopes: frozenset[Scope] | set[Scope] = frozenset(),
    expires_at: datetime | None = None,
    method: str = "portal",
) -> ConsentView:
    """Record an answer; ``granted=False`` after a grant withdraws it at once."""
    if purpose is Purpose.CARE:
        raise ConfigError(
            "care needs no consent: the care team sees photos through a care relationship"
        )
    now = vault.clock.now()
    if expires_at is not None and expires_at <= now:
        raise ConfigError("a consent cannot expire before it is given")
    with vault.sessions.begin() as session:
        if session.get(Patient, patient_id) is None:
            raise NotFound(f"there is no patient {patient_id}")
        previous = session.scalars(
            select(Consent)
            .where(Consent.patient_id == patient_id, Consent.purpose == purpose.value)
            .order_by(Consent.recorded_at.desc())
        ).first()
        withdrawn = not granted and previous is not None and previous.granted
        if withdrawn and previous is not None and previous.revoked_at is None:
            previous.revoked_at = now
        row = Consent(
            id=vault.tokens.new_id(),
            patient_id=patient_id,
            purpose=purpose.value,
            granted=granted,
            scopes=",".join(sorted(s.value for s in scopes)),
            text_version=PURPOSE_TEXTS[purpose].version,
            recorded_at=now,
            recorded_by=actor.id if actor.role else None,
            method=method,
            expires_at=expires_at if granted else None,
            revoked_at=None,
        )
        session.add(row)
        action = (
            Action.CONSENT_GRANT
            if granted
            else (Action.CONSENT_REVOKE if withdrawn else Action.CONSENT_REFUSE)
        )
        record(
            session,
            clock=vault.clock,
            actor=actor.audit_name,
            action=action,
            object=f"patient:{patient_id}",
            purpose=purpose.value,
            outcome=Outcome.DONE,
            reason=",".join(sorted(s.value for s in scopes)) or None,
        )
        return _view(row)


def consent_history(vault: Vault, patient_id: str) -> list[ConsentView]:
    """Every answer the patient gave, oldest first."""
    with vault.reading() as session:
        rows = session.scalars(
            select(Consent).where(Consent.patient_id == patient_id).order_by(Consent.recorded_at)
        )
        return [_view(r) for r in rows]


def consent_facts(vault: Vault, patient_id: str) -> list[ConsentFacts]:
    return [c.facts() for c in consent_history(vault, patient_id)]


def consents_for(vault: Vault, patient_id: str) -> dict[Purpose, ConsentView]:
    """The answer in force for each purpose that has one."""
    now = vault.clock.now()
    history = consent_history(vault, patient_id)
    current: dict[Purpose, ConsentView] = {}
    for purpose in Purpose:
        facts = consent_in_force([c.facts() for c in history], purpose, now)
        if facts is not None:
            current[purpose] = next(
                c for c in history if c.purpose is purpose and c.recorded_at == facts.recorded_at
            )
    return current


def receipt(view: ConsentView) -> dict[str, object]:
    """A machine-readable consent receipt the patient can keep."""
    text = PURPOSE_TEXTS[view.purpose]
    return {
        "receipt_id": view.id,
        "patient_id": view.patient_id,
        "purpose": view.purpose.value,
        "purpose_code": {"system": HL7_PURPOSE_SYSTEM, "code": view.purpose.hl7_code},
        "answer": "granted" if view.granted else "refused",
        "scopes": sorted(s.value for s in view.scopes),
        "text_shown": {"version": text.version, "title": text.title, "text": text.text},
        "recorded_at": view.recorded_at.isoformat(),
        "recorded_by": view.recorded_by,
        "method": view.method,
        "expires_at": view.expires_at.isoformat() if view.expires_at else None,
        "how_to_withdraw": "Change your answer in the portal at any time; it takes effect at once.",
    }


def receipt_html(view: ConsentView) -> str:
    """The same receipt as a small, printable HTML page."""
    data = receipt(view)
    text = PURPOSE_TEXTS[view.purpose]
    scopes = ", ".join(str(s) for s in data["scopes"]) or "none"  # type: ignore[attr-defined]
    rows = [
        ("Purpose", text.title),
        ("Your answer", "Yes" if view.granted else "No"),
        ("Limits", scopes),
        ("Recorded", f"{view.recorded_at:%Y-%m-%d %H:%M} UTC"),
        ("Expires", f"{view.expires_at:%Y-%m-%d}" if view.expires_at else "never"),
        ("Receipt number", view.id),
    ]
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>Consent receipt {html.escape(view.id)}</title>"
        f"<h1>Consent receipt: {html.escape(text.title)}</h1>"
        f"<p>{html.escape(text.text)} (wording version {html.escape(text.version)})</p>"
        f"<table>{cells}</table>"
        f"<p>{html.escape(str(data['how_to_withdraw']))}</p>"
        f"<script type=application/json id=receipt>{html.escape(json.dumps(data))}</script>"
        "</html>"
    )
