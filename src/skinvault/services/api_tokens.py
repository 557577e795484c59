"""API bearer tokens: issuing (with scopes and a lifetime), looking up who holds one,
and revoking.

>>> issued = issue_api_token(vault, actor=lee, scopes={"photos:read"})  # doctest: +SKIP
>>> actor_for_api_token(vault, issued.token)                        # doctest: +SKIP
Actor(id='…', role=<Role.CLINICIAN: 'clinician'>, name='lee')

A token is shown once; only its SHA-256 is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from skinvault.actors import Actor
from skinvault.audit.actions import Action, Outcome
from skinvault.bootstrap import Vault
from skinvault.db.models import ApiToken, User
from skinvault.errors import AccessDenied, AuthenticationFailed, ConfigError, NotFound
from skinvault.policy.decide import decide_token_revocation
from skinvault.services.credentials import _actor_of, _audit, _sha256, _urlsafe, _user

TOKEN_ISSUE = Action.AUTH_TOKEN_ISSUE
TOKEN_REVOKE = Action.AUTH_TOKEN_REVOKE
API_TOKEN_PREFIX = "svk_"
#: What an API token may be used for; a token carries a subset (all by default).
API_SCOPES = frozenset({"photos:read", "photos:write", "share", "consents", "history", "deletion"})
DEFAULT_API_TTL = timedelta(hours=1)
INVALID_TOKEN = "the access token is invalid or expired"


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int  # seconds
    token_id: str

    def __repr__(self) -> str:
        return f"IssuedToken(token_id={self.token_id!r}, expires_in={self.expires_in})"


def issue_api_token(
    vault: Vault,
    *,
    actor: Actor,
    scopes: frozenset[str] | set[str] = API_SCOPES,
    ttl: timedelta = DEFAULT_API_TTL,
) -> IssuedToken:
    """A bearer token for ``actor``: shown once, only its SHA-256 is kept."""
    if ttl <= timedelta(0):
        raise ConfigError("an API token must live for a positive time")
    unknown = set(scopes) - API_SCOPES
    if unknown or not scopes:
        raise ConfigError(
            f"unknown or missing scopes {sorted(unknown)}; choose from {sorted(API_SCOPES)}"
        )
    token = API_TOKEN_PREFIX + _urlsafe(vault.tokens.secret(32))
    now = vault.clock.now()
    with vault.sessions.begin() as session:
        user = _user(session, actor.id)
        if user.disabled:
            raise AccessDenied("this account is disabled")
        row = ApiToken(
            id=vault.tokens.new_id(),
            user_id=user.id,
            token_hash=_sha256(token),
            scopes=",".join(sorted(scopes)),
            created_at=now,
            expires_at=now + ttl,
            revoked_at=None,
        )
        session.add(row)
        _audit(
            session,
            vault,
            actor=actor.audit_name,
            action=TOKEN_ISSUE,
            object=f"api-token:{row.id}",
            outcome=Outcome.DONE,
            reason=f"scopes {row.scopes}; expires {row.expires_at:%Y-%m-%d %H:%M} UTC",
        )
    return IssuedToken(token, int(ttl.total_seconds()), row.id)


def actor_for_api_token(vault: Vault, token: str) -> Actor:
    """Who holds ``token``; an unknown, expired or revoked token (or a disabled user's)
    raises :class:`AuthenticationFailed`."""
    return token_holder(vault, token)[0]


def token_holder(vault: Vault, token: str) -> tuple[Actor, frozenset[str]]:
    """Who holds ``token`` and the scopes it was issued with."""
    if not token.startswith(API_TOKEN_PREFIX):
        raise AuthenticationFailed(INVALID_TOKEN)
    now = vault.clock.now()
    with vault.reading() as session:
        row = session.execute(
            select(ApiToken, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == _sha256(token))
        ).first()
        if row is None:
            raise AuthenticationFailed(INVALID_TOKEN)
        api_token, user = row[0], row[1]
        if api_token.revoked_at is not None or api_token.expires_at <= now or user.disabled:
            raise AuthenticationFailed(INVALID_TOKEN)
        return _actor_of(user), frozenset(x for x in api_token.scopes.split(",") if x)


def revoke_api_token(vault: Vault, *, actor: Actor, token_id: str) -> None:
    """End a token now. Its owner or an administrator may; revoking twice is not an error."""
    now = vault.clock.now()
    with vault.sessions.begin() as session:
        row = session.get(ApiToken, token_id, with_for_update=True)
        if row is None:
            raise NotFound(f"there is no API token {token_id}")
        decision = decide_token_revocation(actor, owner_id=row.user_id)
        if not decision.allowed:
            raise AccessDenied(decision.reason)
        if row.revoked_at is None:
            row.revoked_at = now
        _audit(
            session,
            vault,
            actor=actor.audit_name,
            action=TOKEN_REVOKE,
            object=f"api-token:{row.id}",
            outcome=Outcome.DONE,
        )


__all__ = [
    "API_TOKEN_PREFIX",
    "IssuedToken",
    "actor_for_api_token",
    "issue_api_token",
    "revoke_api_token",
]
