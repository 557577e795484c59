"""The pure parts of issue 14's polish: the folded access history, site labels, the
one-shot confirmation cookie, purpose titles inside a sentence."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from skinvault.actors import Actor, Role
from skinvault.policy.purposes import PURPOSE_TEXTS, Purpose
from skinvault.services.history import HistoryEntry, visits
from skinvault.services.web_sessions import SessionInfo
from skinvault.web.pages import common

T0 = datetime(2026, 12, 2, 9, 10, tzinfo=UTC)
HAND = "your left hand photo of 1 December 2026"
FACE = "your face photo of 1 December 2026"


def _look(minutes: int, who: str, action: str = "photo:view", photo: str = HAND,
          outcome: str = "allowed", day: int = 0) -> HistoryEntry:  # fmt: skip
    at = T0 + timedelta(days=day, minutes=minutes)
    return HistoryEntry(at, who, action, "care", outcome, f"{who} {action} {photo}", photo=photo)


def test_one_line_per_person_day_and_purpose_with_every_read_counted() -> None:
    entries = [
        _look(0, "Dr. Lee", "photo:thumbnail"),
        _look(1, "Dr. Lee"),
        _look(2, "Dr. Lee", "photo:describe"),
        _look(30, "Dr. Lee", photo=FACE),
        _look(5, "You"),
        _look(6, "You"),
        _look(0, "Dr. Lee", day=1),  # another day: another line
        _look(7, "Prof. Ng", outcome="denied"),  # a refusal keeps its own line
    ]
    lines = visits(sorted(entries, key=lambda e: e.at))
    lee = [v for v in lines if v.who == "Dr. Lee"]
    assert [v.count for v in lee] == [1, 4]  # newest first
    assert lee[1].text == (
        "Dr. Lee viewed 2 of your photos: left hand photo of 1 December 2026; face photo of"
        " 1 December 2026 for your care, 2 December 2026 (09:10 to 09:40, 4 reads)."
    )
    own = [v for v in lines if v.own]
    assert len(own) == 1 and own[0].count == 2 and own[0].text.startswith("You viewed")
    refused = [v for v in lines if v.outcome == "denied"]
    assert len(refused) == 1 and not refused[0].own
    assert sum(v.count for v in lines) == len(entries)  # nothing dropped


def test_a_single_kind_of_read_keeps_its_own_verb() -> None:
    [line] = visits(
        [_look(0, "Dr. Lee", "photo:thumbnail"), _look(1, "Dr. Lee", "photo:thumbnail")]
    )
    assert line.text.startswith("Dr. Lee viewed a preview of your left hand photo")
    assert "(09:10 to 09:11, 2 reads)" in line.text


def test_consent_answers_and_emergencies_are_never_folded() -> None:
    consent = HistoryEntry(T0, "You", "consent:grant", "teaching", "allowed", "You gave consent")
    urgent = HistoryEntry(T0, "Dr. X", "photo:view", "care", "allowed", "Emergency access",
                          emergency=True, photo=HAND)  # fmt: skip
    lines = visits([consent, urgent])
    assert [v.text for v in lines] == ["You gave consent", "Emergency access"]
    assert not lines[0].own and lines[1].emergency


def test_site_labels_come_from_the_vocabulary() -> None:
    assert common.site_label("forearm-back-left") == "Left forearm (back)"
    assert common.site_label("forearm-back-left", inside=True) == "left forearm (back)"
    assert common.site_label("left-hand") == "Left hand"  # a legacy (schema <= 0008) name
    assert common.site_label("not-a-site") == "not-a-site"  # shown as it is, never re-spelt
    assert common.site_label(None, "Photo") == "Photo"


def test_short_ids_keep_the_whole_id_and_escape_the_rest() -> None:
    out = str(common.short_ids("photo:0123456789abcdef0123456789abcdef <b>"))
    assert 'title="0123456789abcdef0123456789abcdef">01234567<span' in out
    assert "&lt;b&gt;" in out and "<b>" not in out


def _request(cookie: str | None) -> SimpleNamespace:
    return SimpleNamespace(cookies={common.FLASH_COOKIE: cookie} if cookie else {})


def test_the_confirmation_is_bound_to_the_session_that_made_it() -> None:
    mine = SimpleNamespace(csrf_token="session-a")
    response = common.flash_redirect("/portal/deletion", mine, "Your request is sent.")  # type: ignore[arg-type]
    assert response.status_code == 303 and response.headers["location"] == "/portal/deletion"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    value = cookie.split(";")[0].split("=", 1)[1].strip('"')

    def info(token: str) -> SessionInfo:
        return SessionInfo(Actor("u", Role.PATIENT, "Pia"), token, "s")

    assert common._take_flash(_request(value), info("session-a")) == "Your request is sent."  # type: ignore[arg-type]
    assert common._take_flash(_request(value), info("session-b")) is None  # type: ignore[arg-type]
    forged = "0" * 32 + ".Your%20account%20is%20closed"
    assert common._take_flash(_request(forged), info("session-a")) is None  # type: ignore[arg-type]


def test_purpose_titles_read_well_inside_a_sentence() -> None:
    assert PURPOSE_TEXTS[Purpose.AI_TRAINING].in_sentence == "training AI models"
    assert PURPOSE_TEXTS[Purpose.CARE].in_sentence == "your care"
    for purpose, text in PURPOSE_TEXTS.items():
        assert text.title[:1].isupper(), purpose  # titles start with a capital ...
        assert set(re.findall(r"\bai\b", f"{text.title} {text.text}", re.I)) <= {"AI"}


def test_two_people_with_one_name_keep_a_line_each() -> None:
    a = HistoryEntry(T0, "Dr. Lee", "photo:view", "care", "allowed", "a", photo=HAND, actor_id="u1")
    b = HistoryEntry(T0, "Dr. Lee", "photo:view", "care", "allowed", "b", photo=HAND, actor_id="u2")
    assert len(visits([a, b])) == 2
