"""The signed head kept outside the database: what an auditor relies on when the log is cut.

A kept head must never move backwards, must be written whole with owner-only permissions,
must refuse anything that is not a head signed by a trusted key, and ``compare`` must name,
in plain words, what was removed or rewritten.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from skinvault.audit.chain import checkpoint_json, public_key_hex, sign_checkpoint
from skinvault.audit.head import HEAD_FILE, InvalidHead, compare, read_head, write_head
from skinvault.errors import AuditChainBroken

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
TRUSTED = {public_key_hex(KEY)}
AT = datetime(2026, 3, 1, 9, 5, 7, tzinfo=UTC)


def head_of(seq: int, hash_: str | None = None, key: bytes = KEY):  # type: ignore[no-untyped-def]
    return sign_checkpoint(seq, hash_ or f"{seq:064x}", AT, key)


def stored(upto: int):  # type: ignore[no-untyped-def]
    """A lookup of a log's stored hashes that holds events 1..upto."""
    return lambda seq: f"{seq:064x}" if 1 <= seq <= upto else None


# --- writing and reading ----------------------------------------------------------------


def test_the_file_name_is_the_documented_one() -> None:
    assert HEAD_FILE == "audit-head.json"


def test_a_missing_folder_is_created_owner_only_and_the_head_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "new" / "keys" / HEAD_FILE
    assert write_head(path, head_of(4))
    assert read_head(path).checkpoint == head_of(4)
    assert read_head(path).path == path
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_file_holds_the_documented_json_document(tmp_path: Path) -> None:
    path = tmp_path / HEAD_FILE
    write_head(path, head_of(7))
    text = path.read_text()
    # Indented for the operator who reads or copies it, newline-terminated.
    assert text == json.dumps(checkpoint_json(head_of(7)), indent=2) + "\n"


def test_the_head_moves_forward_and_never_backwards_or_sideways(tmp_path: Path) -> None:
    path = tmp_path / HEAD_FILE
    assert write_head(path, head_of(5))
    assert not write_head(path, head_of(4))  # older
    assert not write_head(path, head_of(5, "e" * 64))  # the same seq with another hash
    assert read_head(path).checkpoint == head_of(5)
    assert write_head(path, head_of(6))  # the next one is written
    assert read_head(path).checkpoint == head_of(6)


def test_a_damaged_head_file_is_replaced_by_a_good_one(tmp_path: Path) -> None:
    path = tmp_path / HEAD_FILE
    path.write_text("{damaged")
    assert write_head(path, head_of(2))
    assert read_head(path).checkpoint == head_of(2)


def test_no_temporary_file_is_left_and_writers_share_one_lock_file(tmp_path: Path) -> None:
    path = tmp_path / HEAD_FILE
    for seq in (1, 3, 2, 5):
        write_head(path, head_of(seq))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".{HEAD_FILE}.lock", HEAD_FILE]


def test_a_failed_write_leaves_the_old_head_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / HEAD_FILE
    write_head(path, head_of(1))

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_head(path, head_of(2))
    monkeypatch.undo()
    assert read_head(path).checkpoint == head_of(1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".{HEAD_FILE}.lock", HEAD_FILE]


def test_the_new_head_is_flushed_to_disk_before_it_replaces_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / HEAD_FILE
    synced: list[bytes] = []
    real_fsync = os.fsync

    temp_names: list[Path] = []

    def watch(fd: int) -> None:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            temp = Path(os.readlink(f"/proc/self/fd/{fd}"))
            temp_names.append(temp)
            synced.append(temp.read_bytes())
        else:
            synced.append(b"<folder>")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", watch)
    write_head(path, head_of(3))
    # the whole new document, then the folder (so the rename survives a power cut)
    assert synced == [path.read_bytes(), b"<folder>"]
    # written beside the head (so the rename is atomic), under a name that says whose it is
    [temp] = temp_names
    assert temp.parent == tmp_path and temp.name.startswith(f".{HEAD_FILE}.")


def test_a_folder_that_cannot_be_opened_for_fsync_still_counts_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / HEAD_FILE
    real_open = os.open

    def no_folder(name: object, flags: int, *args: object) -> int:
        if Path(str(name)) == tmp_path and flags == os.O_RDONLY:
            raise PermissionError(13, "Permission denied")
        return real_open(name, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", no_folder)
    assert write_head(path, head_of(3)) is True
    monkeypatch.undo()
    assert read_head(path).checkpoint == head_of(3)


def test_a_missing_file_is_no_head_not_an_error(tmp_path: Path) -> None:
    kept = read_head(tmp_path / HEAD_FILE)
    assert kept.checkpoint is None and kept.path == tmp_path / HEAD_FILE


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[1, 2]",
        '"a string"',
        json.dumps({"seq": 1}),  # fields missing
        json.dumps({**checkpoint_json(sign_checkpoint(1, "a" * 64, AT, KEY)), "seq": "1"}),
        json.dumps({**checkpoint_json(sign_checkpoint(1, "a" * 64, AT, KEY)), "at": "yesterday"}),
    ],
    ids=["not-json", "a-list", "a-string", "fields-missing", "seq-as-text", "at-not-a-time"],
)
def test_a_file_that_is_not_a_signed_head_is_refused_in_plain_words(
    tmp_path: Path, body: str
) -> None:
    path = tmp_path / HEAD_FILE
    path.write_text(body)
    with pytest.raises(InvalidHead, match=f"the signed head {path} is not a signed head"):
        read_head(path)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("[1, 2]", "not an object"),
        (json.dumps({**checkpoint_json(sign_checkpoint(1, "a" * 64, AT, KEY)), "seq": "1"}),
         "seq must be a number"),
    ],
)  # fmt: skip
def test_the_refusal_says_why_the_file_is_not_a_signed_head(
    tmp_path: Path, body: str, why: str
) -> None:
    path = tmp_path / HEAD_FILE
    path.write_text(body)
    with pytest.raises(InvalidHead) as info:
        read_head(path)
    assert str(info.value) == f"the signed head {path} is not a signed head ({why})"


def test_an_unreadable_head_file_is_refused_not_taken_for_missing(tmp_path: Path) -> None:
    path = tmp_path / HEAD_FILE
    path.mkdir()  # reading it fails with an OSError other than "not found"
    with pytest.raises(InvalidHead, match=rf"the signed head {path} cannot be read \(Is a dir"):
        read_head(path)


# --- comparing with the log -------------------------------------------------------------


def test_a_log_that_still_holds_the_kept_head_passes() -> None:
    compare(head_of(5), Path("k"), head_seq=5, hash_at=stored(5), trusted=TRUSTED)
    compare(head_of(5), Path("k"), head_seq=9, hash_at=stored(9), trusted=TRUSTED)


def test_a_head_signed_by_a_key_not_trusted_is_refused() -> None:
    with pytest.raises(AuditChainBroken, match=r"\(k\) has no valid signature") as info:
        compare(head_of(5, key=OTHER_KEY), Path("k"), head_seq=5, hash_at=stored(5),
                trusted=TRUSTED)  # fmt: skip
    assert info.value.seq == 5


def test_a_head_whose_signature_does_not_verify_is_refused_even_with_a_trusted_key() -> None:
    forged = dataclasses.replace(head_of(5), hash="f" * 64)
    with pytest.raises(AuditChainBroken) as info:
        compare(forged, Path("k"), head_seq=5, hash_at=lambda s: "f" * 64, trusted=TRUSTED)
    assert str(info.value) == (
        "audit chain broken at event 5: the signed head kept outside the database (k) has no"
        " valid signature of this vault's audit key: it was altered or forged"
    )


def test_one_event_cut_from_the_end_is_named() -> None:
    with pytest.raises(AuditChainBroken) as info:
        compare(head_of(5), Path("k"), head_seq=4, hash_at=stored(4), trusted=TRUSTED)
    assert info.value.seq == 5
    assert str(info.value).endswith(
        "the log ends at event 4, but the signed head kept outside the database (k, signed"
        " 2026-03-01 09:05 UTC) names event 5: event 5 was removed from the end of the log"
    )


def test_several_events_cut_from_the_end_are_named_as_a_range() -> None:
    with pytest.raises(AuditChainBroken) as info:
        compare(head_of(9), Path("k"), head_seq=6, hash_at=stored(6), trusted=TRUSTED)
    assert info.value.seq == 7
    assert "names event 9: events 7 to 9 were removed from the end of the log" in str(info.value)


def test_a_log_cut_and_written_again_up_to_the_kept_seq_is_found() -> None:
    with pytest.raises(AuditChainBroken) as info:
        compare(head_of(5), Path("k"), head_seq=8, hash_at=lambda s: "0" * 64, trusted=TRUSTED)
    assert info.value.seq == 5
    assert str(info.value).endswith(
        "event 5 is not the one the signed head kept outside the database (k, signed"
        " 2026-03-01 09:05 UTC) names: the log was cut and written again, or rewritten, up to"
        " event 5"
    )
