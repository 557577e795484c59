"""Blobs in an S3 bucket (AWS, MinIO, Garage, Ceph — anything speaking the S3 API).

    >>> store = S3BlobStore("clinic-photos", prefix="skinvault",   # doctest: +SKIP
    ...                     endpoint_url="http://minio.lan:9000", region="us-east-1")
    >>> store.put("p/20260101120000-4f0c", sealed.blob)

Credentials come from boto3's usual chain (environment, ~/.aws, instance
role) unless a ready ``client`` is passed. A PUT is atomic in S3, so a key
holds the whole blob or nothing. No bucket is created behind your back: call
:meth:`S3BlobStore.ensure_bucket` explicitly (``admin init`` and ``serve`` do).

Every failure that is not "this key is missing" — no bucket, refused credentials, an
endpoint that does not answer within the timeouts — is :class:`StorageUnavailable`
(a 503 for a request), never the client's fault.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, NoReturn

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from skinvault.errors import BlobUnreadable, StorageUnavailable
from skinvault.storage.local import check_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_MISSING = {"NoSuchKey", "404", "NotFound"}
_NO_BUCKET = {"NoSuchBucket"}
_DENIED = {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3BlobStore:
    """A :class:`~skinvault.ports.BlobStore` in ``s3://bucket/prefix``."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: S3Client | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_attempts: int = 3,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.description = f"S3 bucket {bucket}" + (
            f" (prefix {self.prefix}/)" if self.prefix else ""
        )
        self._region = region
        # botocore's defaults (60 s read timeout, retried) would hold an upload for minutes
        # when the endpoint hangs; these bound it.
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
        )
        self._client: S3Client = client or boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=config
        )

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _fail(self, exc: ClientError | BotoCoreError, key: str) -> NoReturn:
        if isinstance(exc, BotoCoreError):  # no answer: connection refused, timed out
            raise StorageUnavailable(
                f"{self.description} did not answer ({type(exc).__name__}: {exc})"
            ) from exc
        code = _code(exc)
        if code in _MISSING:
            raise BlobUnreadable(f"blob {key} is missing from {self.description}") from exc
        if code in _NO_BUCKET:
            raise StorageUnavailable(
                f"the S3 bucket {self.bucket} does not exist: create it"
                " (or run `skinvault admin init`)"
            ) from exc
        if code in _DENIED:
            raise StorageUnavailable(
                f"the S3 credentials are refused by bucket {self.bucket} ({code}):"
                " check the access key and the bucket policy"
            ) from exc
        raise StorageUnavailable(f"{self.description} refused {key} ({code or exc})") from exc

    def put(self, key: str, data: bytes) -> None:
        try:
            self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        except (ClientError, BotoCoreError) as exc:
            self._fail(exc, key)

    def get(self, key: str) -> bytes:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as exc:
            self._fail(exc, key)
        try:
            with response["Body"] as body:
                return body.read()
        except BotoCoreError as exc:  # the answer stopped half-way (read timeout)
            self._fail(exc, key)

    def delete(self, key: str) -> None:
        # S3 answers 204 for a missing key too: deleting twice is not an error.
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as exc:
            self._fail(exc, key)

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as exc:
            if isinstance(exc, ClientError) and _code(exc) in _MISSING:
                return False
            self._fail(exc, key)
        return True

    def keys(self) -> Iterator[str]:
        start = f"{self.prefix}/" if self.prefix else ""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=start
        )
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][len(start) :]
        except (ClientError, BotoCoreError) as exc:
            self._fail(exc, "(listing)")

    def check(self) -> None:
        """Raise StorageUnavailable unless the bucket answers (readiness probe)."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            if isinstance(exc, ClientError) and _code(exc) in _MISSING:
                raise StorageUnavailable(f"the S3 bucket {self.bucket} does not exist") from exc
            self._fail(exc, "(bucket check)")

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist yet (the only place a bucket is made)."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except (ClientError, BotoCoreError) as exc:
            if not isinstance(exc, ClientError) or _code(exc) not in {
                "404",
                "NoSuchBucket",
                "NotFound",
            }:
                self._fail(exc, "(bucket check)")
        try:
            if self._region and self._region != "us-east-1":
                self._client.create_bucket(
                    Bucket=self.bucket,
                    CreateBucketConfiguration={"LocationConstraint": self._region},  # type: ignore[typeddict-item]
                )
            else:
                self._client.create_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            # BucketAlreadyOwnedByYou: another process made it meanwhile.
            if not isinstance(exc, ClientError) or _code(exc) != "BucketAlreadyOwnedByYou":
                self._fail(exc, "(bucket creation)")
