"""Protocols for every I/O edge, so services can be handed real or in-memory ones.

    BlobStore    ciphertext blobs by key (local folder, S3, memory)
    KeySource    key-encryption keys and the audit signing key (file, env, memory)
    Clock        the current time (tests move it instead of sleeping)
    TokenSource  random identifiers and secrets

Implementations live next to what they serve: ``skinvault.storage`` and
``skinvault.crypto.keys``; :class:`SystemClock` and :class:`SystemTokens` here.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol


class BlobStore(Protocol):
    """Opaque bytes by key. Writes are atomic: a key holds the whole blob or nothing."""

    #: A human-readable description ("local folder /srv/skinvault/blobs", "S3 bucket x").
    description: str

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes:
        """The blob; raises ``BlobUnreadable`` naming the key when it is missing."""
        ...

    def delete(self, key: str) -> None:
        """Remove the blob; deleting a missing key is not an error."""
        ...

    def exists(self, key: str) -> bool: ...

    def keys(self) -> Iterator[str]:
        """Every stored key (for sweeps and scans), in no particular order."""
        ...


@dataclass(frozen=True)
class Kek:
    """A key-encryption key: 32 random bytes and a short public identifier."""

    id: str
    key: bytes

    def __repr__(self) -> str:  # never print key material
        return f"Kek(id={self.id!r})"


class KeySource(Protocol):
    """Where key-encryption keys come from (a 0600 file, an env var, later a KMS)."""

    description: str

    def current(self) -> Kek:
        """The KEK new data keys are wrapped with."""
        ...

    def get(self, kek_id: str) -> Kek:
        """A KEK by id (current or retired); raises ``KeyUnavailable``."""
        ...

    def rotate(self) -> Kek:
        """Create a new KEK, make it current, keep the old ones readable."""
        ...

    def known_ids(self) -> tuple[str, ...]:
        """Ids of every KEK this source can still unwrap with (current first)."""
        ...

    def retire(self, kek_id: str) -> None:
        """Forget an old KEK once nothing is wrapped with it any more."""
        ...

    def signing_key(self) -> bytes:
        """The 32-byte Ed25519 private key that signs audit checkpoints."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC now."""
        ...


class TokenSource(Protocol):
    def new_id(self) -> str:
        """A new opaque object identifier."""
        ...

    def secret(self, nbytes: int = 32) -> bytes: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class SystemTokens:
    def new_id(self) -> str:
        return uuid.uuid4().hex

    def secret(self, nbytes: int = 32) -> bytes:
        return secrets.token_bytes(nbytes)
