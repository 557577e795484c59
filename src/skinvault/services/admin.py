"""Operator tasks: users, key rotation, sweeping orphans, checking the audit log.

>>> user = create_user(vault, role=Role.CLINICIAN, email="lee@clinic.example",
...                    password="…", actor=Actor.system("admin"))   # doctest: +SKIP
>>> rotate_key(vault, actor=Actor.system("admin"))                 # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, literal, select, update

from skinvault.actors import Actor, Role
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.chain import ChainReport, Checkpoint, Event, signature_ok
from skinvault.audit.log import checkpoint, public_key_hex, record, tail, verify_log
from skinvault.bootstrap import Vault
from skinvault.crypto.envelope import Sealed, kek_id_of, pack, rewrap, unpack
from skinvault.db.engine import READ_ONLY
from skinvault.db.models import AuditEvent, Derivative, Patient, Photo, User
from skinvault.errors import AccessDenied, AuditChainBroken, ConfigError
from skinvault.policy.decide import decide_operation
from skinvault.services.passwords import HASHER, problem_with

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ROTATE_BATCH = 500
#: Blobs younger than this are never swept: their upload may still be committing.
SWEEP_GRACE = timedelta(minutes=15)


@dataclass(frozen=True)
class NewUser:
    user_id: str
    patient_id: str | None


def create_user(
    vault: Vault, *, role: Role, email: str, password: str | None, actor: Actor, name: str = ""
) -> NewUser:
    """A user with an Argon2id password hash; a patient user also gets a patient record.

    ``password=None`` makes an account that cannot sign in until its owner opens the
    set-up link (:func:`skinvault.services.users.issue_link`) and chooses a password."""
    email = email.strip().lower()
    if not _EMAIL.match(email) or len(email) > 320:
        raise ConfigError(f"{email[:80]!r} is not an e-mail address")
    if password is not None:
        problem = problem_with(password, email=email)
        if problem:
            raise ConfigError(problem)
    # Hashed before the transaction: Argon2 must never hold the database's write lock.
    password_hash = HASHER.hash(password) if password is not None else None
    now = vault.clock.now()
    with vault.sessions.begin() as session:
        if session.scalars(select(User).where(User.email == email)).first():
            raise ConfigError(f"a user with the e-mail {email} already exists")
        user = User(
            id=vault.tokens.new_id(),
            role=role.value,
            email=email,
            display_name=name or email.split("@", 1)[0],
            password_hash=password_hash,
            disabled=False,
            created_at=now,
        )
        session.add(user)
        session.flush()
        patient_id = None
        if role is Role.PATIENT:
            patient_id = vault.tokens.new_id()
            session.add(
                Patient(
                    id=patient_id, user_id=user.id, display_name=user.display_name, created_at=now
                )
            )
        record(
            session,
            clock=vault.clock,
            actor=actor.audit_name,
            action=Action.USER_CREATE,
            object=f"user:{user.id}",
            outcome=Outcome.DONE,
            reason=f"role {role.value}",
        )
    return NewUser(user.id, patient_id)


@dataclass(frozen=True)
class RotationReport:
    new_kek: str
    rewrapped: int
    retired: tuple[str, ...]
    resumed: bool


# Sealed values kept inside a row rather than as blobs: (model, column, envelope kind).
_SEALED_COLUMNS = ((User, "totp_secret_enc", "totp"), (Photo, "note_enc", "note"))


def _sealed_values(vault: Vault) -> list[tuple[Any, str, str, str, bytes]]:
    """(model, column, kind, row id, packed value) of every sealed column value."""
    found = []
    with vault.reading() as session:
        for model, column, kind in _SEALED_COLUMNS:
            rows = session.execute(
                select(model.id, getattr(model, column)).where(getattr(model, column).is_not(None))
            ).all()
            found += [(model, column, kind, row_id, value) for row_id, value in rows]
    return found


def _pending(vault: Vault, current: str) -> int:
    with vault.reading() as session:
        blobs = sum(
            session.scalar(
                select(func.count()).where(model.kek_id.is_not(None), model.kek_id != current)
            )
            or 0
            for model in (Photo, Derivative)
        )
    sealed = sum(
        1 for *_, value in _sealed_values(vault) if kek_id_of(unpack(value).wrapped_dek) != current
    )
    return blobs + sealed


def rotate_key(
    vault: Vault, *, actor: Actor, progress: Callable[[int, int], None] | None = None
) -> RotationReport:
    """Re-wrap every data key under a new KEK; blobs are not touched.

    Resumable: if a previous run stopped part-way (rows still wrapped by an
    older KEK), this run finishes it under the current KEK instead of making
    another one. Old KEKs are retired once nothing refers to them.
    """
    current = vault.keys.current()
    resumed = _pending(vault, current.id) > 0
    new = current if resumed else vault.keys.rotate()
    total = _pending(vault, new.id)
    done = 0
    for model, kind in ((Photo, "photo"), (Derivative, "thumbnail")):
        while True:
            with vault.sessions.begin() as session:
                # A derivative is sealed under its own kind (thumbnail, display, a version).
                sealed_as = getattr(model, "kind", literal(kind))
                rows = session.execute(
                    select(model.id, model.wrapped_dek, sealed_as)
                    .where(model.kek_id.is_not(None), model.kek_id != new.id)
                    .limit(_ROTATE_BATCH)
                ).all()
                for object_id, wrapped, row_kind in rows:
                    assert wrapped is not None
                    fresh = rewrap(
                        wrapped, object_id=object_id, kind=row_kind, keys=vault.keys, new=new
                    )
                    session.execute(
                        update(model)
                        .where(model.id == object_id)
                        .values(wrapped_dek=fresh, kek_id=new.id)
                    )
            done += len(rows)
            if progress:
                progress(done, total)
            if not rows:
                break
    for model, column, kind, row_id, value in _sealed_values(vault):
        sealed = unpack(value)
        if kek_id_of(sealed.wrapped_dek) == new.id:
            continue
        fresh = rewrap(sealed.wrapped_dek, object_id=row_id, kind=kind, keys=vault.keys, new=new)
        with vault.sessions.begin() as session:
            session.execute(
                update(model)
                .where(model.id == row_id)
                .values({column: pack(Sealed(blob=sealed.blob, wrapped_dek=fresh))})
            )
        done += 1
        if progress:
            progress(done, total)
    retired = _retire_unused(vault, new.id)
    with vault.sessions.begin() as session:
        record(
            session,
            clock=vault.clock,
            actor=actor.audit_name,
            action=Action.KEY_ROTATE,
            object=f"kek:{new.id}",
            outcome=Outcome.DONE,
            reason=f"{done} data keys re-wrapped" + (" (resumed)" if resumed else ""),
        )
    return RotationReport(new.id, done, retired, resumed)


def _retire_unused(vault: Vault, current: str) -> tuple[str, ...]:
    with vault.reading() as session:
        in_use = {
            kek
            for model in (Photo, Derivative)
            for kek in session.scalars(select(model.kek_id).distinct())
            if kek is not None
        }
    in_use |= {kek_id_of(unpack(value).wrapped_dek) for *_, value in _sealed_values(vault)}
    retired = []
    for kek_id in vault.keys.known_ids():
        if kek_id != current and kek_id not in in_use:
            try:
                vault.keys.retire(kek_id)
            except ConfigError:
                continue  # keys from the environment are removed by the operator, not by us
            retired.append(kek_id)
    return tuple(retired)


@dataclass(frozen=True)
class SweepReport:
    removed: tuple[str, ...]
    kept_recent: int


def _blob_time(key: str) -> datetime | None:
    stamp = key.rsplit("/", 1)[-1].split("-", 1)[0]
    try:
        return datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def sweep(vault: Vault, *, actor: Actor, grace: timedelta = SWEEP_GRACE) -> SweepReport:
    """Remove blobs no live photo lists: left by a crash mid-upload or mid-delete."""
    with vault.reading() as session:
        live = {
            key
            for model in (Photo, Derivative)
            for key in session.scalars(select(model.blob_key).where(model.wrapped_dek.is_not(None)))
        }
    cutoff = vault.clock.now() - grace
    removed, recent = [], 0
    for key in list(vault.blobs.keys()):
        if key in live:
            continue
        written = _blob_time(key)
        if written is not None and written > cutoff:
            recent += 1
            continue
        vault.blobs.delete(key)
        removed.append(key)
    sweep_temp = getattr(vault.blobs, "sweep_temp", None)
    if sweep_temp is not None:
        sweep_temp(grace.total_seconds())
    if removed:
        with vault.sessions.begin() as session:
            record(
                session,
                clock=vault.clock,
                actor=actor.audit_name,
                action=Action.BLOB_SWEEP,
                object="blobs",
                outcome=Outcome.DONE,
                reason=f"{len(removed)} orphaned blobs removed",
            )
    return SweepReport(tuple(removed), recent)


def audit_events(
    vault: Vault, *, actor: Actor, containing: str | None = None, limit: int = 50
) -> list[Event]:
    """The latest audit events, newest first, optionally only those naming ``containing``."""
    decision = decide_operation(actor)
    if not decision.allowed:
        raise AccessDenied(decision.reason)
    with vault.reading() as session:
        return list(reversed(tail(session, limit, containing=containing)))


def sign_head(vault: Vault) -> Checkpoint:
    """Sign the audit log's current head now, for an outside party to keep (it is also
    kept outside the database, next to the keys, once it has committed)."""
    from skinvault.services.checkpoints import keep_head  # noqa: PLC0415

    with vault.sessions.begin() as session:
        signed = checkpoint(session, clock=vault.clock, signing_key=vault.keys.signing_key())
    keep_head(vault, signed)
    return signed


def verify_against(vault: Vault, held: Checkpoint) -> ChainReport:
    """Prove to the holder of ``held`` that nothing up to it changed: its signature is
    this vault's, the event it names still has that hash, and the whole chain verifies."""
    if not signature_ok(held) or held.public_key_hex != public_key_hex(vault.keys.signing_key()):
        raise AuditChainBroken(held.seq, "the checkpoint you hold was not signed by this vault")
    report = verify_audit(vault)
    with vault.reading() as session:
        stored = session.get(AuditEvent, held.seq)
    if stored is None:
        raise AuditChainBroken(
            held.seq, f"event {held.seq}, which you hold a checkpoint for, is gone"
        )
    if stored.hash != held.hash:
        raise AuditChainBroken(
            held.seq, f"event {held.seq} no longer has the hash you hold: the log was rewritten"
        )
    return report


def verify_audit(
    vault: Vault, *, kept_head: bool = True, incremental: bool = False
) -> ChainReport:
    """Re-compute the whole chain and check every signed checkpoint; then (``kept_head``)
    compare with the signed head kept outside the database, which finds events removed
    from the end together with their checkpoints.

    ``incremental`` hashes only the events after the head the last verify found intact
    (its signed record, ``keys/audit-verified.json``; the whole log when there is none):
    the cost grows with new events only. It still finds a cut or a rewrite up to that
    head, but not an event before it changed with every stored hash left as it was —
    the full verify does. Every verify that finds the log intact records its head.
    """
    from skinvault.services.checkpoints import (  # noqa: PLC0415
        check_kept_heads,
        keep_verified,
        last_verified,
    )

    keys = {public_key_hex(vault.keys.signing_key())}
    start = last_verified(vault) if incremental else None
    # A reader: verifying a long log must not hold the write lock (on SQLite) meanwhile.
    with vault.engine.execution_options(**{READ_ONLY: True}).connect() as connection:
        report = verify_log(connection, keys, start=start)
    report = check_kept_heads(vault, report) if kept_head else report
    return keep_verified(vault, report)


def verify_summary(report: ChainReport) -> str:
    """A verify's result in words, as the CLI and the admin page say it."""
    if report.start_seq:
        scope = (
            f"{report.count} new events (after event {report.start_seq}, which an earlier"
            " verify found intact)"
        )
    else:
        scope = f"{report.count} events"
    kept = (
        f" The log still holds the signed head kept outside the database (event"
        f" {report.kept_head_seq})."
        if report.kept_head_seq is not None
        else ""
    )
    return (
        f"Intact: {scope}, head {report.head_seq} {report.head_hash[:16]}…,"
        f" {report.checkpoints_checked} signed checkpoints verified.{kept}"
    )


__all__ = [
    "NewUser",
    "RotationReport",
    "SweepReport",
    "create_user",
    "rotate_key",
    "sweep",
    "verify_audit",
    "verify_summary",
]
