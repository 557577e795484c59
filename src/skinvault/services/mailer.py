"""E-mail through the configured relay: queued in the database, sent in the background.

    >>> queue(session, vault, to="ann@example.org", mail=notice_mail(vault.settings))
    ...                                                                  # doctest: +SKIP
    >>> deliver_due(vault)            # the background worker does this  # doctest: +SKIP
    Delivery(sent=1, retrying=0, given_up=0)

Nothing here is called while a request waits on the relay: :func:`queue` only adds an
outbox row in the caller's transaction, and :func:`deliver_due` (run by
:class:`skinvault.services.notice_sweep.NotificationWorker`) talks SMTP outside any
transaction. A refused or silent relay costs the request nothing; the row waits
``mail_retry_seconds`` (doubling) and is tried again, up to ``mail_attempts`` times, and
survives restarts because it is a row. Bodies are sealed like a photo's note (a share
link's e-mail carries its token) and erased once sent or given up.

What the texts say is fixed here and nowhere else: a notice says only that there is
something new in the portal, with the sign-in address — never a body site, diagnosis,
photo, note, clinician's name or share-link token.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from skinvault.bootstrap import Vault
from skinvault.config import Settings
from skinvault.crypto.envelope import open_blob, pack, seal, unpack
from skinvault.db.models import MailOutbox
from skinvault.errors import ConfigError, SkinvaultError

log = logging.getLogger("skinvault.mail")

#: Where ``skinvault serve`` listens when no public address is configured (web.links).
DEFAULT_BASE = "http://127.0.0.1:8000"
MAIL_BODY = "mail-body"  # the envelope kind outbox bodies are sealed as
#: An attempt in progress holds its row this long; a worker that died mid-send frees it.
_LEASE = timedelta(minutes=5)
_BATCH = 50
_MAX_ERROR = 400


@dataclass(frozen=True)
class Mail:
    subject: str
    body: str


@dataclass(frozen=True)
class Delivery:
    """What one :func:`deliver_due` round did."""

    sent: int = 0
    retrying: int = 0
    given_up: int = 0


def base_url(settings: Settings) -> str:
    return (settings.public_base_url or DEFAULT_BASE).rstrip("/")


def notice_mail(settings: Settings, count: int = 1) -> Mail:
    """The only notice text there is: "something new", a count for a digest, the sign-in
    address. Nothing about what happened, to whom, or where on the body."""
    what = (
        "There is something new for you in the portal."
        if count == 1
        else f"There are {count} new things for you in the portal."
    )
    return Mail(
        subject="Something new in the portal",
        body=(
            f"Hello,\n\n{what} Sign in to see it:\n\n{base_url(settings)}/login\n\n"
            "This e-mail holds no details on purpose. You can choose which notices are"
            " e-mailed, or turn them off, on the Notifications page after signing in.\n"
        ),
    )


def share_link_mail(sender: str, url: str) -> Mail:
    """A share link for its recipient: the link and who sent it, nothing else. A link
    password is never in it (skinvault keeps only the password's hash)."""
    return Mail(
        subject=f"{sender} sent you a link",
        body=(
            f"Hello,\n\n{sender} sent you a link:\n\n{url}\n\n"
            f"If the link asks for a password, {sender} will give it to you another way;"
            " it is never sent by e-mail with the link.\n"
        ),
    )


def queue(session: Session, vault: Vault, *, to: str, mail: Mail) -> str:
    """Add ``mail`` for ``to`` to the outbox, in the caller's transaction; returns its id."""
    row_id = vault.tokens.new_id()
    sealed = seal(
        mail.body.encode("utf-8"), object_id=row_id, kind=MAIL_BODY, kek=vault.keys.current()
    )
    now = vault.clock.now()
    session.add(
        MailOutbox(
            id=row_id,
            to_address=to[:320],
            subject=mail.subject[:200],
            body_enc=pack(sealed),
            created_at=now,
            attempts=0,
            next_attempt_at=now,
        )
    )
    return row_id


def smtp_password(settings: Settings) -> str:
    """The relay password: from smtp_password_file (first line) if set, else the setting
    (usually SKINVAULT_SMTP_PASSWORD). Read at each attempt so a rotated secret is used."""
    if settings.smtp_password_file is not None:
        try:
            text = settings.smtp_password_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot read smtp_password_file {settings.smtp_password_file} ({exc.strerror})"
            ) from exc
        return text.splitlines()[0].strip() if text.strip() else ""
    return settings.smtp_password.get_secret_value()


def _tls(settings: Settings) -> ssl.SSLContext:
    ca = str(settings.smtp_ca_file) if settings.smtp_ca_file else None
    return ssl.create_default_context(cafile=ca)


def send(settings: Settings, *, to: str, subject: str, body: str) -> None:
    """One message through the relay now; raises ``OSError``/``smtplib.SMTPException``."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=settings.mail_from.rpartition("@")[2] or None)
    message.set_content(body)
    timeout = settings.smtp_timeout_seconds
    client: smtplib.SMTP
    if settings.smtp_security == "tls":
        client = smtplib.SMTP_SSL(
            settings.smtp_host, settings.smtp_port, timeout=timeout, context=_tls(settings)
        )
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    with client:
        if settings.smtp_security == "starttls":
            client.starttls(context=_tls(settings))
        if settings.smtp_username:
            client.login(settings.smtp_username, smtp_password(settings))
        client.send_message(message)


def _claim(vault: Vault) -> list[tuple[str, str, str, str]]:
    """Due rows, each held for one attempt (id, to, subject, body); several workers never
    take the same row (SQLite: one writer at a time; PostgreSQL: SKIP LOCKED)."""
    now = vault.clock.now()
    taken: list[tuple[str, str, str, str]] = []
    with vault.sessions.begin() as session:
        rows = session.scalars(
            select(MailOutbox)
            .where(
                MailOutbox.sent_at.is_(None),
                MailOutbox.failed_at.is_(None),
                or_(MailOutbox.next_attempt_at.is_(None), MailOutbox.next_attempt_at <= now),
            )
            .order_by(MailOutbox.created_at)
            .limit(_BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            row.attempts += 1
            row.next_attempt_at = now + _LEASE
            if row.body_enc is None:
                row.failed_at, row.last_error = now, "no body"
                continue
            try:
                sealed = unpack(row.body_enc)
                body = open_blob(
                    sealed.blob,
                    sealed.wrapped_dek,
                    object_id=row.id,
                    kind=MAIL_BODY,
                    keys=vault.keys,
                ).decode("utf-8")
            except (SkinvaultError, UnicodeDecodeError) as exc:
                # e.g. its key was retired meanwhile: this one is lost, the others still go
                row.failed_at, row.body_enc, row.last_error = now, None, str(exc)[:_MAX_ERROR]
                log.error("e-mail %s cannot be opened, given up: %s", row.id, exc)
                continue
            taken.append((row.id, row.to_address, row.subject, body))
    return taken


def _retry_after(settings: Settings, attempts: int) -> timedelta:
    return timedelta(seconds=settings.mail_retry_seconds * 2 ** max(0, attempts - 1))


def deliver_due(vault: Vault) -> Delivery:
    """Send every due e-mail once; failures wait and are retried, never raised."""
    settings = vault.settings
    if not settings.mail_enabled:
        return Delivery()
    sent = retrying = given_up = 0
    for row_id, to, subject, body in _claim(vault):
        error = ""
        try:
            send(settings, to=to, subject=subject, body=body)
        except (OSError, smtplib.SMTPException, ConfigError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]
        now = vault.clock.now()
        with vault.sessions.begin() as session:
            row = session.get(MailOutbox, row_id)
            if row is None:
                continue
            if not error:
                row.sent_at, row.body_enc, row.next_attempt_at = now, None, None
                row.last_error = None
                sent += 1
            elif row.attempts >= settings.mail_attempts:
                row.failed_at, row.body_enc, row.next_attempt_at = now, None, None
                row.last_error = error
                given_up += 1
                log.error("e-mail %s given up after %d attempts: %s", row_id, row.attempts, error)
            else:
                row.next_attempt_at = now + _retry_after(settings, row.attempts)
                row.last_error = error
                retrying += 1
                log.warning("e-mail %s not sent (attempt %d): %s", row_id, row.attempts, error)
    return Delivery(sent, retrying, given_up)


__all__ = [
    "Delivery",
    "Mail",
    "base_url",
    "deliver_due",
    "notice_mail",
    "queue",
    "send",
    "share_link_mail",
    "smtp_password",
]
