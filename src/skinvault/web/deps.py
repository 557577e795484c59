"""Who is calling: a bearer token (API clients) or a session cookie (the portal).

A cookie-authenticated request that changes something must also carry the
session's CSRF token (header ``X-CSRF-Token`` or form field ``csrf``). A session
still waiting for its second factor is refused here (:class:`SecondFactorPending`):
only the enrolment page and sign-out accept it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from skinvault.actors import Actor
from skinvault.bootstrap import Vault
from skinvault.errors import AccessDenied, AuthenticationFailed, SecondFactorPending
from skinvault.services import api_tokens, web_sessions

SESSION_COOKIE = "skinvault_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PENDING_MESSAGE = (
    "two-step sign-in is not set up for this account yet: open the set-up link your"
    " administrator gave you, then sign in again"
)


def client_address(request: Request) -> str:
    """The client's address: the socket peer, or what a trusted proxy forwarded
    (uvicorn applies X-Forwarded-For only from ``trusted_proxies``)."""
    return request.client.host if request.client else "?"


@dataclass(frozen=True)
class Caller:
    actor: Actor
    csrf_token: str | None  # None for bearer tokens, which are not sent by browsers on their own
    scopes: frozenset[str] = api_tokens.API_SCOPES  # a portal session may do all a token may


def vault_of(request: Request) -> Vault:
    vault = request.app.state.vault
    assert isinstance(vault, Vault)
    return vault


def caller(request: Request) -> Caller:
    """The authenticated caller, or :class:`AuthenticationFailed` (answered as 401)."""
    vault = vault_of(request)
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        actor, scopes = api_tokens.token_holder(vault, header[7:].strip())
        request.state.actor_id = actor.id  # for the request log (an opaque id, no name)
        return Caller(actor, None, scopes)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        info = web_sessions.actor_for_session(vault, cookie)
        if info.second_factor_pending:
            raise SecondFactorPending(PENDING_MESSAGE)
        if request.method not in SAFE_METHODS:
            sent = request.headers.get("x-csrf-token")
            if sent != info.csrf_token:
                raise AuthenticationFailed(
                    "the form is out of date (missing or wrong CSRF token); reload the page"
                )
        request.state.actor_id = info.actor.id
        return Caller(info.actor, info.csrf_token)
    raise AuthenticationFailed("sign in, or send a bearer token from /api/v1/auth/token")


def api_actor(request: Request) -> Actor:
    return caller(request).actor


def scoped(scope: str) -> Callable[[Request], Actor]:
    """A dependency: the caller, if their token carries ``scope`` (answered 403 otherwise)."""
    assert scope in api_tokens.API_SCOPES, scope

    def dependency(request: Request) -> Actor:
        who = caller(request)
        if scope not in who.scopes:
            raise AccessDenied(f"this access token was not issued for “{scope}”")
        return who.actor

    return dependency
