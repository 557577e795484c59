"""Who is calling (web/deps.py), checked request by request against a real vault: a bearer
token needs no CSRF token but only carries its scopes; a cookie session needs its own CSRF
token on every method that can change something; a session waiting for its second factor
gets nowhere; nobody else gets in. One SQLite vault (deps.py has no SQL of its own).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from starlette.requests import Request

from skinvault.actors import Actor, Role
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import load_settings
from skinvault.errors import AccessDenied, AuthenticationFailed, SecondFactorPending
from skinvault.services import admin, api_tokens, web_sessions
from skinvault.web.deps import SESSION_COOKIE, api_actor, caller, client_address, scoped

OPERATOR = Actor.system("test")
WRITES = ["POST", "PUT", "PATCH", "DELETE"]


@dataclass
class Callers:
    vault: Vault
    ann: Actor
    session: web_sessions.NewSession
    other_session: web_sessions.NewSession
    pending: web_sessions.NewSession
    read_token: str
    full_token: str


@pytest.fixture(scope="module")
def who(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callers]:
    # One vault for the module (SQLite): every test only reads it, and sessions and tokens
    # cost a password hash each to set up.
    data = tmp_path_factory.mktemp("deps")
    vault = bootstrap(load_settings(data_dir=data, database_url=f"sqlite:///{data}/v.db"),
                      create=True)  # fmt: skip
    people = []
    for email, name in (("ann@example.org", "Ann"), ("bob@example.org", "Bob")):
        made = admin.create_user(vault, role=Role.PATIENT, email=email, name=name,
                                 password="a long passphrase", actor=OPERATOR)  # fmt: skip
        people.append(Actor(made.user_id, Role.PATIENT, name))
    ann, bob = people
    yield Callers(
        vault,
        ann,
        web_sessions.start_session(vault, ann),
        web_sessions.start_session(vault, bob),
        web_sessions.start_session(vault, ann, second_factor_pending=True),
        api_tokens.issue_api_token(vault, actor=ann, scopes={"photos:read"}).token,
        api_tokens.issue_api_token(vault, actor=ann).token,
    )
    vault.close()


def request(
    vault: Vault,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    cookie: str | None = None,
    client: tuple[str, int] | None = ("203.0.113.7", 5000),
) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if cookie is not None:
        raw.append((b"cookie", f"{SESSION_COOKIE}={cookie}".encode()))
    app = SimpleNamespace(state=SimpleNamespace(vault=vault))
    scope = {"type": "http", "method": method, "path": "/api/v1/x", "query_string": b"",
             "headers": raw, "app": app, "client": client}  # fmt: skip
    return Request(scope)


def test_a_bearer_token_identifies_its_holder_with_its_scopes_and_needs_no_csrf(
    who: Callers,
) -> None:
    for header in (f"Bearer {who.read_token}", f"bearer {who.read_token}",
                   f"BEARER   {who.read_token}  "):  # fmt: skip
        for method in ["GET", *WRITES]:
            req = request(who.vault, method, {"Authorization": header})
            got = caller(req)
            assert (got.actor.id, got.csrf_token, got.scopes) == (
                who.ann.id, None, frozenset({"photos:read"}),
            )  # fmt: skip
            assert req.state.actor_id == who.ann.id  # the request log names the holder


def test_a_wrong_or_malformed_bearer_token_is_refused(who: Callers) -> None:
    for header in (f"Bearer {who.read_token}x", f"Bearerx {who.read_token}", "Bearer "):
        with pytest.raises(AuthenticationFailed):
            caller(request(who.vault, "GET", {"Authorization": header}))


def test_a_cookie_session_reads_without_a_csrf_token(who: Callers) -> None:
    for method in ("GET", "HEAD", "OPTIONS"):
        req = request(who.vault, method, cookie=who.session.cookie_value)
        got = caller(req)
        assert (got.actor.id, got.csrf_token) == (who.ann.id, who.session.csrf_token)
        assert got.scopes == api_tokens.API_SCOPES  # a portal session may do all a token may
        assert req.state.actor_id == who.ann.id


@pytest.mark.parametrize("method", WRITES)
def test_a_cookie_write_needs_the_sessions_own_csrf_token(who: Callers, method: str) -> None:
    cookie = who.session.cookie_value
    for sent in ({}, {"X-CSRF-Token": ""}, {"X-CSRF-Token": "0" * 64},
                 {"X-CSRF-Token": who.other_session.csrf_token},
                 {"X-CSRF-Token": who.session.csrf_token + " "}):  # fmt: skip
        with pytest.raises(AuthenticationFailed, match="missing or wrong CSRF token"):
            caller(request(who.vault, method, sent, cookie=cookie))
    ok = caller(request(who.vault, method, {"X-CSRF-Token": who.session.csrf_token}, cookie))
    assert ok.actor.id == who.ann.id


def test_a_session_waiting_for_its_second_factor_gets_nowhere(who: Callers) -> None:
    for method in ("GET", "POST"):
        headers = {"X-CSRF-Token": who.pending.csrf_token}
        with pytest.raises(SecondFactorPending, match="two-step sign-in is not set up"):
            caller(request(who.vault, method, headers, cookie=who.pending.cookie_value))


def test_without_a_token_or_a_valid_session_nobody_gets_in(who: Callers) -> None:
    with pytest.raises(AuthenticationFailed, match="sign in, or send a bearer token"):
        caller(request(who.vault))
    with pytest.raises(AuthenticationFailed, match="sign in, or send a bearer token"):
        caller(request(who.vault, cookie=""))
    with pytest.raises(AuthenticationFailed):
        caller(request(who.vault, cookie="not-a-session"))


def test_a_scoped_route_needs_the_scope_on_the_token(who: Callers) -> None:
    read, share = scoped("photos:read"), scoped("share")
    assert read(request(who.vault, headers={"Authorization": f"Bearer {who.read_token}"})) == (
        api_actor(request(who.vault, headers={"Authorization": f"Bearer {who.read_token}"}))
    )
    with pytest.raises(AccessDenied, match="this access token was not issued for “share”"):
        share(request(who.vault, "POST", {"Authorization": f"Bearer {who.read_token}"}))
    assert share(request(who.vault, "POST", {"Authorization": f"Bearer {who.full_token}"})).id == (
        who.ann.id
    )
    # A portal session may do everything a token may, but still needs its CSRF token.
    cookie = who.session.cookie_value
    assert share(request(who.vault, "POST", {"X-CSRF-Token": who.session.csrf_token}, cookie))
    with pytest.raises(AuthenticationFailed):
        share(request(who.vault, "POST", cookie=cookie))
    with pytest.raises(AssertionError):
        scoped("everything")


def test_the_client_address_is_the_peer_or_a_placeholder(who: Callers) -> None:
    assert client_address(request(who.vault)) == "203.0.113.7"
    assert client_address(request(who.vault, client=None)) == "?"
