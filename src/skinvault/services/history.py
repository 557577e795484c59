"""The patient's accounting of disclosures: every access to their photos, in plain words.

    >>> [e.text for e in access_history(vault, patient_id)]          # doctest: +SKIP
    ['Dr. Lee viewed your left hand photo of 3 May 2026 for your care, 12 June 2026 14:02.',
     'Prof. Ng was refused your left hand photo of 3 May 2026 for teaching, 14 June 2026 09:00:
      the patient withdrew consent for teaching on 13 June 2026.']

The history is read from the audit log itself, so it cannot say less than the
log does: every allowed, refused and failed attempt on any of the patient's
photos, and every consent answer, appears. An emergency (break-glass) access by
someone outside the care team says so, with the reason they gave, and so does
each step of the privacy officer's review of it (never the officer's note).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select

from skinvault.bootstrap import Vault
from skinvault.db.models import AuditEvent, BodySite, BreakGlassReview, Patient, Photo
from skinvault.errors import NotFound
from skinvault.policy.purposes import PURPOSE_TEXTS, Purpose

_VERBS = {
    "photo:store": "added",
    "photo:view": "viewed",
    "photo:thumbnail": "viewed a preview of",
    "photo:describe": "looked up the details of",
    "photo:share": "shared",
    "photo:delete": "deleted",
    "photo:shred": "shredded, as the retention period ended,",
    "share-link:open": "opened, through a share link,",
    "share-link:revoke": "withdrew a share link to",
    "photo:export-dicom": "exported, as a DICOM file,",
    "photo:export-fhir": "exported, through the FHIR interface,",
    "measurement:export-fhir": "exported, through the FHIR interface, the measurements of",
    "photo:send": "sent, to a connected imaging system (PACS),",
    "photo:export-archive": "exported, in a personal archive,",
    "record:export-archive": "downloaded an encrypted personal archive of",
    "public-copy:make": "made a public copy (nothing in it links to the record) of one of",
    "record:export-fhir": "read, through the FHIR interface, the details of",
    "photo:version": "made a version with only what the consent allows of",
    "photo:markup": "chose what to cover or crop on",
    "photo:measure": "measured the light (depigmented) skin on",
    "photo:annotate": "corrected the details of",
    "measurement:view": "looked at the measurements of",
}
#: Events on the record as a whole that the patient's history shows (others are the
#: operator's: care-team changes, failed uploads).
_RECORD_LINES = frozenset(
    {"break-glass:start", "record:export-fhir", "record:export-archive", "public-copy:make"}
)
_CONSENT = {
    "consent:grant": "gave consent for",
    "consent:refuse": "said no to",
    "consent:revoke": "withdrew consent for",
}


#: How the audit log marks a read allowed by break-glass (see services.review).
_BREAK_GLASS = "BREAK-GLASS, to be reviewed: "
_GIVEN = re.compile(r"giving the reason “(?P<given>.*)”\. It is flagged for review\.\Z", re.S)
_EMERGENCY_VERBS = {
    "photo:view": "viewed",
    "photo:thumbnail": "viewed a preview of",
    "photo:describe": "looked up the details of",
    "break-glass:start": "opened the list of",
}
_REVIEW_STEPS = {  # (verb, what follows the access's date)
    "break-glass:review": ("reviewed", ""),
    "break-glass:escalate": ("escalated", " for further investigation"),
}


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    actor: str
    action: str
    purpose: str | None
    outcome: str
    text: str
    #: An emergency (break-glass) access by someone outside the care team.
    emergency: bool = False
    #: The reason that person gave, word for word.
    reason_given: str | None = None
    #: Which photo, in words ("your left hand photo of 3 May 2026"); None for consent lines.
    photo: str | None = None
    #: Who, as the audit log's stable id (two people may share a name); None if not known.
    actor_id: str | None = None


def _given_reason(reason: str | None) -> str | None:
    """The reason a clinician gave for break-glass, read back from the audited decision;
    ``None`` unless the event is an allowed break-glass read."""
    if not reason or not reason.startswith(_BREAK_GLASS):
        return None
    found = _GIVEN.search(reason)
    return found.group("given") if found else reason.removeprefix(_BREAK_GLASS)


def _emergency_sentence(event: AuditEvent, photo_words: str, who: str, given: str) -> str:
    verb = _EMERGENCY_VERBS.get(event.action, event.action)
    return (
        f"Emergency access outside your care team: {who} {verb} {photo_words},"
        f" {_when(event.at)}. The reason they gave: “{given}”."
        " A privacy officer reviews every emergency access."
    )


def _when(moment: datetime) -> str:
    return f"{moment:%d %B %Y %H:%M}".lstrip("0")


def _day(moment: datetime) -> str:
    return f"{moment:%d %B %Y}".lstrip("0")


def _purpose_words(purpose: str | None) -> str:
    if not purpose:
        return ""
    try:
        chosen = Purpose(purpose)
    except ValueError:
        return f" for “{purpose}”"
    return (
        " for your care" if chosen is Purpose.CARE else f" for {PURPOSE_TEXTS[chosen].in_sentence}"
    )


def _who(actor: str, patient_user: str | None) -> str:
    actor_id, _, name = actor.partition(" ")
    if patient_user and actor_id == patient_user:
        return "You"
    if actor_id.startswith("system:"):
        return "The system"
    return name or "Someone"


def _sentence(event: AuditEvent, photo_words: str, who: str) -> str:
    when = _when(event.at)
    purpose = _purpose_words(event.purpose)
    if event.action in _CONSENT:
        return f"{who} {_CONSENT[event.action]}{purpose.replace(' for ', ' ', 1)}, {when}."
    verb = _VERBS.get(event.action, event.action)
    if event.outcome == "denied":
        return f"{who} was refused {photo_words}{purpose}, {when}: {event.reason}"
    if event.outcome == "failed":
        return f"{who} tried to open {photo_words}{purpose} but it failed, {when}."
    return f"{who} {verb} {photo_words}{purpose}, {when}."


def access_history(vault: Vault, patient_id: str) -> list[HistoryEntry]:
    """Every recorded access to the patient's photos and every consent answer, oldest first."""
    with vault.reading() as session:
        patient = session.get(Patient, patient_id)
        if patient is None:
            raise NotFound(f"there is no patient {patient_id}")
        photos = {
            p.id: p for p in session.scalars(select(Photo).where(Photo.patient_id == patient_id))
        }
        sites = {
            s.id: s.label[:1].lower() + s.label[1:]  # "Left hand" reads "your left hand photo"
            for s in session.scalars(select(BodySite).where(BodySite.patient_id == patient_id))
        }
        reviews = {
            f"break-glass:{r.id}": r
            for r in session.scalars(
                select(BreakGlassReview).where(BreakGlassReview.patient_id == patient_id)
            )
        }
        objects = [f"photo:{pid}" for pid in photos] + [f"patient:{patient_id}", *reviews]
        events = session.scalars(
            select(AuditEvent)
            .where(
                or_(
                    AuditEvent.object.in_(objects),
                    AuditEvent.action.in_(list(_CONSENT))
                    & (AuditEvent.object == f"patient:{patient_id}"),
                )
            )
            .order_by(AuditEvent.seq)
        ).all()
        entries = []
        for e in events:
            case = reviews.get(e.object)
            if case is not None:
                if e.action in _REVIEW_STEPS:  # the step, never the officer's own note
                    who_then = case.clinician.partition(" ")[2] or "a clinician"
                    verb, tail = _REVIEW_STEPS[e.action]
                    entries.append(
                        HistoryEntry(
                            e.at, "A privacy officer", e.action, None, e.outcome,
                            f"A privacy officer {verb} the emergency access by {who_then}"
                            f" of {_day(case.opened_at)}{tail}, {_when(e.at)}.",
                        )
                    )  # fmt: skip
                continue
            given = _given_reason(e.reason) if e.outcome == "allowed" else None
            if (
                e.object.startswith("patient:")
                and e.action not in _CONSENT
                # refused emergency attempts are shown too, and FHIR reads of the record
                and e.action not in _RECORD_LINES
            ):
                continue  # care-team changes and failed uploads are in the operator's log
            photo = photos.get(e.object.removeprefix("photo:"))
            if photo is not None:
                site = sites.get(photo.site_id or "", "")
                photo_words = f"your {site + ' ' if site else ''}photo of {_day(photo.uploaded_at)}"
            elif e.object.startswith("patient:"):
                photo_words = "your photos"
            else:
                photo_words = "your photo"
            who = _who(e.actor, patient.user_id)
            if given is not None:
                entries.append(
                    HistoryEntry(
                        e.at, who, e.action, e.purpose, e.outcome,
                        _emergency_sentence(e, photo_words, who, given),
                        emergency=True, reason_given=given,
                    )
                )  # fmt: skip
                continue
            entries.append(
                HistoryEntry(
                    e.at, who, e.action, e.purpose, e.outcome, _sentence(e, photo_words, who),
                    photo=None if e.action in _CONSENT else photo_words,
                    actor_id=e.actor.partition(" ")[0],
                )
            )  # fmt: skip
        return entries


#: Reads that make up one "visit": opening a photo shows its preview and details too.
_LOOKS = frozenset({"photo:view", "photo:thumbnail", "photo:describe"})


@dataclass(frozen=True)
class Visit:
    """One line of the page "Who saw my photos": a person's looks at the patient's photos on
    one day for one purpose, folded together; any other entry is a line of its own."""

    at: datetime  #: the first moment
    last: datetime
    who: str
    outcome: str
    text: str
    #: The patient's own looks at their own photos (the page folds these away by default).
    own: bool = False
    emergency: bool = False
    #: How many audited reads the line stands for.
    count: int = 1


def visits(entries: list[HistoryEntry]) -> list[Visit]:
    """``access_history`` folded for reading, newest first: one line per person, day and
    purpose for allowed looks (view, preview, details); refusals, emergencies, shares,
    consent answers and every other entry keep a line each.

        >>> [v.text for v in visits(access_history(vault, patient_id))]   # doctest: +SKIP
        ['Dr. Lee looked at your left hand photo of 3 May 2026 for your care, 12 June 2026
          (14:02 to 14:09, 3 reads).', ...]

    Nothing is dropped: the full list stays in ``access_history`` (the API and the archive
    give it whole), and every read is counted in its line.
    """
    lines: list[Visit] = []
    groups: dict[tuple[str, str, str | None], list[HistoryEntry]] = {}
    order: list[tuple[str, str, str | None] | HistoryEntry] = []
    for entry in entries:
        if entry.action in _LOOKS and entry.outcome == "allowed" and not entry.emergency:
            key = (entry.actor_id or entry.actor, f"{entry.at:%Y-%m-%d}", entry.purpose)
            if key not in groups:
                groups[key] = []
                order.append(key)
            groups[key].append(entry)
        else:
            order.append(entry)
    for item in order:
        if isinstance(item, HistoryEntry):
            lines.append(
                Visit(item.at, item.at, item.actor, item.outcome, item.text,
                      own=item.actor == "You" and item.action in _LOOKS,
                      emergency=item.emergency)
            )  # fmt: skip
            continue
        group = groups[item]
        first, last = group[0], group[-1]
        photos = list(dict.fromkeys(e.photo or "your photo" for e in group))
        what = (
            photos[0]
            if len(photos) == 1
            else f"{len(photos)} of your photos: "
            + "; ".join(p.removeprefix("your ") for p in photos)
        )
        kinds = {e.action for e in group}
        verb = _VERBS[kinds.pop()] if len(kinds) == 1 else "viewed"
        span = (
            f"{first.at:%H:%M}"
            if first.at.replace(second=0, microsecond=0) == last.at.replace(second=0, microsecond=0)
            else f"{first.at:%H:%M} to {last.at:%H:%M}"
        )
        reads = f", {len(group)} reads" if len(group) > 1 else ""
        lines.append(
            Visit(
                first.at, last.at, first.actor, "allowed",
                f"{first.actor} {verb} {what}{_purpose_words(first.purpose)},"
                f" {_day(first.at)} ({span}{reads}).",
                own=first.actor == "You", count=len(group),
            )
        )  # fmt: skip
    lines.sort(key=lambda v: v.at, reverse=True)
    return lines
