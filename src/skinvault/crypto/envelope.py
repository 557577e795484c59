"""Envelope encryption of one object: a fresh data key per blob, wrapped by a KEK.

Pure: bytes in, bytes out, no I/O. The blob goes to a :class:`BlobStore`, the
wrapped data key to the database row; deleting that row's wrapped key shreds
the blob for good, and rotating the KEK rewraps 48 bytes per object instead of
re-encrypting every photo.

    >>> keys = MemoryKeySource()                                   # doctest: +SKIP
    >>> sealed = seal(b"pixels", object_id="p1", kind="photo", kek=keys.current())
    >>> open_blob(sealed.blob, sealed.wrapped_dek, object_id="p1", kind="photo", keys=keys)
    b'pixels'

Formats (version 1)::

    blob         01 | nonce (12) | AES-256-GCM(dek, plaintext) + tag (16)
                 associated data b"skinvault/v1/<kind>/<object_id>"
    wrapped_dek  01 | len(kek id) (1) | kek id (ascii) | nonce (12) | AES-256-GCM(kek, dek) + tag
                 associated data b"skinvault/v1/dek/<kind>/<object_id>"

Binding the object id and kind into both associated data means a blob (or a
wrapped key) copied onto another object's row fails to open instead of showing
the wrong patient's photo.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import (
    AEADDecryptionContext,
    Cipher,
    algorithms,
    modes,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from skinvault.errors import BlobUnreadable, KeyUnavailable
from skinvault.ports import Kek, KeySource

#: A data-encryption key: 32 random bytes (AES-256), one per stored object.
DataKey = bytes

VERSION = 1
DEK_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
_MAX_KEK_ID = 255  # the length prefix is one byte

Random = Callable[[int], bytes]


@dataclass(frozen=True)
class Sealed:
    """What :func:`seal` returns: the blob to store and the wrapped key to keep in the row."""

    blob: bytes
    wrapped_dek: bytes

    def __repr__(self) -> str:  # a repr in a log line should not carry ciphertext
        return f"Sealed(blob={len(self.blob)} bytes, kek_id={kek_id_of(self.wrapped_dek)!r})"


def _label(kind: str, object_id: str) -> bytes:
    # A "/" in kind would make "a/b"+"c" and "a"+"b/c" share associated data.
    if not kind or "/" in kind:
        raise ValueError(f"kind must be a non-empty word without '/', not {kind!r}")
    if not object_id:
        raise ValueError("object_id must not be empty")
    return f"{kind}/{object_id}".encode()


def _blob_aad(kind: str, object_id: str) -> bytes:
    return b"skinvault/v1/" + _label(kind, object_id)


def _dek_aad(kind: str, object_id: str) -> bytes:
    return b"skinvault/v1/dek/" + _label(kind, object_id)


def _wrap(dek: DataKey, *, object_id: str, kind: str, kek: Kek, random: Random) -> bytes:
    kek_id = kek.id.encode("ascii")
    if not 0 < len(kek_id) <= _MAX_KEK_ID:
        raise ValueError(f"a key id must be 1 to {_MAX_KEK_ID} ASCII characters: {kek.id!r}")
    nonce = random(NONCE_SIZE)
    wrapped = AESGCM(kek.key).encrypt(nonce, dek, _dek_aad(kind, object_id))
    return bytes([VERSION, len(kek_id)]) + kek_id + nonce + wrapped


def _parse_wrapped(wrapped_dek: bytes) -> tuple[str, bytes, bytes] | None:
    """(kek id, nonce, ciphertext) of a wrapped key, or None when it is malformed."""
    if len(wrapped_dek) < 2 or wrapped_dek[0] != VERSION:
        return None
    end = 2 + wrapped_dek[1]
    if wrapped_dek[1] == 0 or len(wrapped_dek) != end + NONCE_SIZE + DEK_SIZE + TAG_SIZE:
        return None
    try:
        kek_id = wrapped_dek[2:end].decode("ascii")
    except UnicodeDecodeError:
        return None
    return kek_id, wrapped_dek[end : end + NONCE_SIZE], wrapped_dek[end + NONCE_SIZE :]


def is_shredded(wrapped_dek: bytes | None) -> bool:
    """True once the object's data key has been destroyed (the row keeps no wrapped key)."""
    return not wrapped_dek


def kek_id_of(wrapped_dek: bytes) -> str:
    """The id of the KEK a data key is wrapped with (to find rows that still need rewrapping).

    >>> kek_id_of(sealed.wrapped_dek)                               # doctest: +SKIP
    '3f9a0c1e'
    """
    parsed = _parse_wrapped(wrapped_dek)
    if parsed is None:
        raise KeyUnavailable("this wrapped data key is damaged: it does not name a valid key id")
    return parsed[0]


def _unwrap(wrapped_dek: bytes | None, *, object_id: str, kind: str, keys: KeySource) -> DataKey:
    if wrapped_dek is None or is_shredded(wrapped_dek):
        raise BlobUnreadable(f"{kind} {object_id} was deleted (its key was destroyed)")
    parsed = _parse_wrapped(wrapped_dek)
    if parsed is None:
        raise KeyUnavailable(
            f"the data key that protects {kind} {object_id} is damaged and cannot be unwrapped"
        )
    kek_id, nonce, wrapped = parsed
    unavailable = KeyUnavailable(
        f"the key {kek_id} that protects {kind} {object_id} is not available"
        " (wrong or missing key-encryption key)"
    )
    try:
        kek = keys.get(kek_id)
    except KeyUnavailable as exc:
        raise unavailable from exc
    try:
        return AESGCM(kek.key).decrypt(nonce, wrapped, _dek_aad(kind, object_id))
    except InvalidTag:
        # Same message as a missing key: a wrong KEK and a tampered wrapped key
        # cannot be told apart, and either way the photo stays closed.
        raise unavailable from None


def _damaged(kind: str, object_id: str) -> BlobUnreadable:
    return BlobUnreadable(
        f"{kind} {object_id} cannot be decrypted:"
        " the stored blob is damaged or belongs to another object"
    )


def seal(
    plaintext: bytes,
    *,
    object_id: str,
    kind: str,
    kek: Kek,
    random: Random = os.urandom,
) -> Sealed:
    """Encrypt one object under a new data key and wrap that key with ``kek``."""
    dek = random(DEK_SIZE)
    nonce = random(NONCE_SIZE)
    body = AESGCM(dek).encrypt(nonce, plaintext, _blob_aad(kind, object_id))
    blob = bytes([VERSION]) + nonce + body
    return Sealed(blob, _wrap(dek, object_id=object_id, kind=kind, kek=kek, random=random))


def open_blob(
    blob: bytes,
    wrapped_dek: bytes | None,
    *,
    object_id: str,
    kind: str,
    keys: KeySource,
) -> bytes:
    """The plaintext, or ``BlobUnreadable``/``KeyUnavailable`` naming the object; never garbage."""
    dek = _unwrap(wrapped_dek, object_id=object_id, kind=kind, keys=keys)
    damaged = _damaged(kind, object_id)
    if len(blob) < 1 + NONCE_SIZE + TAG_SIZE or blob[0] != VERSION:
        raise damaged
    nonce, body = blob[1 : 1 + NONCE_SIZE], blob[1 + NONCE_SIZE :]
    try:
        return AESGCM(dek).decrypt(nonce, body, _blob_aad(kind, object_id))
    except InvalidTag:
        raise damaged from None


class StreamSealer:
    """:func:`seal` a piece at a time, for an object too large to hold in memory (a
    backup's database). ``header``, then every :meth:`update`, then :meth:`finish` is
    byte for byte the blob :func:`seal` makes of the whole, so :func:`open_blob` opens it.

        >>> sealer = StreamSealer(object_id="b1", kind="backup", kek=kek)  # doctest: +SKIP
        >>> blob = sealer.header + sealer.update(b"one, ") + sealer.update(b"two")
        >>> blob += sealer.finish()
    """

    def __init__(self, *, object_id: str, kind: str, kek: Kek, random: Random = os.urandom):
        dek = random(DEK_SIZE)
        nonce = random(NONCE_SIZE)
        self._cipher = Cipher(algorithms.AES(dek), modes.GCM(nonce)).encryptor()
        self._cipher.authenticate_additional_data(_blob_aad(kind, object_id))
        self.header = bytes([VERSION]) + nonce
        self.wrapped_dek = _wrap(dek, object_id=object_id, kind=kind, kek=kek, random=random)

    def update(self, plaintext: bytes) -> bytes:
        return self._cipher.update(plaintext)

    def finish(self) -> bytes:
        """The last bytes: the authentication tag. Nothing may be added afterwards."""
        return self._cipher.finalize() + self._cipher.tag


class StreamOpener:
    """:func:`open_blob` a piece at a time. Feed the blob to :meth:`update` in pieces of
    any size; :meth:`finish` checks the tag and raises ``BlobUnreadable`` when the blob is
    damaged or belongs to another object.

    **What** :meth:`update` **returns is not authenticated until** :meth:`finish`
    **returns**: use it only where it can be undone (rows inserted in a transaction that
    commits after :meth:`finish`), never show or keep it before."""

    def __init__(
        self, wrapped_dek: bytes | None, *, object_id: str, kind: str, keys: KeySource
    ) -> None:
        self._dek = _unwrap(wrapped_dek, object_id=object_id, kind=kind, keys=keys)
        self._aad = _blob_aad(kind, object_id)
        self._names = (kind, object_id)
        self._cipher: AEADDecryptionContext | None = None
        self._pending = b""  # the header until it is whole, then the last TAG_SIZE bytes
        self._outcome: bool | None = None  # None until finish(); then whether the tag held

    def update(self, data: bytes) -> bytes:
        if self._outcome is not None:
            raise ValueError("this blob was finished already")
        self._pending += data
        if self._cipher is None:
            if len(self._pending) < 1 + NONCE_SIZE:
                return b""
            if self._pending[0] != VERSION:
                raise _damaged(*self._names)
            nonce = self._pending[1 : 1 + NONCE_SIZE]
            self._cipher = Cipher(algorithms.AES(self._dek), modes.GCM(nonce)).decryptor()
            self._cipher.authenticate_additional_data(self._aad)
            self._pending = self._pending[1 + NONCE_SIZE :]
        if len(self._pending) <= TAG_SIZE:
            return b""
        body, self._pending = self._pending[:-TAG_SIZE], self._pending[-TAG_SIZE:]
        return bytes(self._cipher.update(body))

    @property
    def finished(self) -> bool:
        return self._outcome is not None

    def finish(self) -> None:
        """Return when the whole blob was authentic; raise ``BlobUnreadable`` when not.
        A second call gives the first one's answer."""
        if self._outcome is None:
            self._outcome = False
            if self._cipher is None or len(self._pending) != TAG_SIZE:
                raise _damaged(*self._names)
            try:
                self._cipher.finalize_with_tag(self._pending)
            except InvalidTag:
                raise _damaged(*self._names) from None
            self._outcome = True
        if not self._outcome:
            raise _damaged(*self._names)


def rewrap(
    wrapped_dek: bytes,
    *,
    object_id: str,
    kind: str,
    keys: KeySource,
    new: Kek,
    random: Random = os.urandom,
) -> bytes:
    """The same data key wrapped under ``new`` (key rotation); the blob is left untouched.

    >>> row.wrapped_dek = rewrap(row.wrapped_dek, object_id=row.id, kind="photo",
    ...                          keys=keys, new=keys.current())      # doctest: +SKIP
    """
    dek = _unwrap(wrapped_dek, object_id=object_id, kind=kind, keys=keys)
    return _wrap(dek, object_id=object_id, kind=kind, kek=new, random=random)


def pack(sealed: Sealed) -> bytes:
    """One byte string holding both parts, for small secrets kept in a database column."""
    return len(sealed.wrapped_dek).to_bytes(2, "big") + sealed.wrapped_dek + sealed.blob


def unpack(data: bytes) -> Sealed:
    """The inverse of :func:`pack`; a damaged value raises ``BlobUnreadable``."""
    size = int.from_bytes(data[:2], "big")
    if len(data) < 2 + size:
        raise BlobUnreadable("a sealed value is truncated")
    return Sealed(blob=data[2 + size :], wrapped_dek=data[2 : 2 + size])
