"""Blobs in a dict, for tests and for trying skinvault without a disk.

>>> store = MemoryBlobStore()
>>> store.put("p/1", b"x"); store.get("p/1")
b'x'
"""

from __future__ import annotations

from collections.abc import Iterator

from skinvault.errors import BlobUnreadable
from skinvault.storage.local import check_key


class MemoryBlobStore:
    """A :class:`~skinvault.ports.BlobStore` in memory; it accepts the same keys as the others."""

    description = "memory (lost when the process exits)"

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    def put(self, key: str, data: bytes) -> None:
        self._blobs[check_key(key)] = bytes(data)

    def get(self, key: str) -> bytes:
        try:
            return self._blobs[check_key(key)]
        except KeyError:
            raise BlobUnreadable(f"blob {key} is missing from memory") from None

    def delete(self, key: str) -> None:
        self._blobs.pop(check_key(key), None)

    def exists(self, key: str) -> bool:
        return check_key(key) in self._blobs

    def keys(self) -> Iterator[str]:
        # A snapshot, so a caller may delete while iterating (as the sweep does).
        return iter(list(self._blobs))
