"""Finding 2: the per-address sign-in limit cannot be reset with X-Forwarded-For, counts
failures only, is shared by every server process, and a replayed TOTP code never locks
the owner out. Finding 8: the lock answer is the same for known and unknown e-mails,
and sign-up is limited per address."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pyotp

from skinvault.actors import Role
from tests.security.conftest import PASSWORD, Live, start_server


def _guess(live: Live, i: int, headers: dict[str, str] | None = None) -> int:
    client = live.client()
    answer = client.post(
        "/login",
        data={"email": f"nobody{i}@clinic.example", "password": "not the password"},
        headers=headers or {},
    )
    return answer.status_code


def test_a_rotating_forwarded_header_does_not_reset_the_address_limit(live: Live) -> None:
    answers = [
        _guess(live, i, {"X-Forwarded-For": f"198.51.100.{i}", "X-Real-IP": f"203.0.113.{i}"})
        for i in range(22)
    ]
    assert answers[:20] == [401] * 20
    assert answers[20:] == [429, 429]


def test_a_named_proxy_is_believed(live_with: Callable[[dict[str, str]], Live]) -> None:
    """Behind a reverse proxy listed in trusted_proxies, each forwarded client counts apart."""
    live = live_with({"SKINVAULT_TRUSTED_PROXIES": json.dumps(["127.0.0.1"])})
    answers = [_guess(live, i, {"X-Forwarded-For": f"198.51.100.{i}"}) for i in range(25)]
    assert answers == [401] * 25
    same = [_guess(live, i, {"X-Forwarded-For": "198.51.100.200"}) for i in range(21)]
    assert same[-1] == 429


def test_successful_sign_ins_from_one_address_are_never_refused(live: Live) -> None:
    """A whole clinic behind one NAT signs in many times within the window."""
    patient = live.person(Role.PATIENT)
    for _ in range(30):
        answer = live.client().post("/login", data={"email": patient.email, "password": PASSWORD})
        assert answer.status_code == 303


def test_two_server_processes_count_the_same_failures(live: Live) -> None:
    second = start_server(live.data, live.database_url)
    try:
        answers = []
        for i in range(22):
            base = live.base if i % 2 else second.base
            with live.client(base_url=base) as client:
                answers.append(
                    client.post(
                        "/login", data={"email": f"x{i}@clinic.example", "password": "nope"}
                    ).status_code
                )
        assert answers[:20] == [401] * 20
        assert answers[20:] == [429, 429]
    finally:
        second.stop()


def test_replayed_codes_do_not_lock_the_owner_out(live: Live) -> None:
    clinician = live.person(Role.CLINICIAN)
    assert clinician.totp_secret
    totp = pyotp.TOTP(clinician.totp_secret)
    code = totp.now()
    first = live.client().post(
        "/login", data={"email": clinician.email, "password": PASSWORD, "totp": code}
    )
    assert first.status_code == 303
    for _ in range(8):  # someone replays what they saw over the owner's shoulder
        replay = live.client().post(
            "/login", data={"email": clinician.email, "password": PASSWORD, "totp": code}
        )
        assert replay.status_code == 401
    # The owner's next code (the next 30-second step is accepted for clock drift) works.
    fresh = live.client().post(
        "/login",
        data={"email": clinician.email, "password": PASSWORD, "totp": totp.at(time.time() + 30)},
    )
    assert fresh.status_code == 303, fresh.text
    reasons = [
        e.reason or "" for e in live.vault_events("auth:login") if "replayed" in (e.reason or "")
    ]
    assert len(reasons) == 8


def test_the_lock_answer_does_not_tell_which_emails_have_accounts(live: Live) -> None:
    patient = live.person(Role.PATIENT)
    answers = {}
    for email in (patient.email, "nobody@clinic.example"):
        for _ in range(5):
            live.client().post("/login", data={"email": email, "password": "wrong password!"})
        locked = live.client().post("/login", data={"email": email, "password": PASSWORD})
        answers[email] = (locked.status_code, locked.text.replace(email, "E"))
    assert answers[patient.email] == answers["nobody@clinic.example"]
    assert answers[patient.email][0] == 429


def test_sign_up_is_limited_per_address(live: Live) -> None:
    codes = []
    for i in range(12):
        answer = live.client().post(
            "/signup",
            data={"email": f"new{i}@example.org", "password": PASSWORD, "name": f"New {i}"},
        )
        codes.append(answer.status_code)
    assert codes[:10] == [303] * 10
    assert codes[10:] == [429, 429]
