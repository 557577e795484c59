"""The account life cycle on real SQLite and PostgreSQL: create with a set-up link,
disable a leaver, unlock, reset a password or a lost authenticator, change one's own
password. Every action is audited with who did it; only administrators may act."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest

from skinvault.actors import Actor, Role
from skinvault.audit.log import tail
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import load_settings
from skinvault.errors import AccessDenied, AuthenticationFailed, ConfigError
from skinvault.services import api_tokens, signin, users, web_sessions
from tests.integration.test_accounts import MovableClock

PASSWORD = "correct horse battery"
ADDRESS = "192.0.2.10"


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def vault(database_url: str, tmp_path: Path, clock: MovableClock) -> Iterator[Vault]:
    v = bootstrap(
        load_settings(data_dir=tmp_path / "d", database_url=database_url), create=True, clock=clock
    )
    yield v
    v.close()


def _admin(vault: Vault) -> Actor:
    made = users.create_account(
        vault, actor=Actor.system("setup"), role=Role.ADMIN, email="root@clinic.example"
    )
    secret = users.begin_link_enrolment(vault, made.link_token).secret
    return users.use_link(
        vault, made.link_token, password=PASSWORD, code=pyotp.TOTP(secret).at(vault.clock.now())
    )


def _set_up(vault: Vault, admin: Actor, role: Role, email: str) -> tuple[str, str | None]:
    made = users.create_account(vault, actor=admin, role=role, email=email, name=email[:3])
    info = users.link_info(vault, made.link_token)
    secret = users.begin_link_enrolment(vault, made.link_token).secret if info.needs_totp else None
    code = pyotp.TOTP(secret).at(vault.clock.now()) if secret else None
    users.use_link(vault, made.link_token, password=PASSWORD, code=code)
    return made.user_id, secret


def _sign_in(vault: Vault, email: str, secret: str | None, clock: MovableClock) -> Actor:
    clock.advance(seconds=30)  # a fresh TOTP step each time
    code = pyotp.TOTP(secret).at(clock.now()) if secret else None
    return signin.authenticate(
        vault, email=email, password=PASSWORD, totp=code, address=ADDRESS
    ).actor


def _actions(vault: Vault) -> list[tuple[str, str]]:
    with vault.reading() as session:
        return [(e.action, e.actor) for e in tail(session, 1000)]


def test_a_new_account_has_no_password_until_its_link_is_used(
    vault: Vault, clock: MovableClock
) -> None:
    admin = _admin(vault)
    made = users.create_account(vault, actor=admin, role=Role.STAFF, email="sam@clinic.example")
    with pytest.raises(AuthenticationFailed):
        signin.authenticate(vault, email="sam@clinic.example", password="", totp=None)
    info = users.link_info(vault, made.link_token)
    assert (info.kind, info.needs_password, info.needs_totp) == (users.LinkKind.SETUP, True, True)
    secret = users.begin_link_enrolment(vault, made.link_token).secret
    with pytest.raises(AuthenticationFailed, match="did not match"):
        users.use_link(vault, made.link_token, password=PASSWORD, code="123456")
    users.use_link(
        vault, made.link_token, password=PASSWORD, code=pyotp.TOTP(secret).at(clock.now())
    )
    with pytest.raises(AuthenticationFailed, match="invalid, expired or already used"):
        users.link_info(vault, made.link_token)
    assert _sign_in(vault, "sam@clinic.example", secret, clock).role is Role.STAFF
    assert ("account-link:issue", admin.audit_name) in _actions(vault)


def test_a_link_expires(vault: Vault, clock: MovableClock) -> None:
    admin = _admin(vault)
    made = users.create_account(vault, actor=admin, role=Role.PATIENT, email="p@example.org")
    clock.advance(hours=vault.settings.account_link_hours, seconds=1)
    with pytest.raises(AuthenticationFailed, match="expired"):
        users.use_link(vault, made.link_token, password=PASSWORD)


def test_disabling_a_leaver_ends_their_sessions_and_tokens_at_once(
    vault: Vault, clock: MovableClock
) -> None:
    admin = _admin(vault)
    user_id, secret = _set_up(vault, admin, Role.CLINICIAN, "lee@clinic.example")
    lee = _sign_in(vault, "lee@clinic.example", secret, clock)
    web = web_sessions.start_session(vault, lee)
    token = api_tokens.issue_api_token(vault, actor=lee)
    users.set_disabled(vault, actor=admin, user_id=user_id, disabled=True)
    with pytest.raises(AuthenticationFailed):
        web_sessions.actor_for_session(vault, web.cookie_value)
    with pytest.raises(AuthenticationFailed):
        api_tokens.actor_for_api_token(vault, token.token)
    with pytest.raises(AuthenticationFailed):
        _sign_in(vault, "lee@clinic.example", secret, clock)
    assert [r.disabled for r in users.list_users(vault, actor=admin) if r.id == user_id] == [True]
    users.set_disabled(vault, actor=admin, user_id=user_id, disabled=False)
    assert _sign_in(vault, "lee@clinic.example", secret, clock).id == user_id
    assert ("user:disable", admin.audit_name) in _actions(vault)


def test_unlock_forgets_failures_from_every_address(vault: Vault, clock: MovableClock) -> None:
    admin = _admin(vault)
    user_id, _ = _set_up(vault, admin, Role.PATIENT, "pat@example.org")
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            signin.authenticate(
                vault, email="pat@example.org", password="wrong" * 3, totp=None, address=ADDRESS
            )
    assert [r.locked for r in users.list_users(vault, actor=admin) if r.id == user_id] == [True]
    assert users.unlock(vault, actor=admin, user_id=user_id) >= 5
    assert _sign_in(vault, "pat@example.org", None, clock).id == user_id


def test_a_password_reset_link_lets_the_owner_choose_and_ends_other_sessions(
    vault: Vault, clock: MovableClock
) -> None:
    admin = _admin(vault)
    user_id, _ = _set_up(vault, admin, Role.PATIENT, "pat@example.org")
    pat = _sign_in(vault, "pat@example.org", None, clock)
    old_session = web_sessions.start_session(vault, pat)
    token = users.reset_password(vault, actor=admin, user_id=user_id)
    assert _sign_in(vault, "pat@example.org", None, clock)  # the old one works until then
    users.use_link(vault, token, password="a brand new passphrase")
    with pytest.raises(AuthenticationFailed):
        _sign_in(vault, "pat@example.org", None, clock)
    with pytest.raises(AuthenticationFailed):
        web_sessions.actor_for_session(vault, old_session.cookie_value)
    assert signin.authenticate(
        vault, email="pat@example.org", password="a brand new passphrase", totp=None
    )


def test_a_lost_authenticator_is_reset_and_re_enrolled_with_the_password(
    vault: Vault, clock: MovableClock
) -> None:
    admin = _admin(vault)
    user_id, secret = _set_up(vault, admin, Role.CLINICIAN, "lee@clinic.example")
    lee = _sign_in(vault, "lee@clinic.example", secret, clock)
    web = web_sessions.start_session(vault, lee)
    token = users.reset_second_factor(vault, actor=admin, user_id=user_id)
    with pytest.raises(AuthenticationFailed):
        web_sessions.actor_for_session(vault, web.cookie_value)
    pending = signin.authenticate(
        vault, email="lee@clinic.example", password=PASSWORD, totp=None, address=ADDRESS
    )
    assert pending.needs_totp_enrolment  # a password alone: enrolment-only session
    info = users.link_info(vault, token)
    assert info.asks_current_password and info.needs_totp and not info.needs_password
    fresh = users.begin_link_enrolment(vault, token).secret
    with pytest.raises(AuthenticationFailed, match="current password"):
        users.use_link(
            vault, token, current_password="not it at all", code=pyotp.TOTP(fresh).at(clock.now())
        )
    users.use_link(
        vault, token, current_password=PASSWORD, code=pyotp.TOTP(fresh).at(clock.now())
    )
    assert _sign_in(vault, "lee@clinic.example", fresh, clock).id == user_id


def test_changing_ones_password_keeps_this_session_and_ends_the_others(
    vault: Vault, clock: MovableClock
) -> None:
    admin = _admin(vault)
    _, _ = _set_up(vault, admin, Role.PATIENT, "pat@example.org")
    pat = _sign_in(vault, "pat@example.org", None, clock)
    here, there = web_sessions.start_session(vault, pat), web_sessions.start_session(vault, pat)
    with pytest.raises(ConfigError, match="most common"):
        signin.change_password(vault, actor=pat, old=PASSWORD, new="password1234")
    signin.change_password(
        vault, actor=pat, old=PASSWORD, new="another long phrase", keep_session=here.session_id
    )
    assert web_sessions.actor_for_session(vault, here.cookie_value).actor.id == pat.id
    with pytest.raises(AuthenticationFailed):
        web_sessions.actor_for_session(vault, there.cookie_value)


def test_only_administrators_manage_accounts_and_not_their_own_door(vault: Vault) -> None:
    admin = _admin(vault)
    user_id, _ = _set_up(vault, admin, Role.CLINICIAN, "lee@clinic.example")
    lee = Actor(user_id, Role.CLINICIAN, "Lee")
    with pytest.raises(AccessDenied, match="Only administrators"):
        users.list_users(vault, actor=lee)
    with pytest.raises(AccessDenied, match="Only administrators"):
        users.create_account(vault, actor=lee, role=Role.ADMIN, email="evil@clinic.example")
    with pytest.raises(AccessDenied, match="your own account"):
        users.set_disabled(vault, actor=admin, user_id=admin.id, disabled=True)
