"""`skinvault admin …` and `skinvault audit …` as an operator runs them (real subprocesses)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from datetime import UTC
from pathlib import Path


def run(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skinvault", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_init_creates_private_keys_and_a_database_and_can_run_twice(tmp_path: Path) -> None:
    data = tmp_path / "vault"
    first = run("admin", "init", "--data-dir", str(data))
    assert first.returncode == 0, first.stderr
    assert "Ready." in first.stdout
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    keys = [p for p in (data / "keys").iterdir() if p.name.endswith(".key")]
    assert keys and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in keys)
    assert (data / "skinvault.db").is_file()
    again = run("admin", "init", "--data-dir", str(data))
    assert again.returncode == 0, again.stderr
    assert sorted(p.read_bytes() for p in keys) == sorted(
        p.read_bytes() for p in (data / "keys").iterdir() if p.name.endswith(".key")
    )


def test_create_user_from_stdin_prints_json_for_scripts(tmp_path: Path) -> None:
    env = {"SKINVAULT_DATA_DIR": str(tmp_path / "v")}
    assert run("admin", "init", env=env).returncode == 0
    made = run(
        "admin", "create-user", "--role", "patient", "--email", "Ann@Example.org",
        "--password-stdin", "--json", stdin="a long enough password\n", env=env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    body = json.loads(made.stdout)
    assert body["user_id"] and body["patient_id"]
    dup = run(
        "admin", "create-user", "--role", "clinician", "--email", "ann@example.org",
        "--password-stdin", stdin="another long password\n", env=env,
    )  # fmt: skip
    assert dup.returncode == 1
    assert "already exists" in dup.stderr and "Traceback" not in dup.stderr


def test_create_user_without_a_terminal_or_stdin_flag_does_not_hang(tmp_path: Path) -> None:
    env = {"SKINVAULT_DATA_DIR": str(tmp_path / "v")}
    run("admin", "init", env=env)
    result = run("admin", "create-user", "--role", "admin", "--email", "a@b.org", env=env)
    assert result.returncode == 2
    assert "--password-stdin" in result.stderr


def test_a_short_password_or_bad_email_is_a_one_line_error(tmp_path: Path) -> None:
    env = {"SKINVAULT_DATA_DIR": str(tmp_path / "v")}
    run("admin", "init", env=env)
    short = run("admin", "create-user", "--role", "staff", "--email", "s@b.org",
                "--password-stdin", stdin="short\n", env=env)  # fmt: skip
    assert short.returncode == 1 and "at least 12 characters" in short.stderr
    bad = run("admin", "create-user", "--role", "staff", "--email", "nobody",
              "--password-stdin", stdin="long enough pass\n", env=env)  # fmt: skip
    assert bad.returncode == 1 and "not an e-mail address" in bad.stderr


def test_commands_on_an_uninitialised_vault_say_to_run_init(tmp_path: Path) -> None:
    deep = tmp_path / ("a-long-folder-name-" * 4) / "empty"  # the message is never wrapped
    result = run("audit", "verify", "--data-dir", str(deep))
    assert result.returncode == 1
    assert "skinvault admin init" in result.stderr and str(deep) in result.stderr


def test_audit_verify_passes_then_names_the_event_an_edit_broke(tmp_path: Path) -> None:
    data = tmp_path / "v"
    env = {"SKINVAULT_DATA_DIR": str(data)}
    run("admin", "init", env=env)
    for i in range(3):
        made = run("admin", "create-user", "--role", "patient", "--email", f"p{i}@example.org",
                   "--password-stdin", stdin="a long enough password\n", env=env)  # fmt: skip
        assert made.returncode == 0, made.stderr
    ok = run("audit", "verify", "--json", env=env)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["intact"] is True and json.loads(ok.stdout)["events"] == 3
    tail = run("audit", "tail", "--json", "-n", "2", env=env)
    events = [json.loads(line) for line in tail.stdout.splitlines()]
    assert [e["seq"] for e in events] == [2, 3] and events[0]["action"] == "user:create"
    with sqlite3.connect(data / "skinvault.db") as db:
        db.execute("UPDATE audit_events SET reason = 'role admin' WHERE seq = 2")
    broken = run("audit", "verify", "--json", env=env)
    assert broken.returncode == 1
    assert json.loads(broken.stdout)["broken_at"] == 2


def test_rotate_key_and_sweep_run_from_the_command_line(tmp_path: Path) -> None:
    env = {"SKINVAULT_DATA_DIR": str(tmp_path / "v")}
    run("admin", "init", env=env)
    rotated = run("admin", "rotate-key", env=env)
    assert rotated.returncode == 0, rotated.stderr
    assert "Rotated to key" in rotated.stdout
    swept = run("admin", "sweep", env=env)
    assert swept.returncode == 0 and "Removed 0 orphaned blobs" in swept.stdout


def test_a_held_checkpoint_proves_a_rewritten_log_even_with_recomputed_hashes(
    tmp_path: Path,
) -> None:
    from datetime import datetime

    from skinvault.audit.chain import GENESIS, Event, link

    data = tmp_path / "v"
    env = {"SKINVAULT_DATA_DIR": str(data)}
    run("admin", "init", env=env)
    for i in range(3):
        run("admin", "create-user", "--role", "patient", "--email", f"p{i}@example.org",
            "--password-stdin", stdin="a long enough password\n", env=env)  # fmt: skip
    held = tmp_path / "head.json"
    signed = run("audit", "checkpoint", "--out", str(held), env=env)
    assert signed.returncode == 0, signed.stderr
    assert json.loads(held.read_text())["seq"] == 3
    ok = run("audit", "verify", "--against", str(held), "--json", env=env)
    assert ok.returncode == 0 and json.loads(ok.stdout)["intact"] is True

    # An insider edits event 2 and recomputes every hash after it, and drops the stored
    # checkpoints: the chain alone looks intact, but the held head no longer matches.
    with sqlite3.connect(data / "skinvault.db") as db:
        db.execute("DELETE FROM audit_checkpoints")
        db.execute("UPDATE audit_events SET reason = 'role admin' WHERE seq = 2")
        prev = GENESIS
        rows = db.execute(
            "SELECT seq, at, actor, action, object, purpose, outcome, reason FROM audit_events"
            " ORDER BY seq"
        ).fetchall()
        for seq, at, actor, action, obj, purpose, outcome, reason in rows:
            moment = datetime.fromisoformat(at).replace(tzinfo=UTC)
            event = Event(seq, moment, actor, action, obj, purpose, outcome, reason)
            new = link(prev, event)
            db.execute(
                "UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, new, seq)
            )
            prev = new
    # Self-consistent again: only a signed head kept elsewhere can tell.
    assert run("audit", "verify", "--no-kept-head", env=env).returncode == 0
    # `audit checkpoint` also kept the head next to the keys: the default verify finds it.
    kept = run("audit", "verify", "--json", env=env)
    assert kept.returncode == 1 and json.loads(kept.stdout)["broken_at"] == 3
    caught = run("audit", "verify", "--against", str(held), "--json", env=env)
    assert caught.returncode == 1
    assert json.loads(caught.stdout)["broken_at"] == 3
