"""Opening a share link: the recipient's side, with every guard in front of the bytes.

Owns :func:`open_share_link` and its guards: the per-address limit on refused opens,
the password tries (reserved before the Argon2 check, given back by a right password,
locking the link on the last wrong one), the sender's right to share decided again at
every open, and the consumption of a single-use link by a conditional
``UPDATE … WHERE used_at IS NULL`` in the same transaction as its audit event. The link's
lifecycle (create, status, withdraw, reissue, the sent log) is in
:mod:`skinvault.services.sharing`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from skinvault.actors import Actor, Role
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.db.models import Photo, ShareLink, SignInFailure, User
from skinvault.errors import (
    Busy,
    LinkLocked,
    LinkPasswordWrong,
    LinkRefused,
    LinkUnavailable,
    NotFound,
    SkinvaultError,
    TooManyLinkTries,
)
from skinvault.policy.decide import Access
from skinvault.policy.purposes import Purpose

# The fact-gathering for decide() lives in photos; sharing must decide on exactly the same facts.
from skinvault.services.notifications import Kind, notify_sender
from skinvault.services.passwords import HASHER
from skinvault.services.photo_policy import photo_decision
from skinvault.services.photo_reads import MEDIA_TYPES, PhotoBytes, decrypt_blob
from skinvault.services.photo_store import PHOTO
from skinvault.services.sharing import audit_apart, link_state, refusal_text, token_hash_of

#: How long an open waits for a password try while all of them are being checked.
_TRY_WAIT = 20.0

LINK_OPEN = Action.SHARE_LINK_OPEN


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
                    select(ShareLink).where(ShareLink.token_hash == token_hash_of(token))
                ).first()
                if link is None:
                    refusal, count = NotFound("this link does not exist"), True
                else:
                    who, obj = f"link:{link.id} {link.recipient}", f"photo:{link.photo_id}"
                    photo = session.get(Photo, link.photo_id)
                    state = link_state(link, photo, now)
                    if state == "locked":
                        refusal = LinkLocked(_locked_message(limit))
                    elif state != "ok":
                        refusal = LinkUnavailable(refusal_text(link, state))
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
            data = decrypt_blob(
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
            state = link_state(current, photo, vault.clock.now())
            late: SkinvaultError | None
            if state == "locked":
                late = LinkLocked(_locked_message(limit))
            elif state != "ok":
                late = LinkUnavailable(refusal_text(current, state))
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
        audit_apart(
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
    decision = photo_decision(
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


__all__ = ["open_share_link"]
