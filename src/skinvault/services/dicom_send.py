"""Sending a photo to a DICOM destination (PACS): in the request, or retried from the queue.

A send is an export decided and audited as ``photo:send``
(:func:`skinvault.services.photo_export.export_dicom`); its outcome (``done`` or
``failed``, with the destination's answer) is audited too. A send that failed in its
request is retried by the ``dicom_send`` job (:func:`retry_send`, registered in
:mod:`skinvault.services.job_kinds`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from skinvault.actors import Actor, Role
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.errors import DestinationUnavailable, NotFound
from skinvault.interop import senders
from skinvault.policy.purposes import Purpose
from skinvault.services.photo_export import export_dicom
from skinvault.services.photo_policy import parse_purpose
from skinvault.services.record_export import _events


@dataclass(frozen=True)
class SendResult:
    photo_id: str
    destination: str
    attempts: int
    detail: str
    sop_instance_uid: str
    #: The id of the background job that keeps trying, when the attempts in the request
    #: failed and ``background`` was asked for; None when it was delivered.
    retry_job: str | None = None

    @property
    def delivered(self) -> bool:
        return self.retry_job is None


#: The job kind of a send the queue retries (services/job_kinds.py registers it).
SEND_JOB = "dicom_send"


def destinations(vault: Vault) -> list[str]:
    """The names of the configured DICOM destinations."""
    return sorted(vault.settings.dicom_destinations)


def _sender(
    vault: Vault,
    destination: str,
    sender_factory: Callable[[str, str], senders.DicomSender] | None,
) -> senders.DicomSender:
    url = vault.settings.dicom_destinations.get(destination)
    if url is None:
        known = ", ".join(destinations(vault)) or "none is configured"
        raise NotFound(f"there is no DICOM destination {destination!r} ({known})")
    timeout = vault.settings.dicom_send_timeout_seconds
    make = sender_factory or (
        lambda u, aet: senders.sender_for(u, calling_aet=aet, timeout=timeout)
    )
    return make(url, vault.settings.dicom_calling_aet)


def send_photo(
    vault: Vault,
    *,
    photo_id: str,
    actor: Actor,
    destination: str,
    purpose: Purpose | str = Purpose.CARE,
    background: bool = False,
    sender_factory: Callable[[str, str], senders.DicomSender] | None = None,
    wait: Callable[[float], None] = time.sleep,
) -> SendResult:
    """Export the photo as DICOM (decided and audited as ``photo:send``) and deliver it.

    Without ``background``: up to ``dicom_send_attempts`` attempts in the caller's
    request (each at most ``dicom_send_timeout_seconds``, waiting 1 s, 2 s, …); the
    outcome is audited ``done`` with the destination's answer, or ``failed`` with the
    last error, raised as :class:`DestinationUnavailable`.

    With ``background`` (the API and the portal): one attempt in the request; if it
    fails, the failure is audited and a ``dicom_send`` job (:func:`retry_send`) keeps
    trying from the queue (``job_attempts`` tries, ``job_retry_seconds`` doubling),
    and the result names that job instead of raising.
    """
    sender = _sender(vault, destination, sender_factory)
    got = export_dicom(
        vault,
        photo_id=photo_id,
        actor=actor,
        purpose=purpose,
        action=Action.PHOTO_SEND,
        detail=f"to {destination}",
    )
    attempts = 1 if background else vault.settings.dicom_send_attempts
    last: DestinationUnavailable | None = None
    for attempt in range(1, attempts + 1):
        try:
            detail = sender.send(got.part10.data)
        except DestinationUnavailable as exc:
            last = exc
            if attempt < attempts:
                wait(float(attempt))
            continue
        _audit_send(
            vault, actor, photo_id, Outcome.DONE, f"{destination}: {detail}", purpose=str(purpose)
        )
        return SendResult(photo_id, destination, attempt, detail, got.part10.sop_instance_uid)
    assert last is not None
    if background:
        from skinvault.services import jobs  # noqa: PLC0415 (jobs imports the services)

        chosen = parse_purpose(purpose)
        message = f"{destination}: {last} (try 1; the queue tries again)"
        with vault.sessions.begin() as session:
            _record_send(session, vault, actor, photo_id, Outcome.FAILED, message, chosen.value)
            job_id = jobs.enqueue(
                session,
                vault,
                SEND_JOB,
                {
                    "photo_id": photo_id,
                    "actor_id": actor.id,
                    "destination": destination,
                    "purpose": chosen.value,
                },
                delay=vault.settings.job_retry_seconds,
            )
        return SendResult(
            photo_id, destination, 1, str(last), got.part10.sop_instance_uid, retry_job=job_id
        )
    message = f"{destination}: {last} (after {attempts} attempts)"
    _audit_send(vault, actor, photo_id, Outcome.FAILED, message, purpose=str(purpose))
    raise DestinationUnavailable(message)


def retry_send(vault: Vault, payload: dict[str, object], *, attempt: int, last: bool) -> str:
    """One queued try of a send that failed in its request (the ``dicom_send`` job).

    The send is decided again, as the person who asked for it (a consent withdrawn or
    an account disabled since then stops it; :class:`PermissionError` tells the queue
    not to retry), audited as ``photo:send``, then tried once. A failure is audited
    ``failed`` only on the last try (the earlier ones are in the job's error); it is
    raised so that the queue tries again later.
    """
    from skinvault.db.models import User  # noqa: PLC0415

    photo_id = str(payload["photo_id"])
    destination = str(payload["destination"])
    purpose = str(payload.get("purpose", Purpose.CARE.value))
    with vault.reading() as session:
        user = session.get(User, str(payload["actor_id"]))
        if user is None or user.disabled:
            raise PermissionError("the account that asked for the send is gone or disabled")
        actor = Actor(user.id, Role(user.role), user.display_name)
    sender = _sender(vault, destination, None)
    got = export_dicom(
        vault,
        photo_id=photo_id,
        actor=actor,
        purpose=purpose,
        action=Action.PHOTO_SEND,
        detail=f"to {destination}, queued try {attempt}",
    )
    try:
        detail = sender.send(got.part10.data)
    except DestinationUnavailable as exc:
        if last:
            message = f"{destination}: {exc} (gave up after try {attempt})"
            _audit_send(vault, actor, photo_id, Outcome.FAILED, message, purpose=purpose)
        raise
    message = f"{destination}: {detail} (queued try {attempt})"
    _audit_send(vault, actor, photo_id, Outcome.DONE, message, purpose=purpose)
    return detail


def _audit_send(
    vault: Vault, actor: Actor, photo_id: str, outcome: Outcome, reason: str, *, purpose: str
) -> None:
    with vault.sessions.begin() as session:
        _record_send(session, vault, actor, photo_id, outcome, reason, purpose)


def _record_send(  # noqa: PLR0917 (one private call shape)
    session: Session,
    vault: Vault,
    actor: Actor,
    photo_id: str,
    outcome: Outcome,
    reason: str,
    purpose: str,
) -> None:
    record(
        session,
        clock=vault.clock,
        actor=actor.audit_name,
        action=Action.PHOTO_SEND,
        object=f"photo:{photo_id}",
        outcome=outcome,
        purpose=str(purpose),
        reason=reason,
    )


@dataclass(frozen=True)
class SentToPacs:
    at: datetime
    photo_id: str
    actor: str
    outcome: str  # done | failed
    detail: str


def sends_for(vault: Vault, patient_id: str) -> list[SentToPacs]:
    """The patient's photos sent to DICOM destinations (done and failed), oldest first."""
    return [
        SentToPacs(e.at, e.object.removeprefix("photo:"), e.actor, e.outcome, e.reason or "")
        for e in _events(vault, patient_id)
        if e.action == Action.PHOTO_SEND.value and e.outcome in ("done", "failed")
    ]
