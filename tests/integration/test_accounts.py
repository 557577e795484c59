"""Signing in on real SQLite and PostgreSQL: passwords and lockout, TOTP, API tokens,
web sessions and the first-administrator setup link, all under a clock the tests move."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from skinvault.actors import Actor, Role
from skinvault.audit.log import tail
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import load_settings
from skinvault.db.models import ApiToken, SetupToken, User, WebSession
from skinvault.errors import AccessDenied, AccountLocked, AuthenticationFailed, ConfigError
from skinvault.services import passwords
from skinvault.services.admin import create_user, verify_audit
from skinvault.services.api_tokens import (
    API_SCOPES,
    actor_for_api_token,
    issue_api_token,
    revoke_api_token,
)
from skinvault.services.setup_tokens import create_setup_token, use_setup_token
from skinvault.services.signin import LOGIN, SignIn, authenticate, change_password
from skinvault.services.totp import begin_totp_enrolment, confirm_totp
from skinvault.services.web_sessions import (
    SESSION_ABSOLUTE_TIMEOUT,
    actor_for_session,
    end_session,
    start_session,
)

PASSWORD = "correct horse battery"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class MovableClock:
    def __init__(self) -> None:
        self.t = START

    def now(self) -> datetime:
        return self.t

    def advance(self, **delta: float) -> None:
        self.t += timedelta(**delta)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def vault(database_url: str, tmp_path: Path, clock: MovableClock) -> Iterator[Vault]:
    settings = load_settings(data_dir=tmp_path / "d", database_url=database_url)
    v = bootstrap(settings, create=True, clock=clock)
    yield v
    v.close()


def make_user(vault: Vault, role: Role, email: str = "lee@clinic.example") -> str:
    return create_user(
        vault, role=role, email=email, password=PASSWORD, name="Lee", actor=Actor.system("test")
    ).user_id


def user_row(vault: Vault, user_id: str) -> User:
    with vault.sessions() as session:
        user = session.get(User, user_id)
        assert user is not None
        return user


def enrol(vault: Vault, user_id: str, clock: MovableClock) -> str:
    enrolment = begin_totp_enrolment(vault, user_id)
    assert confirm_totp(vault, user_id, pyotp.TOTP(enrolment.secret).at(clock.now()))
    return enrolment.secret


# --- passwords and lockout -----------------------------------------------------------


def test_the_right_password_signs_in_and_a_wrong_one_is_refused(vault: Vault) -> None:
    user_id = make_user(vault, Role.PATIENT)
    signin = authenticate(
        vault, email=" Lee@Clinic.example ", password=PASSWORD, totp=None
    )
    assert signin.actor == Actor(user_id, Role.PATIENT, "Lee")
    assert signin.needs_totp_enrolment is False
    with pytest.raises(AuthenticationFailed, match=r"^wrong e-mail, password or code$"):
        authenticate(vault, email="lee@clinic.example", password="nope" * 4, totp=None)


def test_an_unknown_email_gets_the_same_message_as_a_wrong_password(vault: Vault) -> None:
    make_user(vault, Role.PATIENT)
    messages = []
    for email, password in [("lee@clinic.example", "wrong" * 3), ("nobody@x.example", PASSWORD)]:
        with pytest.raises(AuthenticationFailed) as info:
            authenticate(vault, email=email, password=password, totp=None)
        messages.append((type(info.value), str(info.value)))
    assert messages[0] == messages[1]


HOME, STRANGER = "198.51.100.7", "203.0.113.9"


def test_five_failures_lock_the_account_from_that_address_and_the_lock_grows(
    vault: Vault, clock: MovableClock
) -> None:
    make_user(vault, Role.PATIENT)

    def sign_in(password: str, address: str) -> SignIn:
        return authenticate(
            vault, email="lee@clinic.example", password=password, totp=None, address=address
        )

    for _ in range(vault.settings.lockout_failures):
        with pytest.raises(AuthenticationFailed, match="wrong e-mail"):
            sign_in("x" * 12, STRANGER)
    clock.advance(minutes=14, seconds=59)
    with pytest.raises(
        AccountLocked, match=r"^too many failed sign-ins; try again after 09:15 UTC$"
    ):
        sign_in(PASSWORD, STRANGER)
    # The stranger's guesses do not lock the owner out from their own address.
    assert sign_in(PASSWORD, HOME).actor.role is Role.PATIENT
    clock.advance(seconds=2)
    for _ in range(vault.settings.lockout_failures):  # the lock is over: the guessing goes on
        with pytest.raises(AuthenticationFailed, match="wrong e-mail"):
            sign_in("y" * 12, STRANGER)
    clock.advance(minutes=29)  # a second run of failures locks for twice as long
    with pytest.raises(AccountLocked):
        sign_in(PASSWORD, STRANGER)
    clock.advance(minutes=1, seconds=1)
    assert sign_in(PASSWORD, STRANGER)  # a success clears the count
    with pytest.raises(AuthenticationFailed, match="wrong e-mail"):
        sign_in("y" * 12, STRANGER)
    assert sign_in(PASSWORD, STRANGER)


def test_an_unknown_email_locks_exactly_like_a_known_one(vault: Vault) -> None:
    """Otherwise the lock message would tell a stranger which e-mails have accounts."""
    make_user(vault, Role.PATIENT)
    answers = []
    for email in ("lee@clinic.example", "nobody@clinic.example"):
        for _ in range(vault.settings.lockout_failures):
            with pytest.raises(AuthenticationFailed):
                authenticate(
                    vault, email=email, password="z" * 12, totp=None, address=STRANGER
                )
        with pytest.raises(AccountLocked) as locked:
            authenticate(
                vault, email=email, password="z" * 12, totp=None, address=STRANGER
            )
        answers.append(str(locked.value))
    assert answers[0] == answers[1]


def test_a_success_resets_the_count_of_failures(vault: Vault) -> None:
    make_user(vault, Role.PATIENT)
    for _ in range(2):
        for _ in range(vault.settings.lockout_failures - 1):
            with pytest.raises(AuthenticationFailed):
                authenticate(
                    vault, email="lee@clinic.example", password="y" * 12, totp=None
                )
        authenticate(vault, email="lee@clinic.example", password=PASSWORD, totp=None)


def test_a_disabled_user_is_refused(vault: Vault) -> None:
    user_id = make_user(vault, Role.PATIENT)
    with vault.sessions.begin() as session:
        session.execute(update(User).where(User.id == user_id).values(disabled=True))
    with pytest.raises(AuthenticationFailed, match="wrong e-mail"):
        authenticate(vault, email="lee@clinic.example", password=PASSWORD, totp=None)


def test_a_hash_with_old_parameters_is_replaced_at_sign_in(vault: Vault) -> None:
    user_id = make_user(vault, Role.PATIENT)
    # Parameters other than the hasher's in effect (the library's defaults in production,
    # the suite's cheap profile here; tests/unit/test_passwords_cost.py checks both).
    weak = PasswordHasher(time_cost=2, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with vault.sessions.begin() as session:
        session.execute(update(User).where(User.id == user_id).values(password_hash=weak))
    authenticate(vault, email="lee@clinic.example", password=PASSWORD, totp=None)
    fresh = user_row(vault, user_id).password_hash
    assert fresh != weak
    assert fresh is not None and not passwords.HASHER.check_needs_rehash(fresh)


def test_change_password_needs_the_old_one_and_ends_sessions_and_tokens(vault: Vault) -> None:
    user_id = make_user(vault, Role.PATIENT)
    actor = authenticate(
        vault, email="lee@clinic.example", password=PASSWORD, totp=None
    ).actor
    session = start_session(vault, actor)
    token = issue_api_token(vault, actor=actor)
    with pytest.raises(ConfigError, match="at least 12"):
        change_password(vault, actor=actor, old=PASSWORD, new="short")
    with pytest.raises(AuthenticationFailed, match="current password is wrong"):
        change_password(vault, actor=actor, old="wrong" * 3, new="a new long password")
    change_password(vault, actor=actor, old=PASSWORD, new="a new long password")
    with pytest.raises(AuthenticationFailed):
        authenticate(vault, email="lee@clinic.example", password=PASSWORD, totp=None)
    assert (
        authenticate(
            vault, email="lee@clinic.example", password="a new long password", totp=None
        ).actor.id
        == user_id
    )
    with pytest.raises(AuthenticationFailed):
        actor_for_session(vault, session.cookie_value)
    with pytest.raises(AuthenticationFailed):
        actor_for_api_token(vault, token.token)


# --- TOTP ----------------------------------------------------------------------------


def test_a_clinician_without_totp_signs_in_but_must_enrol(vault: Vault) -> None:
    make_user(vault, Role.CLINICIAN)
    signin = authenticate(vault, email="lee@clinic.example", password=PASSWORD, totp=None)
    assert signin.needs_totp_enrolment is True
    assert signin.actor.role is Role.CLINICIAN


def test_an_enrolled_clinician_needs_a_valid_code(vault: Vault, clock: MovableClock) -> None:
    user_id = make_user(vault, Role.CLINICIAN)
    enrolment = begin_totp_enrolment(vault, user_id)
    assert enrolment.uri.startswith("otpauth://totp/skinvault:lee%40clinic.example?")
    assert "issuer=skinvault" in enrolment.uri
    assert enrolment.qr_svg.lstrip().startswith("<svg")
    assert enrolment.secret not in repr(enrolment)
    totp = pyotp.TOTP(enrolment.secret)
    # Until confirmed, the pending secret is not asked for at sign-in.
    assert authenticate(
        vault, email="lee@clinic.example", password=PASSWORD, totp=None
    ).needs_totp_enrolment
    wrong = f"{(int(totp.at(clock.now())) + 1) % 1_000_000:06d}"
    assert confirm_totp(vault, user_id, wrong) is False
    assert confirm_totp(vault, user_id, totp.at(clock.now())) is True

    clock.advance(minutes=5)
    signin = authenticate(
        vault, email="lee@clinic.example", password=PASSWORD, totp=totp.at(clock.now())
    )
    assert signin.needs_totp_enrolment is False and signin.actor.id == user_id
    other = f"{(int(totp.at(clock.now())) + 7) % 10**6:06d}"
    for code in [None, "", other]:
        with pytest.raises(AuthenticationFailed, match=r"^wrong e-mail, password or code$"):
            authenticate(vault, email="lee@clinic.example", password=PASSWORD, totp=code)
    # A code from long ago is no longer valid; one step of drift is.
    clock.advance(minutes=2)
    with pytest.raises(AuthenticationFailed):
        authenticate(
            vault,
            email="lee@clinic.example",
            password=PASSWORD,
            totp=totp.at(clock.now() - timedelta(minutes=5)),
        )
    assert authenticate(
        vault,
        email="lee@clinic.example",
        password=PASSWORD,
        totp=totp.at(clock.now() - timedelta(seconds=30)),
    )


def test_a_confirmed_totp_secret_cannot_be_replaced(vault: Vault, clock: MovableClock) -> None:
    user_id = make_user(vault, Role.STAFF)
    enrol(vault, user_id, clock)
    with pytest.raises(AccessDenied, match="already set up"):
        begin_totp_enrolment(vault, user_id)


def test_the_totp_secret_is_not_stored_in_plaintext(vault: Vault, clock: MovableClock) -> None:
    user_id = make_user(vault, Role.CLINICIAN)
    secret = enrol(vault, user_id, clock)
    stored = user_row(vault, user_id).totp_secret_enc
    assert stored is not None
    assert secret.encode() not in stored
    assert secret.lower().encode() not in stored
    assert base64.b32decode(secret) not in stored


# --- API tokens ------------------------------------------------------------------------


def test_an_api_token_round_trips_expires_and_only_its_hash_is_stored(
    vault: Vault, clock: MovableClock
) -> None:
    user_id = make_user(vault, Role.CLINICIAN)
    actor = Actor(user_id, Role.CLINICIAN, "Lee")
    issued = issue_api_token(vault, actor=actor, ttl=timedelta(minutes=30))
    assert issued.token.startswith("svk_") and len(issued.token) == 4 + 43
    assert issued.expires_in == 1800
    assert issued.token not in repr(issued)
    assert actor_for_api_token(vault, issued.token) == actor
    with vault.sessions() as session:
        row = session.get(ApiToken, issued.token_id)
        assert row is not None
        stored = [str(v) for v in vars(row).values()]
    assert not any(issued.token in v or issued.token[4:] in v for v in stored)
    assert row.scopes == ",".join(sorted(API_SCOPES))  # all scopes unless fewer are asked

    clock.advance(minutes=29, seconds=59)
    assert actor_for_api_token(vault, issued.token) == actor
    clock.advance(seconds=1)
    with pytest.raises(AuthenticationFailed, match=r"^the access token is invalid or expired$"):
        actor_for_api_token(vault, issued.token)


def test_a_revoked_or_unknown_api_token_is_refused(vault: Vault) -> None:
    user_id = make_user(vault, Role.CLINICIAN)
    other_id = make_user(vault, Role.CLINICIAN, email="kim@clinic.example")
    actor = Actor(user_id, Role.CLINICIAN, "Lee")
    issued = issue_api_token(vault, actor=actor, scopes={"share", "photos:read"})
    with pytest.raises(AccessDenied):
        revoke_api_token(
            vault, actor=Actor(other_id, Role.CLINICIAN, "Kim"), token_id=issued.token_id
        )
    assert actor_for_api_token(vault, issued.token) == actor
    revoke_api_token(vault, actor=actor, token_id=issued.token_id)
    for token in [issued.token, "svk_" + "A" * 43, "not-a-token", ""]:
        with pytest.raises(AuthenticationFailed, match="invalid or expired"):
            actor_for_api_token(vault, token)


# --- web sessions ------------------------------------------------------------------------


def test_a_session_ends_after_fifteen_idle_minutes(vault: Vault, clock: MovableClock) -> None:
    user_id = make_user(vault, Role.PATIENT)
    actor = Actor(user_id, Role.PATIENT, "Lee")
    new = start_session(vault, actor)
    assert len(new.csrf_token) == 64
    clock.advance(minutes=15)
    info = actor_for_session(vault, new.cookie_value)
    assert (info.actor, info.csrf_token, info.session_id) == (actor, new.csrf_token, new.session_id)
    clock.advance(minutes=15, seconds=1)
    with pytest.raises(AuthenticationFailed, match="session has ended"):
        actor_for_session(vault, new.cookie_value)


def test_a_session_ends_after_twelve_hours_however_active(
    vault: Vault, clock: MovableClock
) -> None:
    user_id = make_user(vault, Role.PATIENT)
    new = start_session(vault, Actor(user_id, Role.PATIENT, "Lee"))
    for _ in range(12 * 6 - 1):
        clock.advance(minutes=10)
        actor_for_session(vault, new.cookie_value)
    clock.advance(minutes=10)
    assert clock.now() - START == SESSION_ABSOLUTE_TIMEOUT
    with pytest.raises(AuthenticationFailed, match="session has ended"):
        actor_for_session(vault, new.cookie_value)


def test_last_seen_is_written_at_most_once_a_minute(vault: Vault, clock: MovableClock) -> None:
    user_id = make_user(vault, Role.PATIENT)
    new = start_session(vault, Actor(user_id, Role.PATIENT, "Lee"))

    def last_seen() -> datetime:
        with vault.sessions() as session:
            row = session.get(WebSession, new.session_id)
            assert row is not None
            return row.last_seen_at

    clock.advance(seconds=30)
    actor_for_session(vault, new.cookie_value)
    assert last_seen() == START
    clock.advance(seconds=30)
    actor_for_session(vault, new.cookie_value)
    assert last_seen() == START + timedelta(minutes=1)


def test_signing_out_ends_the_session_and_only_its_hash_is_stored(vault: Vault) -> None:
    user_id = make_user(vault, Role.PATIENT)
    new = start_session(vault, Actor(user_id, Role.PATIENT, "Lee"))
    with vault.sessions() as session:
        hashes = session.scalars(select(WebSession.token_hash)).all()
    assert new.cookie_value not in hashes
    end_session(vault, new.cookie_value)
    end_session(vault, new.cookie_value)  # twice is fine
    with pytest.raises(AuthenticationFailed):
        actor_for_session(vault, new.cookie_value)


# --- the first administrator -------------------------------------------------------------


def test_the_setup_token_creates_the_first_admin_once(vault: Vault, clock: MovableClock) -> None:
    token = create_setup_token(vault)
    assert token
    assert create_setup_token(vault) is None  # one live token at a time
    with vault.sessions() as session:
        assert session.scalars(select(SetupToken.token_hash)).all() != [token]
    with pytest.raises(AuthenticationFailed, match="setup link"):
        use_setup_token(
            vault, token + "x", email="a@b.example", password=PASSWORD, name="A"
        )
    with pytest.raises(ConfigError):  # a bad password does not burn the link
        use_setup_token(vault, token, email="a@b.example", password="short", name="A")
    admin = use_setup_token(
        vault, token, email="root@clinic.example", password=PASSWORD, name="Root"
    )
    assert (admin.role, admin.name) == (Role.ADMIN, "Root")
    with pytest.raises(AuthenticationFailed, match="setup link"):
        use_setup_token(vault, token, email="b@b.example", password=PASSWORD, name="B")
    assert create_setup_token(vault) is None  # an admin exists
    signin = authenticate(vault, email="root@clinic.example", password=PASSWORD, totp=None)
    assert signin.actor == admin and signin.needs_totp_enrolment


def test_an_unused_setup_token_expires_and_a_new_one_can_be_made(
    vault: Vault, clock: MovableClock
) -> None:
    old = create_setup_token(vault)
    assert old
    clock.advance(hours=24)
    with pytest.raises(AuthenticationFailed):
        use_setup_token(vault, old, email="a@b.example", password=PASSWORD, name="A")
    new = create_setup_token(vault)
    assert new and new != old
    assert use_setup_token(vault, new, email="a@b.example", password=PASSWORD, name="A")


# --- audit -----------------------------------------------------------------------------


def test_every_sign_in_attempt_is_audited_and_the_chain_verifies(
    vault: Vault, clock: MovableClock
) -> None:
    user_id = make_user(vault, Role.CLINICIAN)
    attempts = [
        ("lee@clinic.example", PASSWORD, "allowed"),
        ("lee@clinic.example", "wrong" * 3, "denied"),
        ("ghost@clinic.example", PASSWORD, "denied"),
    ]
    for email, password, _ in attempts:
        with contextlib.suppress(AuthenticationFailed):
            authenticate(vault, email=email, password=password, totp=None)
    with vault.sessions() as session:
        logins = [e for e in tail(session, 50) if e.action == LOGIN]
    assert [e.outcome for e in logins] == [outcome for *_, outcome in attempts]
    assert logins[0].object == logins[1].object == f"user:{user_id}"
    assert logins[2].actor == "anonymous" and logins[2].reason == "unknown e-mail"
    assert "wrong password" in (logins[1].reason or "")
    assert all(PASSWORD not in (e.reason or "") for e in logins)
    assert verify_audit(vault).count >= 4


def test_key_rotation_rewraps_totp_secrets_so_sign_in_still_works(
    vault: Vault, clock: MovableClock
) -> None:
    from skinvault.actors import Actor
    from skinvault.services import admin

    user_id = make_user(vault, Role.CLINICIAN)
    secret = enrol(vault, user_id, clock)
    old = vault.keys.current().id
    report = admin.rotate_key(vault, actor=Actor.system("test"))
    assert old in report.retired  # nothing, not even the TOTP secret, still needs the old key
    assert old not in vault.keys.known_ids()
    clock.t += timedelta(minutes=2)
    signed = authenticate(
        vault,
        email="lee@clinic.example",
        password=PASSWORD,
        totp=pyotp.TOTP(secret).at(clock.now()),
    )
    assert signed.actor.id == user_id


def test_a_totp_code_works_once(vault: Vault, clock: MovableClock) -> None:
    user_id = make_user(vault, Role.CLINICIAN)
    secret = enrol(vault, user_id, clock)
    code = pyotp.TOTP(secret).at(clock.now())
    assert authenticate(vault, email="lee@clinic.example", password=PASSWORD, totp=code)
    with pytest.raises(AuthenticationFailed):
        authenticate(vault, email="lee@clinic.example", password=PASSWORD, totp=code)
    clock.t += timedelta(seconds=30)
    later = pyotp.TOTP(secret).at(clock.now())
    assert authenticate(vault, email="lee@clinic.example", password=PASSWORD, totp=later)
