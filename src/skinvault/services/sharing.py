"""Share links: a patient (or their care team) sends one photo to someone outside the vault.

    >>> link = create_share_link(vault, photo_id=p, actor=ann, recipient="gp@surgery.example",
    ...                          expires_in=timedelta(days=2))              # doctest: +SKIP
    >>> link_status(vault, link.token).state                                # doctest: +SKIP
    'ok'
    >>> open_share_link(vault, token=link.token).media_type                 # doctest: +SKIP
    'image/jpeg'
    >>> open_share_link(vault, token=link.token)                            # doctest: +SKIP
    Traceback (most recent call last):
    LinkUnavailable: this link has already been used

Creating a link is a policy decision (``Access.SHARE``), like any read. The
token is 32 random bytes, shown once; only its SHA-256 is stored, so a copy of
the database opens nothing. A single-use link is consumed by a conditional
``UPDATE … WHERE used_at IS NULL`` in the same transaction as its audit event:
of two concurrent opens exactly one changes the row, and only that one gets
bytes. Every open, refusal and withdrawal is audited against ``photo:<id>``,
so the patient's access history shows it.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from skinvault.actors import Actor, Role
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.db.models import Patient, Photo, ShareLink, SignInFailure, User
from skinvault.errors import (
    AccessDenied,
    Busy,
    ConfigError,
    LinkLocked,
    LinkPasswordWrong,
    LinkRefused,
    LinkUnavailable,
    NotFound,
    RequestInvalid,
    SkinvaultError,
    TooManyLinkTries,
)
from skinvault.policy.decide import Access, decide_link_revocation
from skinvault.policy.purposes import Purpose

# The fact-gathering for decide() lives in photos; sharing must decide on exactly the same facts.
from skinvault.services.notifications import Kind, notify_sender
from skinvault.services.passwords import HASHER
from skinvault.services.photos import (
    MEDIA_TYPES,
    PHOTO,
    PhotoBytes,
    _decision,
    _decrypt,
    _parse_purpose,
)

MIN_LIFETIME = timedelta(minutes=5)
MAX_LIFETIME = timedelta(days=30)
_TOKEN_BYTES = 32
_MAX_RECIPIENT = 320
#: How long an open waits for a password try while all of them are being checked.
_TRY_WAIT = 20.0


LINK_OPEN = Action.SHARE_LINK_OPEN
LINK_REVOKE = Action.SHARE_LINK_REVOKE

State = Literal["ok", "expired", "revoked", "used", "deleted", "locked", "missing"]


@dataclass(frozen=True)
class NewLink:
    """The only moment the token exists outside the recipient's hands: show it once."""

    id: str
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class LinkStatus:
    """What the landing page may say before anything is opened (no bytes, nothing consumed)."""

    state: State
    recipient: str | None
    expires_at: datetime | None
    needs_password: bool


@dataclass(frozen=True)
class SentEntry:
    """One line of the patient's "sent" log."""

    link_id: str
    photo_id: str
    recipient: str
    created_at: datetime
    expires_at: datetime
    state: State
    opened_at: datetime | None
    channel: str = "link"
    #: Wrong passwords tried so far (the link locks at ``share_link_password_tries``).
    wrong_passwords: int = 0


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _when(moment: datetime) -> str:
    return f"{moment:%d %B %Y at %H:%M:%S} UTC".lstrip("0")


def _state(link: ShareLink, photo: Photo | None, now: datetime) -> State:
    if link.revoked_at is not None:
        return "revoked"
    if photo is None or photo.deleted_at is not None or photo.wrapped_dek is None:
        return "deleted"
    if link.single_use and link.used_at is not None:
        return "used"
    if link.locked_at is not None:
        return "locked"
    if now >= link.expires_at:
        return "expired"
    return "ok"


def _refusal(link: ShareLink, state: State) -> str:
    return {
        "revoked": "this link was withdrawn by the sender",
        "deleted": "the photo behind this link has been deleted",
        "expired": f"this link expired on {_when(link.expires_at)}",
        "used": "this link has already been used",
    }.get(state, "this link cannot be opened")


def _audit_apart(
    vault: Vault, *, actor: str, action: Action, obj: str, outcome: Outcome, reason: str
) -> None:
    """Record an attempt in its own transaction (the attempt's own work rolled back)."""
    with vault.sessions.begin() as session:
        record(
            session,
            clock=vault.clock,
            actor=actor,
            action=action,
            object=obj,
            outcome=outcome,
            reason=reason,
        )


def create_share_link(
    vault: Vault,
    *,
    photo_id: str,
    actor: Actor,
    recipient: str,
    expires_in: timedelta,
    single_use: bool = True,
    password: str | None = None,
    purpose: str = "care",
) -> NewLink:
    """A link to one photo for ``recipient``, if the policy lets ``actor`` share it."""
    obj = f"photo:{photo_id}"
    recipient = recipient.strip()
    if not recipient or len(recipient) > _MAX_RECIPIENT:
        raise ConfigError(f"name the recipient in 1 to {_MAX_RECIPIENT} characters")
    if not MIN_LIFETIME <= expires_in <= MAX_LIFETIME:
        raise ConfigError(
            "a share link must last between 5 minutes and 30 days;"
            f" {expires_in} is outside that range"
        )
    if password is not None and not password:
        raise ConfigError("a link password cannot be empty; leave it out for no password")
    token = base64.urlsafe_b64encode(vault.tokens.secret(_TOKEN_BYTES)).rstrip(b"=").decode()
    password_hash = HASHER.hash(password) if password is not None else None
    try:
        chosen = _parse_purpose(purpose)
        with vault.sessions.begin() as session:
            photo = session.get(Photo, photo_id)
            if photo is None or photo.deleted_at is not None:
                raise NotFound(f"there is no photo {photo_id}")
            decision = _decision(
                session,
                vault,
                photo,
                actor=actor,
                access=Access.SHARE,
                purpose=chosen,
                break_glass_reason=None,  # an emergency is a reason to look, never to send
            )
            if not decision.allowed:
                record(
                    session,
                    clock=vault.clock,
                    actor=actor.audit_name,
                    action=Action.PHOTO_SHARE,
                    object=obj,
                    outcome=Outcome.DENIED,
                    purpose=chosen.value,
                    reason=decision.reason,
                )
                denied: AccessDenied | None = AccessDenied(decision.reason)
                new = None
            else:
                denied = None
                now = vault.clock.now()
                link = ShareLink(
                    id=vault.tokens.new_id(),
                    photo_id=photo_id,
                    recipient=recipient,
                    token_hash=_token_hash(token),
                    created_at=now,
                    created_by=actor.id if actor.role else None,
                    expires_at=now + expires_in,
                    single_use=single_use,
                    used_at=None,
                    password_hash=password_hash,
                    revoked_at=None,
                )
                session.add(link)
                session.flush()
                record(
                    session,
                    clock=vault.clock,
                    actor=actor.audit_name,
                    action=Action.PHOTO_SHARE,
                    object=obj,
                    outcome=Outcome.DONE,
                    purpose=chosen.value,
                    reason=f"to {recipient}, expires {link.expires_at.isoformat()}",
                )
                new = NewLink(link.id, token, link.expires_at)
    except SkinvaultError as exc:
        if not isinstance(exc, AccessDenied):
            _audit_apart(
                vault,
                actor=actor.audit_name,
                action=Action.PHOTO_SHARE,
                obj=obj,
                outcome=Outcome.FAILED,
                reason=str(exc),
            )
        raise
    if denied is not None:
        raise denied  # the refusal is committed to the audit log first
    assert new is not None
    return new


def _password_ok(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class _Seen:
    """What the read step saw of a link: enough to check its password and decrypt its photo
    with no transaction open."""

    link_id: str
    recipient: str
    password_hash: str | None
    photo_id: str
    photo_format: str
    blob_key: str
    wrapped_dek: bytes
    content_sha256: str | None


def _address_key(address: str) -> str:
    return f"link-addr:{address}"


def _address_blocked(session: Session, vault: Vault, address: str, now: datetime) -> bool:
    settings = vault.settings
    since = now - timedelta(minutes=settings.share_link_window_minutes)
    failures = session.scalar(
        select(func.count()).where(
            SignInFailure.key == _address_key(address), SignInFailure.at > since
        )
    )
    return int(failures or 0) >= settings.share_link_failures_per_address


def _from(address: str | None) -> str:
    return f" (from {address})" if address else ""


def _refuse(
    vault: Vault,
    *,
    who: str,
    obj: str,
    error: SkinvaultError,
    address: str | None,
    count_address: bool,
    reason: str | None = None,
    session: Session | None = None,
) -> SkinvaultError:
    """Audit a refused open (and count it against the client address) in a short write
    transaction of its own, or in ``session``; returns ``error`` for the caller to raise."""

    def write(s: Session) -> None:
        if count_address and address:
            s.add(SignInFailure(key=_address_key(address), at=vault.clock.now()))
        record(
            s,
            clock=vault.clock,
            actor=who,
            action=LINK_OPEN,
            object=obj,
            outcome=Outcome.DENIED,
            reason=(reason or str(error)) + _from(address),
        )

    if session is not None:
        write(session)
    else:
        with vault.sessions.begin() as own:
            write(own)
    return error


def _locked_message(tries: int) -> str:
    return f"this link is locked after {tries} wrong passwords; ask the sender for a new link"


def open_share_link(
    vault: Vault, *, token: str, password: str | None = None, address: str | None = None
) -> PhotoBytes:
    """The photo behind ``token`` for its recipient; a refusal is audited and returns no bytes.

    ``address`` is the client's address: refused opens are counted against it, and one that
    has too many within ``share_link_window_minutes`` is refused before anything is checked.

    The slow steps (the Argon2 check of the password, reading and decrypting the photo) run
    with no transaction open. A password try is *reserved* first, by a conditional
    ``UPDATE … SET password_tries = password_tries + 1 WHERE password_tries < limit``, so
    parallel guesses can never be checked more than ``share_link_password_tries`` times;
    a right password gives its try back. Only short writes hold the database.
    """
    who, obj = "link:unknown", "share-link:unknown"
    limit = vault.settings.share_link_password_tries
    now = vault.clock.now()
    try:
        # 1. Read: no write lock, no slow work.
        with vault.reading() as session:
            refusal: SkinvaultError | None = None
            count = False
            if address is not None and _address_blocked(session, vault, address, now):
                blocked = True
                seen = None
            else:
                blocked = False
                link = session.scalars(
                    select(ShareLink).where(ShareLink.token_hash == _token_hash(token))
                ).first()
                if link is None:
                    refusal, count = NotFound("this link does not exist"), True
                else:
                    who, obj = f"link:{link.id} {link.recipient}", f"photo:{link.photo_id}"
                    photo = session.get(Photo, link.photo_id)
                    state = _state(link, photo, now)
                    if state == "locked":
                        refusal = LinkLocked(_locked_message(limit))
                    elif state != "ok":
                        refusal = LinkUnavailable(_refusal(link, state))
                    elif not _sender_still_allowed(session, vault, link, photo):
                        refusal = LinkUnavailable(
                            "the person who sent this link may no longer share this photo"
                        )
                    elif link.password_hash is not None and not password:
                        refusal = LinkPasswordWrong("this link needs its password")
                seen = (
                    None
                    if refusal is not None or link is None
                    else _seen(link, session.get(Photo, link.photo_id))
                )
        if blocked:
            raise _refuse(
                vault, who=who, obj=obj, address=address, count_address=False,
                error=TooManyLinkTries(
                    "too many refused tries from this address; wait"
                    f" {vault.settings.share_link_window_minutes} minutes and try again"
                ),
            )  # fmt: skip
        if refusal is not None:
            raise _refuse(
                vault, who=who, obj=obj, error=refusal, address=address, count_address=count
            )
        assert seen is not None
        # 2. Reserve a password try (short write), then check it with nothing held.
        reserved = False
        if seen.password_hash is not None:
            assert password
            try_no = _reserve_try(vault, seen.link_id, limit)
            if try_no is None:
                raise _refuse(
                    vault, who=who, obj=obj, address=address, count_address=False,
                    error=LinkLocked(_locked_message(limit)),
                )  # fmt: skip
            reserved = True
            if not _password_ok(seen.password_hash, password):
                raise _wrong_password(
                    vault, seen, who=who, obj=obj, try_no=try_no, limit=limit, address=address
                )
        # 3. Decrypt with nothing held; the bytes are dropped if step 4 refuses.
        try:
            data = _decrypt(
                vault,
                object_id=seen.photo_id,
                kind=PHOTO,
                blob_key=seen.blob_key,
                wrapped=seen.wrapped_dek,
                sha256=seen.content_sha256,
            )
        except SkinvaultError:
            if reserved:
                _give_back_try(vault, seen.link_id)
            raise
        # 4. Consume and audit (short write): the state is checked again under the lock.
        with vault.sessions.begin() as session:
            if reserved:
                _give_back(session, seen.link_id)
            current = session.get(ShareLink, seen.link_id)
            photo = session.get(Photo, seen.photo_id)
            assert current is not None
            state = _state(current, photo, vault.clock.now())
            late: SkinvaultError | None
            if state == "locked":
                late = LinkLocked(_locked_message(limit))
            elif state != "ok":
                late = LinkUnavailable(_refusal(current, state))
            else:
                late = _consume(session, current, vault.clock.now())
            if late is not None:
                _refuse(
                    vault, who=who, obj=obj, error=late, address=address,
                    count_address=False, session=session,
                )  # fmt: skip
            else:
                record(
                    session,
                    clock=vault.clock,
                    actor=who,
                    action=LINK_OPEN,
                    object=obj,
                    outcome=Outcome.ALLOWED,
                    reason=f"opened through the link sent to {seen.recipient}",
                )
                notify_sender(session, vault, link=current, kind=Kind.LINK_OPENED)
        if late is not None:
            raise late  # committed to the audit log first
    except (LinkRefused, LinkUnavailable, NotFound, Busy):
        raise  # already audited as a refusal, or nothing happened (busy: try again)
    except SkinvaultError as exc:
        _audit_apart(
            vault, actor=who, action=LINK_OPEN, obj=obj, outcome=Outcome.FAILED, reason=str(exc)
        )
        raise
    media_type = MEDIA_TYPES.get(seen.photo_format, "application/octet-stream")
    return PhotoBytes(seen.photo_id, data, media_type)


def _seen(link: ShareLink, photo: Photo | None) -> _Seen:
    assert photo is not None and photo.wrapped_dek is not None
    return _Seen(
        link_id=link.id,
        recipient=link.recipient,
        password_hash=link.password_hash,
        photo_id=photo.id,
        photo_format=photo.format,
        blob_key=photo.blob_key,
        wrapped_dek=photo.wrapped_dek,
        content_sha256=photo.content_sha256,
    )


def _reserve_try(vault: Vault, link_id: str, limit: int) -> int | None:
    """Take one password try: its number (1..limit), or None when the link is locked.

    When every try is taken by checks still running (parallel opens, right or wrong), wait
    for them, within ``_TRY_WAIT``: a right password gives its try back at once, a wrong one
    keeps it, so many parallel opens with the right password all get through while parallel
    guesses never get more than ``limit`` checks. Past the bound: :class:`Busy`.
    """
    deadline = time.monotonic() + _TRY_WAIT
    pause = 0.02
    while True:
        with vault.sessions.begin() as session:
            result = session.execute(
                update(ShareLink)
                .where(
                    ShareLink.id == link_id,
                    ShareLink.locked_at.is_(None),
                    ShareLink.password_tries < limit,
                )
                .values(password_tries=ShareLink.password_tries + 1)
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) == 1:
                return int(
                    session.scalar(select(ShareLink.password_tries).where(ShareLink.id == link_id))
                    or 0
                )
            locked = session.scalar(select(ShareLink.locked_at).where(ShareLink.id == link_id))
        if locked is not None:
            return None
        if time.monotonic() + pause > deadline:
            raise Busy("this link is being opened many times at once; try again in a moment")
        time.sleep(pause)  # nothing held while waiting
        pause = min(pause * 2, 0.25)


def _give_back(session: Session, link_id: str) -> None:
    session.execute(
        update(ShareLink)
        .where(ShareLink.id == link_id, ShareLink.password_tries > 0)
        .values(password_tries=ShareLink.password_tries - 1)
        .execution_options(synchronize_session=False)
    )


def _give_back_try(vault: Vault, link_id: str) -> None:
    with vault.sessions.begin() as session:
        _give_back(session, link_id)


def _wrong_password(
    vault: Vault,
    seen: _Seen,
    *,
    who: str,
    obj: str,
    try_no: int,
    limit: int,
    address: str | None,
) -> SkinvaultError:
    """Keep the try, lock the link on the last one, count and audit the failure."""
    with vault.sessions.begin() as session:
        locks = try_no >= limit
        if locks:
            session.execute(
                update(ShareLink)
                .where(ShareLink.id == seen.link_id, ShareLink.locked_at.is_(None))
                .values(locked_at=vault.clock.now())
                .execution_options(synchronize_session=False)
            )
            if (locked := session.get(ShareLink, seen.link_id)) is not None:
                notify_sender(session, vault, link=locked, kind=Kind.LINK_LOCKED)
        error: SkinvaultError = (
            LinkLocked(_locked_message(limit))
            if locks
            else LinkPasswordWrong("that is not this link's password")
        )
        reason = f"wrong password (try {try_no} of {limit})" + (
            "; the link is now locked until the sender reissues it" if locks else ""
        )
        return _refuse(
            vault, who=who, obj=obj, error=error, address=address, count_address=True,
            reason=reason, session=session,
        )  # fmt: skip


def _sender_still_allowed(
    session: Session, vault: Vault, link: ShareLink, photo: Photo | None
) -> bool:
    """A link is only as good as its sender's right to share, decided again at every open:
    a clinician's link stops working when their care relationship ends."""
    sender = session.get(User, link.created_by) if link.created_by else None
    if sender is None or photo is None:
        return False
    actor = Actor(sender.id, Role(sender.role), sender.display_name)
    decision = _decision(
        session,
        vault,
        photo,
        actor=actor,
        access=Access.SHARE,
        purpose=Purpose.CARE,
        break_glass_reason=None,
    )
    return decision.allowed


def _consume(session: Session, link: ShareLink, now: datetime) -> SkinvaultError | None:
    """Mark the link opened; for a single-use link only if no one else got there first."""
    if link.single_use:
        result = session.execute(
            update(ShareLink)
            .where(ShareLink.id == link.id, ShareLink.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            return LinkUnavailable("this link has already been used")
    elif link.used_at is None:
        # Multi-use links remember their first opening, for the sender's log.
        session.execute(
            update(ShareLink)
            .where(ShareLink.id == link.id, ShareLink.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
    return None


def link_status(vault: Vault, token: str) -> LinkStatus:
    """What the recipient's landing page shows before opening; consumes nothing, not audited."""
    with vault.reading() as session:
        link = session.scalars(
            select(ShareLink).where(ShareLink.token_hash == _token_hash(token))
        ).first()
        if link is None:
            return LinkStatus("missing", None, None, needs_password=False)
        photo = session.get(Photo, link.photo_id)
        return LinkStatus(
            _state(link, photo, vault.clock.now()),
            link.recipient,
            link.expires_at,
            needs_password=link.password_hash is not None,
        )


def revoke_share_link(vault: Vault, *, link_id: str, actor: Actor) -> None:
    """Withdraw a link, as :func:`~skinvault.policy.decide.decide_link_revocation` allows.

    Revoking twice is a no-op.
    """
    with vault.sessions.begin() as session:
        link = session.get(ShareLink, link_id)
        if link is None:
            raise NotFound(f"there is no share link {link_id}")
        obj = f"photo:{link.photo_id}"
        photo = session.get(Photo, link.photo_id)
        patient = session.get(Patient, photo.patient_id) if photo is not None else None
        decision = decide_link_revocation(
            actor,
            sender_id=link.created_by,
            patient_user_id=patient.user_id if patient is not None else None,
        )
        if not decision.allowed:
            reason = decision.reason
            record(
                session,
                clock=vault.clock,
                actor=actor.audit_name,
                action=LINK_REVOKE,
                object=obj,
                outcome=Outcome.DENIED,
                reason=reason,
            )
            denied: AccessDenied | None = AccessDenied(reason)
        else:
            denied = None
            if link.revoked_at is None:
                link.revoked_at = vault.clock.now()
                record(
                    session,
                    clock=vault.clock,
                    actor=actor.audit_name,
                    action=LINK_REVOKE,
                    object=obj,
                    outcome=Outcome.DONE,
                    reason=f"withdrew the link sent to {link.recipient}",
                )
    if denied is not None:
        raise denied


def reissue_share_link(
    vault: Vault, *, link_id: str, actor: Actor, expires_in: timedelta | None = None
) -> NewLink:
    """A new link in place of a locked (or expired) one: same photo, recipient, password
    and single use; a fresh token and lifetime (``expires_in``, by default the old link's).
    The old link is withdrawn. Allowed to whoever may withdraw the old link *and* may share
    the photo now; a withdrawn, used or deleted link cannot be reissued.
    """
    token = base64.urlsafe_b64encode(vault.tokens.secret(_TOKEN_BYTES)).rstrip(b"=").decode()
    with vault.sessions.begin() as session:
        old = session.get(ShareLink, link_id)
        if old is None:
            raise NotFound(f"there is no share link {link_id}")
        obj = f"photo:{old.photo_id}"
        photo = session.get(Photo, old.photo_id)
        patient = session.get(Patient, photo.patient_id) if photo is not None else None
        now = vault.clock.now()
        state = _state(old, photo, now)
        if state not in ("locked", "expired"):
            raise RequestInvalid(
                f"only a locked or expired link can be reissued; this one is {state}"
            )
        assert photo is not None
        may_revoke = decide_link_revocation(
            actor,
            sender_id=old.created_by,
            patient_user_id=patient.user_id if patient is not None else None,
        )
        decision = (
            _decision(
                session,
                vault,
                photo,
                actor=actor,
                access=Access.SHARE,
                purpose=Purpose.CARE,
                break_glass_reason=None,
            )
            if may_revoke.allowed
            else may_revoke
        )
        if not decision.allowed:
            record(
                session,
                clock=vault.clock,
                actor=actor.audit_name,
                action=Action.PHOTO_SHARE,
                object=obj,
                outcome=Outcome.DENIED,
                purpose=Purpose.CARE.value,
                reason=f"reissue of link {old.id} refused: {decision.reason}",
            )
            denied: AccessDenied | None = AccessDenied(decision.reason)
            new = None
        else:
            denied = None
            lifetime = expires_in or (old.expires_at - old.created_at)
            lifetime = min(max(lifetime, MIN_LIFETIME), MAX_LIFETIME)
            link = ShareLink(
                id=vault.tokens.new_id(),
                photo_id=old.photo_id,
                recipient=old.recipient,
                token_hash=_token_hash(token),
                created_at=now,
                created_by=actor.id if actor.role else old.created_by,
                expires_at=now + lifetime,
                single_use=old.single_use,
                used_at=None,
                password_hash=old.password_hash,
                revoked_at=None,
                password_tries=0,
                locked_at=None,
            )
            session.add(link)
            old.revoked_at = now
            session.flush()
            record(
                session,
                clock=vault.clock,
                actor=actor.audit_name,
                action=LINK_REVOKE,
                object=obj,
                outcome=Outcome.DONE,
                reason=f"withdrew the {state} link sent to {old.recipient}, to reissue it",
            )
            record(
                session,
                clock=vault.clock,
                actor=actor.audit_name,
                action=Action.PHOTO_SHARE,
                object=obj,
                outcome=Outcome.DONE,
                purpose=Purpose.CARE.value,
                reason=(
                    f"reissued link {old.id} to {old.recipient} as {link.id},"
                    f" expires {link.expires_at.isoformat()}"
                ),
            )
            new = NewLink(link.id, token, link.expires_at)
    if denied is not None:
        raise denied  # the refusal is committed to the audit log first
    assert new is not None
    return new


def sent_log(vault: Vault, patient_id: str) -> list[SentEntry]:
    """Every link to the patient's photos, whoever sent it, oldest first."""
    with vault.reading() as session:
        if session.get(Patient, patient_id) is None:
            raise NotFound(f"there is no patient {patient_id}")
        now = vault.clock.now()
        rows = session.execute(
            select(ShareLink, Photo)
            .join(Photo, Photo.id == ShareLink.photo_id)
            .where(Photo.patient_id == patient_id)
            .order_by(ShareLink.created_at, ShareLink.id)
        ).all()
        return [
            SentEntry(
                link_id=link.id,
                photo_id=link.photo_id,
                recipient=link.recipient,
                created_at=link.created_at,
                expires_at=link.expires_at,
                state=_state(link, photo, now),
                opened_at=link.used_at,
                wrong_passwords=link.password_tries,
            )
            for link, photo in rows
        ]


__all__ = [
    "MAX_LIFETIME",
    "MIN_LIFETIME",
    "LinkStatus",
    "LinkUnavailable",
    "NewLink",
    "SentEntry",
    "create_share_link",
    "link_status",
    "open_share_link",
    "reissue_share_link",
    "revoke_share_link",
    "sent_log",
]
