"""Where encrypted blobs live: a local folder, an S3 bucket, or memory.

    >>> store = open_blob_store(settings.blob_store, data_dir=settings.data_dir)  # doctest: +SKIP
    >>> store.description
    'local folder /srv/skinvault/blobs'

URLs: ``""`` or ``"local"`` (``<data dir>/blobs``), ``"file:///abs/path"``,
``"s3://bucket/prefix"``, ``"memory://"``. Every store holds only ciphertext;
keys live elsewhere (:mod:`skinvault.crypto.keys`).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from skinvault.errors import ServerMisconfigured
from skinvault.ports import BlobStore
from skinvault.storage.local import LocalBlobStore, check_key
from skinvault.storage.memory import MemoryBlobStore
from skinvault.storage.s3 import S3BlobStore

__all__ = ["LocalBlobStore", "MemoryBlobStore", "S3BlobStore", "check_key", "open_blob_store"]


def open_blob_store(
    url: str,
    *,
    data_dir: Path,
    endpoint_url: str | None = None,
    region: str | None = None,
    connect_timeout: float = 5.0,
    read_timeout: float = 30.0,
    max_attempts: int = 3,
) -> BlobStore:
    """The blob store a settings URL names; ConfigError for anything else."""
    url = url.strip()
    if url in ("", "local"):
        return LocalBlobStore(data_dir / "blobs")
    if url == "memory://":
        return MemoryBlobStore()
    parts = urlsplit(url)
    if parts.scheme == "file":
        path = unquote(parts.path)
        if parts.netloc not in ("", "localhost") or not path.startswith("/"):
            raise ServerMisconfigured(
                f"the blob store {url!r} must name an absolute folder, like file:///srv/skinvault/blobs"
            )
        return LocalBlobStore(Path(path))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ServerMisconfigured(
                f"the blob store {url!r} must name a bucket, like s3://bucket/prefix"
            )
        return S3BlobStore(
            parts.netloc,
            prefix=parts.path.strip("/"),
            endpoint_url=endpoint_url,
            region=region,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_attempts=max_attempts,
        )
    raise ServerMisconfigured(
        f"the blob store {url!r} is not understood: use local, file:///folder, s3://bucket/prefix"
        " or memory://"
    )
