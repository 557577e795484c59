"""Tamper-evident audit log: a SHA-256 hash chain of events plus Ed25519-signed checkpoints.

    >>> from skinvault.audit import Action, Outcome, record, verify_log   # doctest: +SKIP

:mod:`skinvault.audit.chain` is pure (hashing, signing, verifying rows);
:mod:`skinvault.audit.log` reads and writes the ``audit_events`` and
``audit_checkpoints`` tables.
"""

from __future__ import annotations

from skinvault.audit.actions import Action, Outcome
from skinvault.audit.chain import (
    GENESIS,
    ChainReport,
    Checkpoint,
    Event,
    canonical,
    checkpoint_message,
    link,
    public_key_hex,
    sign_checkpoint,
    verify,
    verify_rows,
)
from skinvault.audit.log import checkpoint, maybe_checkpoint, record, tail, verify_log

__all__ = [
    "GENESIS",
    "Action",
    "ChainReport",
    "Checkpoint",
    "Event",
    "Outcome",
    "canonical",
    "checkpoint",
    "checkpoint_message",
    "link",
    "maybe_checkpoint",
    "public_key_hex",
    "record",
    "sign_checkpoint",
    "tail",
    "verify",
    "verify_log",
    "verify_rows",
]
