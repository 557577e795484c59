"""The TOTP second factor: enrolment (secret, URI and QR code), confirmation, and the
code check used at sign-in.

>>> enrolment = begin_totp_enrolment(vault, user_id)               # doctest: +SKIP
>>> confirm_totp(vault, user_id, "123456")                          # doctest: +SKIP
True

The secret is sealed with the vault's key-encryption key (kind ``"totp"``, bound to the
user id; key rotation re-wraps it too) and never stored as it is. A code accepted at
sign-in never works again.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

import pyotp
import segno

from skinvault.audit.actions import Action, Outcome
from skinvault.bootstrap import Vault
from skinvault.crypto.envelope import open_blob, pack, seal, unpack
from skinvault.db.models import User
from skinvault.errors import AccessDenied, NotFound
from skinvault.services.credentials import _actor_of, _audit, _user

TOTP_ENROL = Action.AUTH_TOTP_ENROL
TOTP_CONFIRM = Action.AUTH_TOTP_CONFIRM
TOTP_ISSUER = "skinvault"
#: Codes of the previous and next 30-second step are accepted too (clock drift).
TOTP_VALID_WINDOW = 1
#: Envelope kind of sealed TOTP secrets (key rotation re-wraps them too).
TOTP_KIND = "totp"


@dataclass(frozen=True)
class TotpEnrolment:
    secret: str
    uri: str
    qr_svg: str

    def __repr__(self) -> str:  # keep the secret out of log lines
        return f"TotpEnrolment(uri=<{len(self.uri)} chars>)"


def _seal_totp_secret(vault: Vault, user_id: str, secret: str) -> bytes:
    sealed = seal(
        secret.encode("ascii"), object_id=user_id, kind=TOTP_KIND, kek=vault.keys.current()
    )
    return pack(sealed)


def _open_totp_secret(vault: Vault, user_id: str, stored: bytes) -> str:
    sealed = unpack(stored)
    secret = open_blob(
        sealed.blob, sealed.wrapped_dek, object_id=user_id, kind=TOTP_KIND, keys=vault.keys
    )
    return secret.decode("ascii")


def _totp_check(
    vault: Vault, user: User, code: str | None, now: datetime, *, consume: bool = True
) -> str:
    """"ok", "replayed" (valid but already used) or "wrong". A code accepted at sign-in
    (``consume``) never works again."""
    if not code or user.totp_secret_enc is None:
        return "wrong"
    secret = _open_totp_secret(vault, user.id, user.totp_secret_enc)
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - TOTP_VALID_WINDOW, current + TOTP_VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code.strip()[:10]):
            if user.totp_last_step is not None and step <= user.totp_last_step:
                return "replayed"  # this code (or a later one) was already used
            if consume:
                user.totp_last_step = step
            return "ok"
    return "wrong"


def _totp_ok(
    vault: Vault, user: User, code: str | None, now: datetime, *, consume: bool = True
) -> bool:
    return _totp_check(vault, user, code, now, consume=consume) == "ok"


def begin_totp_enrolment(vault: Vault, user_id: str) -> TotpEnrolment:
    """A new TOTP secret for ``user_id``, stored sealed and pending until :func:`confirm_totp`.

    Starting again replaces a pending secret; a confirmed one is never replaced here
    (that would let whoever holds a password alone swap the second factor).
    """
    secret = pyotp.random_base32()
    with vault.sessions.begin() as session:
        user = _user(session, user_id, for_update=True)
        if user.totp_confirmed and user.totp_secret_enc is not None:
            raise AccessDenied("two-step sign-in is already set up for this account")
        user.totp_secret_enc = _seal_totp_secret(vault, user.id, secret)
        user.totp_confirmed = False
        _audit(
            session,
            vault,
            actor=_actor_of(user).audit_name,
            action=TOTP_ENROL,
            object=f"user:{user.id}",
            outcome=Outcome.DONE,
            reason="secret issued, awaiting confirmation",
        )
        uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)
    qr_svg = segno.make(uri, error="m").svg_inline(scale=4)
    return TotpEnrolment(secret=secret, uri=uri, qr_svg=str(qr_svg))


def confirm_totp(vault: Vault, user_id: str, code: str) -> bool:
    """True, and the pending secret becomes required at sign-in, when ``code`` is valid now."""
    now = vault.clock.now()
    with vault.sessions.begin() as session:
        user = _user(session, user_id, for_update=True)
        if user.totp_secret_enc is None:
            raise NotFound("no two-step sign-in setup is pending for this account")
        # Confirming proves the app works; the code is not spent, so signing in right after works.
        valid = _totp_ok(vault, user, code, now, consume=False)
        if valid:
            user.totp_confirmed = True
        _audit(
            session,
            vault,
            actor=_actor_of(user).audit_name,
            action=TOTP_CONFIRM,
            object=f"user:{user.id}",
            outcome=Outcome.DONE if valid else Outcome.FAILED,
            reason=None if valid else "wrong code",
        )
    return valid


def confirm_pending_totp(vault: Vault, user: User, code: str, now: datetime) -> bool:
    """Inside the caller's transaction: confirm the user's pending TOTP secret with ``code``
    (the code is spent, so it cannot also be used to sign in)."""
    if user.totp_secret_enc is None or user.totp_confirmed:
        return False
    user.totp_last_step = None
    if not _totp_ok(vault, user, code, now):
        return False
    user.totp_confirmed = True
    return True


__all__ = [
    "TotpEnrolment",
    "begin_totp_enrolment",
    "confirm_totp",
]
