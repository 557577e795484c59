"""Envelope encryption and the keys behind it.

envelope  seal / open_blob / rewrap: one data key per object, wrapped by a KEK (pure);
          StreamSealer / StreamOpener: the same, a piece at a time (a backup's database)
keys      where KEKs and the audit signing key come from: files, environment, memory

>>> keys = FileKeySource(data_dir / "keys")                     # doctest: +SKIP
>>> sealed = seal(photo, object_id=photo_id, kind="photo", kek=keys.current())
>>> store.put(blob_key, sealed.blob); row.wrapped_dek = sealed.wrapped_dek
>>> open_blob(store.get(blob_key), row.wrapped_dek, object_id=photo_id, kind="photo", keys=keys)
"""

from __future__ import annotations

from skinvault.crypto.envelope import (
    DataKey,
    Sealed,
    StreamOpener,
    StreamSealer,
    is_shredded,
    kek_id_of,
    open_blob,
    rewrap,
    seal,
)
from skinvault.crypto.keys import EnvKeySource, FileKeySource, MemoryKeySource

__all__ = [
    "DataKey",
    "EnvKeySource",
    "FileKeySource",
    "MemoryKeySource",
    "Sealed",
    "StreamOpener",
    "StreamSealer",
    "is_shredded",
    "kek_id_of",
    "open_blob",
    "rewrap",
    "seal",
]
