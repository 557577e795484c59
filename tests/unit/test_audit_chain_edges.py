"""The hash chain's edges, as an auditor checks them: the documented encoding byte for byte,
a tampered value in any position, the database's one-string-per-batch path, checkpoints
that name no event, and the signed head's JSON form.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from skinvault.audit import chain as chain_module
from skinvault.audit.chain import (
    GENESIS,
    NULL,
    ROW,
    SEP,
    Event,
    Verifier,
    canonical,
    canonical_at,
    checkpoint_from_json,
    checkpoint_json,
    checkpoint_message,
    flat_row,
    format_at,
    link,
    public_key_hex,
    sign_checkpoint,
    signature_ok,
    verify,
    verify_rows,
)
from skinvault.errors import AuditChainBroken

KEY = bytes(range(32))
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def event(seq: int, **changes: object) -> Event:
    base = Event(seq, T0 + timedelta(seconds=seq), "user:a", "photo:view", f"photo:{seq}",
                 "care", "allowed", None)  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def flat_chain(events: list[Event]) -> list[Any]:
    rows, prev = [], GENESIS
    for e in events:
        h = link(prev, e)
        rows.append(flat_row(e, prev, h))
        prev = h
    return rows


def chain(n: int) -> list[Any]:
    return flat_chain([event(i) for i in range(1, n + 1)])


def joined_batch(rows: list[Any]) -> tuple[bytes, str, int]:
    """What the database hands :meth:`Verifier.feed_joined`: (joined, hashes, nulls)."""
    texts = [SEP.join(NULL if v is None else str(v) for v in (r[8], *r[:8])) for r in rows]
    nulls = sum((r[5] is None) + (r[7] is None) for r in rows)
    return ROW.join(texts).encode(), "".join(r[9] for r in rows), nulls


def broken(rows: list[Any], *cps, keys=None) -> AuditChainBroken:  # type: ignore[no-untyped-def]
    with pytest.raises(AuditChainBroken) as info:
        verify_rows(rows, cps, keys)
    return info.value


# --- the documented encoding, pinned to the byte ------------------------------------------


def test_the_hashed_bytes_are_stable_and_match_the_documentation() -> None:
    e = Event(7, datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=UTC), "user:ab", "photo:view",
              "photo:cd", None, "denied", "a\\b\x1fc\x1ed\x1ae")  # fmt: skip
    assert canonical(e) == (
        b"7\x1f2026-01-02 03:04:05.0006\x1fuser:ab\x1fphoto:view\x1fphoto:cd\x1f\x1a"
        b"\x1fdenied\x1fa\\\\b\\uc\\rd\\ze"
    )
    assert link(GENESIS, e) == hashlib.sha256(b"0" * 64 + b"\x1f" + canonical(e)).hexdigest()
    # A fixed value: changing the encoding changes every stored hash, so it must be a
    # deliberate, documented migration, never an accident.
    assert link(GENESIS, e) == "e8f580b84eeb8a2467f0477253b05ec77827013e808708741181911f87a4266e"


def test_the_separators_are_the_documented_control_characters() -> None:
    assert (SEP, ROW, NULL, GENESIS) == ("\x1f", "\x1e", "\x1a", "0" * 64)


def test_canonical_at_pads_every_part_and_converts_to_utc() -> None:
    at = datetime(987, 6, 5, 4, 3, 2, 10, tzinfo=timezone(timedelta(hours=-1)))
    assert canonical_at(at) == "0987-06-05 05:03:02.00001"
    with pytest.raises(ValueError, match="naive datetime"):
        canonical_at(datetime(2026, 1, 1))


def test_format_at_is_iso_utc_with_microseconds_and_z() -> None:
    at = datetime(2026, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1)))
    assert format_at(at) == "2026-01-02T03:04:05.000000Z"
    with pytest.raises(ValueError, match="naive datetime"):
        format_at(datetime(2026, 1, 1))


def test_an_event_keeps_its_time_in_utc() -> None:
    e = event(1, at=datetime(2026, 1, 2, 5, 0, tzinfo=timezone(timedelta(hours=2))))
    assert e.at == datetime(2026, 1, 2, 3, 0, tzinfo=UTC) and e.at.utcoffset() == timedelta(0)
    assert e.at.tzinfo is UTC
    assert event(1).at.tzinfo is UTC


def test_the_checkpoint_message_is_domain_separated_and_pinned() -> None:
    assert checkpoint_message(3, "ab", T0) == (
        b"skinvault audit checkpoint v1\nseq 3\nhash ab\nat 2026-03-01T09:00:00.000000Z\n"
    )


# --- a tampered value in any position breaks verify ----------------------------------------

POSITIONS = {
    "seq": 0, "at": 1, "actor": 2, "action": 3, "object": 4, "purpose": 5, "outcome": 6,
    "reason": 7, "prev_hash": 8, "hash": 9,
}  # fmt: skip


@pytest.mark.parametrize("position", sorted(POSITIONS))
@pytest.mark.parametrize("seq", [1, 3, 5])
def test_a_changed_value_in_any_stored_position_is_caught_at_that_event(
    position: str, seq: int
) -> None:
    rows = chain(5)
    row = list(rows[seq - 1])
    i = POSITIONS[position]
    row[i] = (row[i] + 10) if i == 0 else ("x" if row[i] is None else row[i] + "x")
    rows[seq - 1] = tuple(row)
    assert broken(rows).seq == seq


@pytest.mark.parametrize("position", ["purpose", "reason"])
def test_an_absent_value_set_to_the_text_of_null_is_caught(position: str) -> None:
    rows = chain(3)
    row = list(rows[1])
    row[POSITIONS[position]] = None if row[POSITIONS[position]] else NULL
    rows[1] = tuple(row)
    assert broken(rows).seq == 2


def test_the_breaks_are_named_in_plain_words() -> None:
    rows = chain(6)
    assert "event 1 does not start the chain (its previous-hash is not the genesis value)" in str(
        broken([(*rows[0][:8], "1" * 64, rows[0][9]), *rows[1:]])
    )
    assert str(broken(rows[2:])).endswith("event 1 is missing (the log starts at event 3)")
    assert "event 4 is missing (the sequence jumps from 3 to 5)" in str(broken(rows[:3] + rows[4:]))
    dup = broken(rows[:3] + rows[2:])
    assert dup.seq == 4 and "event 3 appears where event 4 should be" in str(dup)
    text_seq = broken([("1", *rows[0][1:])])
    assert text_seq.seq == 1 and "(events are duplicated or out of order)" in str(text_seq)


def test_a_break_in_a_later_batch_names_the_event_and_the_events_before_it_still_count() -> None:
    rows = chain(4200)  # more than one batch of 4096
    row = list(rows[4150])
    row[6] = "denied"
    rows[4150] = tuple(row)
    assert broken(rows).seq == 4151
    cp = sign_checkpoint(4100, rows[4099][9], T0, KEY)
    assert verify_rows(rows[:4150], [cp], {public_key_hex(KEY)}).checkpoints_checked == 1


# --- checkpoints ---------------------------------------------------------------------------


def test_a_checkpoint_that_names_no_event_of_the_log_is_refused() -> None:
    rows = chain(5)
    cp = sign_checkpoint(0, GENESIS, T0, KEY)
    err = broken(rows, cp)
    assert err.seq == 0 and "checkpoint 0 names no event of the log" in str(err)


def test_a_forged_checkpoint_past_the_end_is_called_forged_not_a_cut() -> None:
    rows = chain(5)
    cp = sign_checkpoint(9, "a" * 64, T0, KEY)
    forged = dataclasses.replace(cp, seq=8)
    assert "checkpoint 8 has an invalid signature" in str(broken(rows, forged))
    err = broken(rows, cp)
    assert err.seq == 6
    assert "the log ends at event 5 but checkpoint 9 was signed" in str(err)


def test_a_checkpoint_with_a_key_that_is_not_hex_is_refused_as_invalid() -> None:
    rows = chain(5)
    cp = dataclasses.replace(sign_checkpoint(3, rows[2][9], T0, KEY), public_key_hex="zz")
    assert "checkpoint 3 has an invalid signature" in str(broken(rows, cp))
    assert not signature_ok(cp)


def test_checkpoints_are_checked_in_seq_order_whatever_order_they_come_in() -> None:
    rows = chain(30)
    cps = [sign_checkpoint(s, rows[s - 1][9], T0, KEY) for s in (20, 10, 30)]
    report = verify_rows(rows, cps, {public_key_hex(KEY)})
    assert report.checkpoints_checked == 3 and report.head_seq == 30
    rewritten = [*rows[:14], (*rows[14][:6], "denied", *rows[14][7:]), *rows[15:]]
    err = broken(rewritten, *cps)
    assert err.seq == 15  # the chain break, before any later checkpoint is looked at


def test_signature_ok_is_true_only_for_the_signed_statement() -> None:
    cp = sign_checkpoint(4, "c" * 64, T0, KEY)
    assert signature_ok(cp)
    for changed in (
        dataclasses.replace(cp, seq=5),
        dataclasses.replace(cp, hash="d" * 64),
        dataclasses.replace(cp, at=T0 + timedelta(microseconds=1)),
        dataclasses.replace(cp, public_key_hex=public_key_hex(bytes(32))),
        dataclasses.replace(cp, signature_hex="00" * 64),
        dataclasses.replace(cp, signature_hex="not hex"),
    ):
        assert not signature_ok(changed)


def test_checkpoint_json_round_trips_and_names_its_fields() -> None:
    cp = sign_checkpoint(4, "c" * 64, T0 + timedelta(microseconds=5), KEY)
    doc = checkpoint_json(cp)
    assert doc == {
        "seq": 4,
        "hash": "c" * 64,
        "at": "2026-03-01T09:00:00.000005Z",
        "public_key": public_key_hex(KEY),
        "signature": cp.signature_hex,
    }
    back = checkpoint_from_json(doc)
    assert back == cp and signature_ok(back)


def test_checkpoint_from_json_refuses_a_seq_that_is_not_a_number() -> None:
    doc = checkpoint_json(sign_checkpoint(4, "c" * 64, T0, KEY))
    with pytest.raises(ValueError, match="seq must be a number"):
        checkpoint_from_json({**doc, "seq": "4"})


# --- the database's one-string-per-batch path ----------------------------------------------


def test_feed_joined_accepts_an_intact_batch_and_carries_on_from_it() -> None:
    rows = chain(10)
    joined, hashes, nulls = joined_batch(rows[:6])
    cp = sign_checkpoint(4, rows[3][9], T0, KEY)
    v = Verifier([cp], {public_key_hex(KEY)})
    assert v.feed_joined(1, 6, count=6, nulls=nulls, hashes=hashes, joined=joined)
    joined, hashes, nulls = joined_batch(rows[6:])
    assert v.feed_joined(7, 10, count=4, nulls=nulls, hashes=hashes, joined=joined)
    report = v.finish()
    assert (report.head_seq, report.head_hash, report.checkpoints_checked) == (10, rows[9][9], 1)


def test_feed_joined_of_one_event_and_with_absent_values() -> None:
    rows = flat_chain([event(1, purpose=None, reason=None), event(2, reason="r")])
    joined, _, nulls = joined_batch(rows)
    assert nulls == 2
    v = Verifier([], None)
    assert v.feed_joined(1, 1, count=1, nulls=2, hashes=rows[0][9], joined=joined.split(b"\x1e")[0])
    assert v.feed_joined(2, 2, count=1, nulls=0, hashes=rows[1][9], joined=joined.split(b"\x1e")[1])
    assert v.finish().head_seq == 2


def _refused(v: Verifier, first: int, last: int, **kw: object) -> None:
    before = (v.expect, v.prev, v.next_cp)
    assert v.feed_joined(first, last, **kw) is False  # type: ignore[arg-type]
    assert (v.expect, v.prev, v.next_cp) == before  # nothing accepted


def test_feed_joined_refuses_any_batch_that_is_not_plainly_intact() -> None:
    rows = chain(6)
    joined, hashes, nulls = joined_batch(rows)
    ok = {"count": 6, "nulls": nulls, "hashes": hashes, "joined": joined}
    v = Verifier([], None)
    _refused(v, 2, 7, **ok)  # does not start where the log is
    _refused(v, 1, 6, **{**ok, "count": 5})  # a gap inside the range
    _refused(v, 1, 6, **{**ok, "count": 7})  # a duplicate inside the range
    _refused(v, 1, 0, **{**ok, "count": 0, "hashes": "", "joined": b""})  # empty
    _refused(v, 1, 6, **{**ok, "hashes": hashes[:-1]})  # a short hash
    _refused(v, 1, 6, **{**ok, "nulls": nulls + 1})  # a field held the NULL character
    _refused(v, 1, 6, **{**ok, "joined": joined.replace(b"photo:3", b"photo\x1f3")})
    _refused(v, 1, 6, **{**ok, "joined": joined.replace(b"photo:3", b"photo\x1e3")})
    _refused(v, 1, 6, **{**ok, "joined": joined.replace(b"photo:3", b"photo\\3")})
    _refused(v, 1, 6, **{**ok, "joined": joined.replace(b"photo:3", b"photo:4")})  # edited
    wrong_prev = joined.replace(rows[3][8].encode(), b"f" * 64)
    _refused(v, 1, 6, **{**ok, "joined": wrong_prev})  # a link that does not follow
    moved = hashes[:64] + hashes[65:128] + hashes[64] + hashes[128:]
    _refused(v, 1, 6, **{**ok, "hashes": moved})
    assert v.feed_joined(1, 6, **ok)  # type: ignore[arg-type]


def test_feed_joined_raises_on_a_checkpoint_the_batch_contradicts() -> None:
    rows = chain(6)
    joined, hashes, nulls = joined_batch(rows)
    cp = sign_checkpoint(5, rows[3][9], T0, KEY)  # the hash of event 4, not 5
    v = Verifier([cp], {public_key_hex(KEY)})
    with pytest.raises(AuditChainBroken, match="event 5 does not match signed checkpoint 5"):
        v.feed_joined(1, 6, count=6, nulls=nulls, hashes=hashes, joined=joined)


def test_verify_over_events_and_over_flat_rows_agree() -> None:
    events = [event(i, reason="x\x1fy" if i == 2 else None) for i in range(1, 5)]
    rows = flat_chain(events)
    triples = [(e, r[8], r[9]) for e, r in zip(events, rows, strict=True)]
    assert verify(triples) == verify_rows(rows)


# --- what the module documents about speed and messages -----------------------------------


def test_a_plain_batch_needs_no_per_event_encoding_in_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The docstring's promise: fields free of the four special characters are hashed from
    one joined string, absent purposes and reasons included; only a batch that holds one
    of them takes the exact per-event path."""
    events = [event(i, purpose=None if i % 2 else "care", reason=None if i % 3 else "why")
              for i in range(1, 40)]  # fmt: skip
    plain = flat_chain(events)

    def per_event(row: object) -> bytes:
        raise AssertionError("the per-event encoding was used for a plain batch")

    monkeypatch.setattr(chain_module, "_hashed", per_event)
    assert verify_rows(plain).count == 39
    odd = flat_chain([*events[:5], event(6, reason="a\\b"), *events[6:]])
    with pytest.raises(AssertionError, match="per-event encoding"):
        verify_rows(odd)


def test_every_break_has_its_full_plain_sentence() -> None:
    rows = chain(6)
    changed = [*rows[:2], (*rows[2][:6], "denied", *rows[2][7:]), *rows[3:]]
    assert str(broken(changed)) == (
        "audit chain broken at event 3: event 3 was changed after it was written"
        " (its hash does not match its contents)"
    )
    assert str(broken(rows[:3] + rows[2:])) == (
        "audit chain broken at event 4: event 3 appears where event 4 should be"
        " (events are duplicated or out of order)"
    )
    cp = sign_checkpoint(8, "a" * 64, T0, KEY)
    assert str(broken(rows, cp)) == (
        "audit chain broken at event 7: the log ends at event 6 but checkpoint 8 was signed:"
        " events were removed from the end"
    )


def test_a_refused_checkpoint_names_its_own_seq_and_the_start_of_the_key() -> None:
    rows = chain(6)
    other = sign_checkpoint(4, rows[3][9], T0, bytes(32))
    err = broken(rows, other, keys={public_key_hex(KEY)})
    assert err.seq == 4
    assert str(err).endswith(f"not trusted ({public_key_hex(bytes(32))[:16]}…)")
    forged = dataclasses.replace(sign_checkpoint(4, rows[3][9], T0, KEY), signature_hex="00" * 64)
    assert broken(rows, forged).seq == 4


def test_naive_times_are_refused_with_the_documented_sentence() -> None:
    for render in (format_at, canonical_at):
        with pytest.raises(ValueError, match=r"^naive datetime: pass a timezone-aware UTC time$"):
            render(datetime(2026, 1, 1))


def test_times_are_rendered_in_utc_whatever_the_machines_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    monkeypatch.setenv("TZ", "America/St_Johns")  # UTC-3:30 in March
    time.tzset()
    try:
        at = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
        assert format_at(at) == "2026-03-01T09:00:00.000000Z"
        assert canonical_at(at) == "2026-03-01 09:00:00"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_verify_started_at_a_checkpointed_head_checks_only_the_later_checkpoints() -> None:
    """An incremental verify often starts exactly at a signed checkpoint (the server signs
    its head; a verify records the head it reached): that checkpoint was checked by the
    verify that made the start, the later ones are checked now — one on the first event of
    the next batch too."""
    rows = chain(9)
    at3, at4, at7 = (sign_checkpoint(s, rows[s - 1][9], T0, KEY) for s in (3, 4, 7))
    verifier = Verifier([at7, at4, at3], {public_key_hex(KEY)}, start=at3)
    verifier.feed(rows[3:6])  # events 4-6
    verifier.feed(rows[6:])  # events 7-9
    report = verifier.finish()
    assert (report.count, report.start_seq, report.checkpoints_checked) == (6, 3, 2)
    wrong = sign_checkpoint(7, rows[5][9], T0, KEY)  # names event 7 with event 6's hash
    verifier = Verifier([wrong], None, start=at3)
    verifier.feed(rows[3:6])
    with pytest.raises(AuditChainBroken, match="does not match signed checkpoint 7"):
        verifier.feed(rows[6:])


# --- survivors of the mutation run of 2026-12-03 (docs/testing.md) --------------------------


def test_an_event_with_a_naive_time_is_refused_with_its_own_sentence() -> None:
    with pytest.raises(
        ValueError, match=r"^naive datetime: an audit event needs a timezone-aware UTC time$"
    ):
        event(1, at=datetime(2026, 1, 1))


def test_checkpoint_from_json_says_exactly_what_is_wrong_and_reads_a_z_time() -> None:
    doc = checkpoint_json(sign_checkpoint(4, "c" * 64, T0, KEY))
    with pytest.raises(ValueError, match=r"^seq must be a number$"):
        checkpoint_from_json({**doc, "seq": 4.0})
    z = checkpoint_from_json({**doc, "at": "2026-03-01T09:00:00Z"})
    assert z.at == T0 and z.at.utcoffset() == timedelta(0)


def test_verify_rows_reads_the_rows_in_batches_and_stops_at_a_broken_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A log of millions of events is never held in memory at once: the rows are read a
    batch at a time, and a break in the first batch is reported before the rest is read."""
    monkeypatch.setattr(chain_module, "_BATCH", 4)
    rows = chain(20)
    rows[1] = (*rows[1][:4], "photo:999", *rows[1][5:])  # event 2 edited
    pulled = 0

    def reading() -> Any:
        nonlocal pulled
        for row in rows:
            pulled += 1
            yield row

    with pytest.raises(AuditChainBroken, match="event 2 was changed"):
        verify_rows(reading())
    assert pulled == 4


def _raw_chain(events: list[Event]) -> list[Any]:
    """A chain whose stored hashes are of the fields joined *without* escaping: what a
    forger gets by hashing the text a database joins, instead of the canonical bytes."""
    rows, prev = [], GENESIS
    for e in events:
        row = flat_row(e, prev, "")
        raw = SEP.join(NULL if v is None else str(v) for v in (row[8], *row[:8])).encode()
        h = hashlib.sha256(raw).hexdigest()
        rows.append(flat_row(e, prev, h))
        prev = h
    return rows


def test_a_field_with_a_backslash_is_hashed_canonically_on_both_fast_paths() -> None:
    """A backslash is escaped in the canonical bytes, so a hash of the unescaped text is
    wrong: neither fast path may accept it (the Python one from rows, the database's
    joined one), and the exact path names the event."""
    events = [event(i, reason="C:\\scan" if i == 3 else None) for i in range(1, 6)]
    rows = _raw_chain(events)
    assert rows[:2] == flat_chain(events)[:2]  # without a backslash the two agree
    assert broken(rows).seq == 3
    assert "event 3 was changed" in str(broken(rows))
    joined, hashes, nulls = joined_batch(rows)
    v = Verifier([], None)
    assert v.feed_joined(1, 5, count=5, nulls=nulls, hashes=hashes, joined=joined) is False


def test_a_fast_path_that_disagrees_with_the_exact_one_is_loud(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should the fast encoding ever differ from the canonical one for an intact log, the
    verifier stops with a plain assertion, never reports the intact log as broken."""
    monkeypatch.setattr(chain_module, "_encode_batch", lambda rows: [b"x"] * len(rows))
    with pytest.raises(
        AssertionError, match=r"^a batch failed the fast check but every event verifies$"
    ):
        verify_rows(chain(3))
