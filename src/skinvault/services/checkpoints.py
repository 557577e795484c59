"""Signed heads on a schedule, kept outside the database, and checked on every verify.

    >>> schedule = CheckpointSchedule(vault)     # doctest: +SKIP
    >>> schedule.start()                         # the web app does this at start-up
    >>> schedule.stop()                          # ... and this at shutdown (one last signing)

:func:`sign_and_keep` is one round of the schedule: when anything was appended
since the kept head, it signs the log's head (a checkpoint row, as ``skinvault
audit checkpoint`` does) and then, once that has committed, writes the signed head
to ``<data dir>/keys/audit-head.json`` and to ``audit_head_copy_dir`` if set. It
never signs over a log that no longer holds the kept head: that would hide a cut.

:func:`check_kept_heads` is what verify adds to the chain check: the log must still
hold every kept head it finds, with the same hash.

After each verify that found the log intact, :func:`keep_verified` signs the head it
reached into ``<data dir>/keys/audit-verified.json``; an incremental verify starts
from there (:func:`last_verified`), so it hashes only the events appended since.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from skinvault.audit.chain import ChainReport, Checkpoint, sign_checkpoint, signature_ok
from skinvault.audit.head import HEAD_FILE, InvalidHead, KeptHead, compare, read_head, write_head
from skinvault.audit.log import checkpoint, hash_at, head, public_key_hex
from skinvault.bootstrap import Vault
from skinvault.config import Settings
from skinvault.errors import AuditChainBroken
from skinvault.services.periodic import PeriodicThread

log = logging.getLogger("skinvault.audit")


def head_places(settings: Settings) -> list[Path]:
    """Where the signed head is kept: next to the keys, then the second place if set."""
    places = [settings.data_dir / "keys" / HEAD_FILE]
    if settings.audit_head_copy_dir is not None:
        places.append(settings.audit_head_copy_dir / HEAD_FILE)
    return places


def kept_heads(vault: Vault) -> list[KeptHead]:
    """Every kept copy (missing ones included); a damaged or forged file raises
    :class:`AuditChainBroken` (someone wrote it who should not have)."""
    found = []
    for path in head_places(vault.settings):
        try:
            found.append(read_head(path))
        except InvalidHead as exc:
            raise AuditChainBroken(0, f"{exc}: it was altered or damaged") from exc
    return found


def keep_head(vault: Vault, cp: Checkpoint) -> None:
    """Write ``cp`` to every place (only after the checkpoint row committed: a head
    file must never name an event a rolled-back transaction took away)."""
    for path in head_places(vault.settings):
        try:
            write_head(path, cp)
        except OSError as exc:  # one unreachable place must not stop the others
            log.error("could not keep the signed audit head in %s: %s", path, exc)


def check_kept_heads(vault: Vault, report: ChainReport) -> ChainReport:
    """``report`` after comparing the log with every kept head; raises at a cut or rewrite."""
    trusted = {public_key_hex(vault.keys.signing_key())}
    notes: list[str] = []
    checked = 0
    newest: int | None = None
    # The files first, then the log's current head: a head file only ever names a
    # committed event, so events appended since the chain check cannot look like a cut.
    copies = kept_heads(vault)
    with vault.reading() as session:
        head_seq = head(session)[0]
        for kept in copies:
            if kept.checkpoint is None:
                if len(head_places(vault.settings)) > 1:
                    notes.append(f"no signed head in {kept.path} yet")
                continue
            compare(
                kept.checkpoint,
                kept.path,
                head_seq=head_seq,
                hash_at=lambda seq: hash_at(session, seq),
                trusted=trusted,
            )
            checked += 1
            newest = max(newest or 0, kept.checkpoint.seq)
    if newest is None and report.count:
        notes.append(
            f"no signed head is kept outside the database ({head_places(vault.settings)[0]}),"
            " so removing the newest events could not be checked: keep `skinvault serve`"
            " running (it signs every few minutes) or run `skinvault audit checkpoint`"
        )
    return replace(report, kept_head_seq=newest, kept_heads_checked=checked, notes=tuple(notes))


#: The signed record of the head the last verify found intact, next to the keys.
VERIFIED_FILE = "audit-verified.json"


def verified_place(settings: Settings) -> Path:
    return settings.data_dir / "keys" / VERIFIED_FILE


def last_verified(vault: Vault) -> Checkpoint | None:
    """The head the last verify found intact (``None``: no verify recorded yet); a record
    that is damaged or not signed by this vault's audit key raises ``AuditChainBroken``."""
    path = verified_place(vault.settings)
    try:
        cp = read_head(path).checkpoint
    except InvalidHead as exc:
        raise AuditChainBroken(0, f"{exc}: it was altered or damaged") from exc
    if cp is not None and (
        cp.public_key_hex != public_key_hex(vault.keys.signing_key()) or not signature_ok(cp)
    ):
        raise AuditChainBroken(
            cp.seq,
            f"the record of the last audit verify ({path}) has no valid signature of this"
            " vault's audit key: it was altered or forged",
        )
    return cp


def keep_verified(vault: Vault, report: ChainReport) -> ChainReport:
    """Sign and keep the head ``report`` found intact; a record that cannot be written is
    a note, not a failure of the verify. An incremental verify only moves the record
    forward; a full one replaces it (after restoring an older backup, say)."""
    if report.head_seq == 0:
        return report
    signed = sign_checkpoint(
        report.head_seq, report.head_hash, vault.clock.now(), vault.keys.signing_key()
    )
    path = verified_place(vault.settings)
    try:
        write_head(path, signed, only_newer=report.start_seq > 0)
    except OSError as exc:
        note = f"the result could not be kept in {path} ({exc.strerror}): the next incremental"
        return replace(report, notes=(*report.notes, note + " verify checks the whole log"))
    return report


def sign_and_keep(vault: Vault) -> Checkpoint | None:
    """One round of the schedule: sign and keep the head if anything was appended since
    the kept head; ``None`` if nothing was. Raises :class:`AuditChainBroken` (and signs
    nothing) when the log no longer holds the kept head."""
    trusted = {public_key_hex(vault.keys.signing_key())}
    copies = kept_heads(vault)
    with vault.reading() as session:
        head_seq, _ = head(session)
        for kept in copies:
            if kept.checkpoint is not None:
                compare(
                    kept.checkpoint,
                    kept.path,
                    head_seq=head_seq,
                    hash_at=lambda seq: hash_at(session, seq),
                    trusted=trusted,
                )
    if head_seq == 0:
        return None
    if all(k.checkpoint is not None and k.checkpoint.seq >= head_seq for k in copies):
        return None  # every place already holds the head
    with vault.sessions.begin() as session:
        signed = checkpoint(session, clock=vault.clock, signing_key=vault.keys.signing_key())
    keep_head(vault, signed)
    return signed


class CheckpointSchedule:
    """A background thread running :func:`sign_and_keep` every ``audit_checkpoint_seconds``
    and once more when stopped, so a clean shutdown leaves the kept head current."""

    def __init__(self, vault: Vault, seconds: float | None = None) -> None:
        self.vault = vault
        self.seconds = float(seconds or vault.settings.audit_checkpoint_seconds)
        self._last_problem = ""
        self._thread = PeriodicThread(
            "skinvault-audit-checkpoints", self.seconds, self.tick, final_round=True, log=log
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        """Stop the thread after one last round (waiting up to ``timeout`` for it)."""
        self._thread.stop(timeout)

    def tick(self) -> Checkpoint | None:
        """One round; problems are logged (once until they change), never raised."""
        try:
            signed = sign_and_keep(self.vault)
        except AuditChainBroken as exc:
            problem = f"audit log not signed: {exc}. Run `skinvault audit verify`."
            if problem != self._last_problem:
                log.error(problem)
                self._last_problem = problem
            return None
        except Exception:  # a database that is down for a moment: try again next round
            log.exception("the scheduled audit checkpoint failed")
            return None
        self._last_problem = ""
        return signed


__all__ = [
    "CheckpointSchedule",
    "check_kept_heads",
    "head_places",
    "keep_head",
    "keep_verified",
    "kept_heads",
    "last_verified",
    "sign_and_keep",
]
