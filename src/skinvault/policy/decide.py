"""``decide()``: the single, pure access decision for every read, share and export.

    >>> d = decide(actor, Access.VIEW, photo, Purpose.CARE, consents=[],
    ...            relationships=[CareFacts("u7", since, None)], now=now)   # doctest: +SKIP
    >>> d.allowed, d.reason
    (True, 'Dr. Lee is part of your care team.')

Rules, in order:

1. Deleted photos, and actors that are not signed-in people, get nothing.
2. Patients see, share and export their own photos, and nobody else's.
3. Administrators manage the service but do not view photos.
4. Care: clinicians and staff with a current care relationship; a clinician
   without one only by break-glass with a written reason, flagged for review.
   Care never looks at any consent: saying no to teaching changes nothing here.
5. Teaching, research, publication, AI training: only roles that do that work,
   only with the patient's current (granted, unexpired, unrevoked) consent for
   that very purpose, and only within its scopes, which become obligations on
   how the photo may be served. Secondary uses are never shared onward.

Every decision carries a reason a patient can read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from skinvault.actors import Actor, Role
from skinvault.policy.purposes import PURPOSE_TEXTS, Purpose, Scope

MIN_BREAK_GLASS_REASON = 10


class Access(StrEnum):
    VIEW = "view"
    SHARE = "share"
    EXPORT = "export"


class Obligation(StrEnum):
    """How an allowed photo must be served."""

    DEIDENTIFIED = "deidentified"  # no name, note, dates or other details that link it
    CROPPED = "cropped"  # only a crop to the clinical area
    NO_FACE = "no_face"  # only a version in which no face can be seen
    REVIEW = "review"  # break-glass: a privacy officer must review this access


@dataclass(frozen=True)
class PhotoFacts:
    id: str
    patient_id: str
    patient_user_id: str | None
    deleted: bool = False


@dataclass(frozen=True)
class CareFacts:
    """A care relationship between the photo's patient and a clinician or staff member."""

    member_id: str
    since: datetime
    until: datetime | None = None

    def current(self, now: datetime) -> bool:
        return self.since <= now and (self.until is None or now < self.until)


@dataclass(frozen=True)
class ConsentFacts:
    """One recorded answer; the latest one recorded for a purpose is the one in force."""

    purpose: Purpose
    granted: bool
    recorded_at: datetime
    scopes: frozenset[Scope] = frozenset()
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    obligations: frozenset[Obligation] = field(default_factory=frozenset)

    @property
    def break_glass(self) -> bool:
        return Obligation.REVIEW in self.obligations


def deny(reason: str) -> Decision:
    return Decision(False, reason)


#: Roles that do each kind of secondary work.
SECONDARY_ROLES: dict[Purpose, frozenset[Role]] = {
    Purpose.TEACHING: frozenset({Role.CLINICIAN, Role.EDUCATOR}),
    Purpose.RESEARCH: frozenset({Role.RESEARCHER}),
    Purpose.PUBLICATION: frozenset({Role.CLINICIAN, Role.EDUCATOR, Role.RESEARCHER}),
    Purpose.AI_TRAINING: frozenset({Role.RESEARCHER}),
}
#: These uses never need to know whose photo it is.
ALWAYS_DEIDENTIFIED = frozenset({Purpose.RESEARCH, Purpose.PUBLICATION, Purpose.AI_TRAINING})
_SCOPE_OBLIGATIONS = {
    Scope.DEIDENTIFIED: Obligation.DEIDENTIFIED,
    Scope.CROPPED: Obligation.CROPPED,
    Scope.NO_FACE: Obligation.NO_FACE,
}
_SCOPE_WORDS = {
    Scope.DEIDENTIFIED: "without details that identify them",
    Scope.CROPPED: "cropped to the skin area",
    Scope.INTERNAL: "inside this clinic only",
    Scope.NO_FACE: "with no face visible",
}


def _day(moment: datetime) -> str:
    return f"{moment:%d %B %Y}".lstrip("0")  # pragma: no mutate (a date never starts with "X")


def consent_in_force(
    consents: Iterable[ConsentFacts], purpose: Purpose, now: datetime
) -> ConsentFacts | None:
    """The latest answer recorded for ``purpose`` up to ``now``."""
    recorded = [c for c in consents if c.purpose is purpose and c.recorded_at <= now]
    return max(recorded, key=lambda c: c.recorded_at, default=None)


def decide(
    actor: Actor,
    access: Access,
    photo: PhotoFacts,
    purpose: Purpose,
    *,
    consents: Iterable[ConsentFacts],
    relationships: Iterable[CareFacts],
    now: datetime,
    break_glass_reason: str | None = None,
) -> Decision:
    """Whether ``actor`` may ``access`` ``photo`` for ``purpose`` at ``now``, and how."""
    if photo.deleted:
        return deny("This photo has been deleted.")
    if actor.role is None:
        return deny("Only signed-in people can open photos.")
    if actor.role is Role.PATIENT:
        if photo.patient_user_id is not None and actor.id == photo.patient_user_id:
            return Decision(True, "This is your own photo.")
        return deny("Patients can see only their own photos.")
    if actor.role is Role.ADMIN:
        return deny("Administrators manage the service but do not look at photos.")
    if purpose is Purpose.CARE:
        return _care(actor, relationships, now, break_glass_reason)
    return _secondary(actor, access, purpose, consents, now)


def _care(
    actor: Actor, relationships: Iterable[CareFacts], now: datetime, break_glass: str | None
) -> Decision:
    assert actor.role is not None
    if actor.role not in (Role.CLINICIAN, Role.STAFF):
        return deny(f"People in the {actor.role.value} role do not see photos for care.")
    mine = [r for r in relationships if r.member_id == actor.id]
    if any(r.current(now) for r in mine):
        return Decision(True, f"{actor.name} is part of your care team.")
    if (
        actor.role is Role.CLINICIAN
        and break_glass
        and len(break_glass.strip()) >= MIN_BREAK_GLASS_REASON
    ):
        return Decision(
            True,
            f"Emergency access by {actor.name} without a care relationship, giving the reason"
            f" “{break_glass.strip()}”. It is flagged for review.",
            frozenset({Obligation.REVIEW}),
        )
    ended = [r.until for r in mine if r.until is not None and r.until <= now]
    if ended:
        return deny(
            f"{actor.name}'s care relationship with this patient ended on {_day(max(ended))}."
        )
    return deny(f"{actor.name} has no care relationship with this patient.")


def _secondary(
    actor: Actor,
    access: Access,
    purpose: Purpose,
    consents: Iterable[ConsentFacts],
    now: datetime,
) -> Decision:
    title = PURPOSE_TEXTS[purpose].in_sentence
    assert actor.role is not None
    if actor.role not in SECONDARY_ROLES[purpose]:
        return deny(f"People in the {actor.role.value} role do not use photos for {title}.")
    if access is Access.SHARE:
        return deny(f"Photos used for {title} cannot be shared onward.")
    history = list(consents)
    consent = consent_in_force(history, purpose, now)
    if consent is None:
        return deny(f"The patient has not given consent for {title}.")
    if not consent.granted:
        earlier_grant = any(
            c.purpose is purpose and c.granted and c.recorded_at < consent.recorded_at
            for c in history
        )
        verb = "withdrew consent for" if earlier_grant else "said no to"
        return deny(f"The patient {verb} {title} on {_day(consent.recorded_at)}.")
    if consent.revoked_at is not None and consent.revoked_at <= now:
        return deny(f"The patient withdrew consent for {title} on {_day(consent.revoked_at)}.")
    if consent.expires_at is not None and consent.expires_at <= now:
        return deny(f"The patient's consent for {title} expired on {_day(consent.expires_at)}.")
    if Scope.INTERNAL in consent.scopes and (
        purpose is Purpose.PUBLICATION or access is Access.EXPORT
    ):
        return deny(f"The patient allowed {title} inside this clinic only.")
    obligations = {_SCOPE_OBLIGATIONS[s] for s in consent.scopes if s in _SCOPE_OBLIGATIONS}
    if purpose in ALWAYS_DEIDENTIFIED:
        obligations.add(Obligation.DEIDENTIFIED)
    limits = [_SCOPE_WORDS[s] for s in sorted(consent.scopes)]
    limit_text = f", {' and '.join(limits)}" if limits else ""
    return Decision(
        True,
        f"The patient consented to {title} on {_day(consent.recorded_at)}{limit_text}.",
        frozenset(obligations),
    )


class PatientAction(StrEnum):
    """Things done to a patient's record as a whole, not to one photo."""

    LIST_PHOTOS = "list-photos"
    UPLOAD = "upload"
    MANAGE_CONSENT = "manage-consent"
    READ_HISTORY = "read-history"
    READ_SENT = "read-sent"
    REQUEST_DELETION = "request-deletion"
    DECIDE_DELETION = "decide-deletion"
    REQUEST_PHOTO = "request-photo"


_CARE_TEAM_MAY = frozenset(
    {PatientAction.LIST_PHOTOS, PatientAction.UPLOAD, PatientAction.REQUEST_PHOTO}
)


def decide_patient(
    actor: Actor,
    action: PatientAction,
    *,
    patient_user_id: str | None,
    relationships: Iterable[CareFacts],
    now: datetime,
) -> Decision:
    """Whether ``actor`` may do ``action`` on a patient's record (photos are decided one by one).

    The patient may do everything on their own record except decide their own
    deletion request; the current care team may list, add and ask for photos; a privacy
    officer (admin) may read the access history and decides deletion requests;
    nobody else may do anything.
    """
    if actor.role is Role.PATIENT:
        if action is PatientAction.DECIDE_DELETION:
            return deny("A privacy officer decides deletion requests, not the patient.")
        if patient_user_id is not None and actor.id == patient_user_id:
            return Decision(True, "This is your own record.")
        return deny("Patients can see only their own record.")
    if actor.role is Role.ADMIN and action is PatientAction.READ_HISTORY:
        return Decision(True, f"{actor.name} reviews access as the privacy officer.")
    if actor.role is Role.ADMIN and action is PatientAction.DECIDE_DELETION:
        return Decision(True, f"{actor.name} decides deletion requests as the privacy officer.")
    if actor.role in (Role.CLINICIAN, Role.STAFF) and action in _CARE_TEAM_MAY:
        if any(r.member_id == actor.id and r.current(now) for r in relationships):
            return Decision(True, f"{actor.name} is part of the patient's care team.")
        return deny(f"{actor.name} has no care relationship with this patient.")
    who = actor.role.value if actor.role else "this account"
    return deny(f"People in the {who} role cannot do this on a patient's record.")


def decide_operation(actor: Actor) -> Decision:
    """Operating the service (users, retention, the audit log, the deletion queue): admins only."""
    if actor.role is Role.ADMIN:
        return Decision(True, f"{actor.name} operates the service as an administrator.")
    return deny("Only administrators operate the service.")


def decide_account_management(actor: Actor, *, target_id: str, action: str) -> Decision:
    """Managing accounts (create, disable, unlock, reset): administrators, and the operator
    at the server's console (a system actor, who holds the keys anyway). Nobody disables
    or resets their own account this way: an administrator cannot lock the last door."""
    if actor.role is not Role.ADMIN and not actor.id.startswith("system:"):
        return deny("Only administrators manage accounts.")
    if actor.id == target_id and action in {"disable", "reset-totp"}:
        return deny("You cannot do this to your own account; ask another administrator.")
    return Decision(True, f"{actor.name} manages accounts as an administrator.")


def decide_link_revocation(
    actor: Actor, *, sender_id: str | None, patient_user_id: str | None
) -> Decision:
    """Who may withdraw a share link: the person who sent it, and the patient it shows."""
    if actor.role is None:
        return deny("Only signed-in people can withdraw a link.")
    if sender_id is not None and actor.id == sender_id:
        return Decision(True, "You sent this link.")
    if patient_user_id is not None and actor.id == patient_user_id:
        return Decision(True, "The link shows your photo.")
    return deny("Only the person who sent a link, or the patient, can withdraw it.")


def decide_token_revocation(actor: Actor, *, owner_id: str) -> Decision:
    """An API token is ended by its owner, or by an administrator (a lost laptop, a leaver)."""
    if actor.role is not None and actor.id == owner_id:
        return Decision(True, "This is your own token.")
    if actor.role is Role.ADMIN:
        return Decision(True, f"{actor.name} revokes tokens as an administrator.")
    return deny("Only the token's owner or an administrator can revoke it.")
