"""The pure hash chain: an intact log verifies, every kind of tampering names its event."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skinvault.audit.chain import (
    GENESIS,
    NULL,
    ROW,
    SEP,
    Checkpoint,
    Event,
    canonical,
    canonical_at,
    link,
    public_key_hex,
    sign_checkpoint,
    verify,
)
from skinvault.errors import AuditChainBroken

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
Row = tuple[Event, str, str]


def make_event(seq: int) -> Event:
    return Event(
        seq=seq,
        at=T0 + timedelta(seconds=seq, microseconds=seq),
        actor=f'user:{seq % 3:032x} Dr Ana "Quote" Silva\n',
        action="photo:view" if seq % 2 else "photo:store",
        object=f"photo:{seq:032x}",
        purpose="care" if seq % 4 else None,
        outcome="allowed",
        reason=None if seq % 5 else "no consent für research",
    )


def chain_of(events: list[Event]) -> list[Row]:
    rows: list[Row] = []
    prev = GENESIS
    for event in events:
        h = link(prev, event)
        rows.append((event, prev, h))
        prev = h
    return rows


def make_chain(n: int) -> list[Row]:
    return chain_of([make_event(i) for i in range(1, n + 1)])


def rehash_from(rows: list[Row], index: int) -> list[Row]:
    """What a careful attacker does: recompute every link from ``index`` on."""
    prev = rows[index - 1][2] if index else GENESIS
    out = rows[:index]
    for event, _, _ in rows[index:]:
        h = link(prev, event)
        out.append((event, prev, h))
        prev = h
    return out


def broken_at(rows: list[Row], checkpoints: list[Checkpoint] | None = None, keys=None) -> int:
    with pytest.raises(AuditChainBroken) as info:
        verify(rows, checkpoints or [], keys)
    assert f"event {info.value.seq}" in str(info.value)
    return info.value.seq


def test_an_intact_chain_verifies_and_reports_its_head() -> None:
    rows = make_chain(10_000)  # more than one verification batch
    report = verify(rows)
    assert (report.count, report.head_seq, report.head_hash) == (10_000, 10_000, rows[-1][2])
    assert verify([]).head_hash == GENESIS


def test_canonical_is_the_fields_joined_by_sep_with_null_for_none() -> None:
    event = make_event(4)
    assert canonical(event).decode().split(SEP) == [
        "4",
        "2026-03-01 09:00:04.000004",
        event.actor,
        event.action,
        event.object,
        NULL,
        event.outcome,
        NULL,
    ]
    assert (
        link(GENESIS, event)
        == hashlib.sha256((GENESIS + SEP).encode() + canonical(event)).hexdigest()
    )


def test_canonical_at_is_postgres_iso_text_without_trailing_zeros() -> None:
    assert canonical_at(T0) == "2026-03-01 09:00:00"
    assert canonical_at(T0 + timedelta(microseconds=500_000)) == "2026-03-01 09:00:00.5"
    assert canonical_at(T0 + timedelta(seconds=10, microseconds=10)) == "2026-03-01 09:00:10.00001"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("a" + SEP + "b", "c"), ("a", "b" + SEP + "c")),
        (("a\\", "c"), ("a", "\\c")),
        ((NULL, "c"), (None, "c")),
        (("\\z", "c"), (NULL, "c")),
        (("a" + ROW, "c"), ("a\\r", "c")),
    ],
)
def test_canonical_is_injective_whatever_the_fields_hold(
    a: tuple[str | None, str], b: tuple[str | None, str]
) -> None:
    one = dataclasses.replace(make_event(1), purpose=a[0], reason=a[1])
    two = dataclasses.replace(make_event(1), purpose=b[0], reason=b[1])
    assert canonical(one) != canonical(two)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.text(alphabet=st.sampled_from(["a", "\\", SEP, ROW, NULL, "z", "é"])), min_size=3)
)
def test_fields_holding_separators_verify_and_edits_are_caught(reasons: list[str]) -> None:
    events = [dataclasses.replace(make_event(i + 1), reason=r) for i, r in enumerate(reasons)]
    rows = chain_of(events)
    assert verify(rows).count == len(rows)
    event, prev, h = rows[1]
    rows[1] = (dataclasses.replace(event, reason=(event.reason or "") + SEP), prev, h)
    assert broken_at(rows) == 2


def test_canonical_does_not_depend_on_the_timezone_the_time_was_given_in() -> None:
    event = make_event(1)
    shifted = dataclasses.replace(event, at=event.at.astimezone(timezone_plus_two()))
    assert canonical(shifted) == canonical(event)


def timezone_plus_two():  # type: ignore[no-untyped-def]
    from datetime import timezone

    return timezone(timedelta(hours=2))


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        Event(1, datetime(2026, 1, 1), "a", "photo:view", "o", None, "allowed", None)


CHANGES = {
    "actor": "user:intruder",
    "action": "photo:delete",
    "object": "photo:other",
    "purpose": "research",
    "outcome": "denied",
    "reason": "edited",
    "at": T0 - timedelta(days=1),
}


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from(sorted(CHANGES)), seq=st.integers(1, 40))
def test_editing_any_field_of_any_event_is_caught_at_that_event(field: str, seq: int) -> None:
    rows = make_chain(40)
    event, prev, h = rows[seq - 1]
    rows[seq - 1] = (dataclasses.replace(event, **{field: CHANGES[field]}), prev, h)
    assert broken_at(rows) == seq


def test_setting_an_optional_field_to_none_is_caught() -> None:
    rows = make_chain(10)
    event, prev, h = rows[4]  # seq 5: reason set
    rows[4] = (dataclasses.replace(event, reason=None), prev, h)
    assert broken_at(rows) == 5


def test_deleting_an_event_in_the_middle_is_caught_as_a_gap() -> None:
    rows = make_chain(30)
    del rows[16]
    with pytest.raises(AuditChainBroken, match=r"event 17 is missing .*from 16 to 18"):
        verify(rows)


def test_deleting_the_first_event_is_caught() -> None:
    assert broken_at(make_chain(5)[1:]) == 1


def test_a_forged_event_with_a_correct_own_hash_is_caught_at_the_next_event() -> None:
    rows = make_chain(20)
    forged = dataclasses.replace(make_event(6), actor="user:intruder")
    forged_row = (forged, rows[4][2], link(rows[4][2], forged))
    renumbered = [
        (dataclasses.replace(e, seq=e.seq + 1), p, h) for e, p, h in rows[5:]
    ]  # later events shifted by one, their hashes left alone
    assert broken_at([*rows[:5], forged_row, *renumbered]) == 7


def test_a_forged_event_inserted_without_renumbering_is_caught() -> None:
    rows = make_chain(20)
    forged = make_event(6)
    rows.insert(5, (forged, rows[4][2], link(rows[4][2], forged)))
    assert broken_at(rows) == 7


def test_swapping_two_events_is_caught() -> None:
    rows = make_chain(20)
    rows[7], rows[12] = rows[12], rows[7]
    assert broken_at(rows) == 8


def test_swapping_the_contents_but_keeping_the_numbers_is_caught() -> None:
    rows = make_chain(20)
    (e8, p8, h8), (e13, p13, h13) = rows[7], rows[12]
    rows[7] = (dataclasses.replace(e13, seq=8), p13, h13)
    rows[12] = (dataclasses.replace(e8, seq=13), p8, h8)
    assert broken_at(rows) == 8


def test_an_edit_with_only_its_own_hash_recomputed_breaks_the_next_link() -> None:
    rows = make_chain(20)
    event, prev, _ = rows[9]
    edited = dataclasses.replace(event, outcome="denied")
    rows[9] = (edited, prev, link(prev, edited))
    with pytest.raises(AuditChainBroken, match="event 11 does not follow event 10"):
        verify(rows)


def test_a_rewrite_with_every_later_hash_recomputed_is_caught_by_the_next_checkpoint() -> None:
    rows = make_chain(100)
    cp40 = sign_checkpoint(40, rows[39][2], T0, KEY)
    cp80 = sign_checkpoint(80, rows[79][2], T0, KEY)
    keys = {public_key_hex(KEY)}
    assert verify(rows, [cp40, cp80], keys).checkpoints_checked == 2

    event, prev, h = rows[54]
    rows[54] = (dataclasses.replace(event, actor="user:someone-else"), prev, h)
    rewritten = rehash_from(rows, 54)
    assert verify(rewritten).count == 100  # the chain alone is fooled …
    with pytest.raises(AuditChainBroken, match="between event 41 and event 80"):
        verify(rewritten, [cp40, cp80], keys)  # … the signed checkpoint is not
    assert broken_at(rewritten, [cp40, cp80], keys) == 80


def test_truncating_the_tail_after_a_checkpoint_is_caught() -> None:
    rows = make_chain(50)
    cp = sign_checkpoint(45, rows[44][2], T0, KEY)
    with pytest.raises(AuditChainBroken, match="ends at event 40 but checkpoint 45"):
        verify(rows[:40], [cp], {public_key_hex(KEY)})


def test_a_forged_checkpoint_signature_is_caught() -> None:
    rows = make_chain(30)
    cp = sign_checkpoint(20, rows[19][2], T0, KEY)
    bad_sig = bytearray.fromhex(cp.signature_hex)
    bad_sig[0] ^= 1
    for forged in (
        dataclasses.replace(cp, signature_hex=bad_sig.hex()),
        dataclasses.replace(cp, hash=rows[18][2]),  # claims another hash under the old signature
        dataclasses.replace(cp, at=T0 + timedelta(seconds=1)),
        dataclasses.replace(cp, signature_hex="zz"),
    ):
        with pytest.raises(AuditChainBroken, match="checkpoint 20 has an invalid signature"):
            verify(rows, [forged], {public_key_hex(KEY)})


def test_a_checkpoint_signed_by_an_unknown_key_is_refused() -> None:
    rows = make_chain(30)
    cp = sign_checkpoint(20, rows[19][2], T0, OTHER_KEY)
    assert verify(rows, [cp]).checkpoints_checked == 1  # internally consistent …
    with pytest.raises(AuditChainBroken, match="checkpoint 20 was signed by a key that is not"):
        verify(rows, [cp], {public_key_hex(KEY)})  # … but not by a key we trust


def test_the_first_broken_link_is_reported_not_a_later_one() -> None:
    rows = make_chain(9000)
    for i in (8500, 7000, 5000):
        event, prev, h = rows[i - 1]
        rows[i - 1] = (dataclasses.replace(event, outcome="failed"), prev, h)
    assert broken_at(rows) == 5000


def test_a_bad_checkpoint_before_a_chain_break_in_the_same_batch_is_reported_first() -> None:
    rows = make_chain(100)
    cp = sign_checkpoint(10, rows[10][2], T0, KEY)  # hash of event 11, not 10
    event, prev, h = rows[59]
    rows[59] = (dataclasses.replace(event, actor="x"), prev, h)
    assert broken_at(rows, [cp]) == 10
