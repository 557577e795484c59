"""Limits on failed sign-ins, kept in the database so every worker sees the same count.

Two limits, both on *failures* only (a clinic behind one address signs in freely):

- per client address: more than ``sign_in_failures_per_address`` failures in
  ``sign_in_window_minutes`` and that address must wait (stops spraying many accounts);
- per account name *and* address: ``lockout_failures`` failures lock that pair, for
  ``lockout_minutes``, doubling with every further ``lockout_failures`` failures within a
  day. A stranger elsewhere cannot lock the owner out, and an unknown e-mail is treated
  exactly like a known one, so the answer never tells whether an account exists.

Functions take an open session (the caller owns the transaction) and a ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from skinvault.config import Settings
from skinvault.db.models import SignInFailure

_DAY = timedelta(days=1)
_LONGEST_LOCK = timedelta(hours=24)


@dataclass(frozen=True)
class Limits:
    per_address: int
    window: timedelta
    lockout_failures: int
    lockout: timedelta
    signups_per_address: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            per_address=settings.sign_in_failures_per_address,
            window=timedelta(minutes=settings.sign_in_window_minutes),
            lockout_failures=settings.lockout_failures,
            lockout=timedelta(minutes=settings.lockout_minutes),
            signups_per_address=settings.signups_per_address_per_hour,
        )


def address_key(address: str) -> str:
    return f"addr:{address}"


def account_key(email: str, address: str) -> str:
    return f"acct:{email.strip().lower()}|{address}"


def account_prefix(email: str) -> str:
    return f"acct:{email.strip().lower()}|"


def signup_key(address: str) -> str:
    return f"signup:{address}"


def note_failure(session: Session, key: str, now: datetime) -> None:
    session.add(SignInFailure(key=key, at=now))


def count_since(session: Session, key: str, since: datetime) -> int:
    return int(
        session.scalar(
            select(func.count()).where(SignInFailure.key == key, SignInFailure.at > since)
        )
        or 0
    )


def address_blocked(session: Session, limits: Limits, address: str, now: datetime) -> bool:
    return count_since(session, address_key(address), now - limits.window) >= limits.per_address


def locked_until(
    session: Session, limits: Limits, email: str, address: str, now: datetime
) -> datetime | None:
    """When the (account, address) pair may try again, or None when it may now."""
    key = account_key(email, address)
    times = list(
        session.scalars(
            select(SignInFailure.at)
            .where(SignInFailure.key == key, SignInFailure.at > now - _DAY)
            .order_by(SignInFailure.at)
        )
    )
    runs = len(times) // limits.lockout_failures
    if runs == 0:
        return None
    # Each full run of failures locks from its last failure, twice as long as the run before.
    period = min(limits.lockout * (2 ** (runs - 1)), _LONGEST_LOCK)
    until = times[runs * limits.lockout_failures - 1] + period
    return until if until > now else None


def clear_account(session: Session, email: str, address: str | None = None) -> int:
    """Forget failures of ``email`` (from ``address``, or from everywhere: an unlock)."""
    if address is not None:
        condition = SignInFailure.key == account_key(email, address)
    else:
        condition = SignInFailure.key.startswith(account_prefix(email), autoescape=True)
    result = session.execute(delete(SignInFailure).where(condition))
    return int(getattr(result, "rowcount", 0) or 0)


def is_locked_anywhere(session: Session, limits: Limits, email: str, now: datetime) -> bool:
    """For the user list: is any (this account, some address) pair locked right now?"""
    keys = session.scalars(
        select(SignInFailure.key)
        .where(
            SignInFailure.key.startswith(account_prefix(email), autoescape=True),
            SignInFailure.at > now - _DAY,
        )
        .distinct()
    )
    for key in keys:
        address = key.split("|", 1)[1]
        if locked_until(session, limits, email, address, now) is not None:
            return True
    return False


def forget_old(session: Session, now: datetime) -> int:
    """Drop failures older than a day (nothing reads them any more)."""
    result = session.execute(delete(SignInFailure).where(SignInFailure.at <= now - _DAY))
    return int(getattr(result, "rowcount", 0) or 0)
