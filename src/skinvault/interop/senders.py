"""Sending DICOM files to a destination: the port, and C-STORE and STOW-RS implementations.

    >>> sender = sender_for("dicom://PACS@10.0.0.5:104", calling_aet="SKINVAULT")
    >>> sender.send(part10_bytes)                                   # doctest: +SKIP
    'C-STORE to PACS@10.0.0.5:104: success'

A destination is a URL from the settings (``dicom_destinations``):
``dicom://AET@host:port`` sends by C-STORE (pynetdicom), ``http(s)://…``
posts to the DICOMweb STOW-RS endpoint ``<url>/studies``. Either raises
:class:`DestinationUnavailable` with a sentence saying what went wrong; the
service retries and audits.
"""

from __future__ import annotations

import io
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from skinvault.errors import ConfigError, DestinationUnavailable

TIMEOUT_SECONDS = 10.0  # per attempt; the setting dicom_send_timeout_seconds overrides it


class DicomSender(Protocol):
    """Something that takes a Part 10 file and delivers it, or raises DestinationUnavailable."""

    def send(self, part10: bytes) -> str: ...


@dataclass(frozen=True)
class CStoreSender:
    host: str
    port: int
    called_aet: str
    calling_aet: str = "SKINVAULT"
    timeout: float = TIMEOUT_SECONDS

    def send(self, part10: bytes) -> str:
        from pynetdicom import AE  # noqa: PLC0415 — only needed when sending

        try:
            ds = dcmread(io.BytesIO(part10))
        except InvalidDicomError as exc:
            raise DestinationUnavailable(f"not a DICOM file: {exc}") from exc
        ae = AE(ae_title=self.calling_aet)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
        where = f"{self.called_aet}@{self.host}:{self.port}"
        # Probe first: pynetdicom 3 leaks its socket when a connection is refused.
        try:
            socket.create_connection((self.host, self.port), timeout=self.timeout).close()
        except OSError as exc:
            raise DestinationUnavailable(f"C-STORE to {where}: no association ({exc})") from exc
        assoc = ae.associate(self.host, self.port, ae_title=self.called_aet)
        if not assoc.is_established:
            raise DestinationUnavailable(f"C-STORE to {where}: no association (refused or down)")
        try:
            status = assoc.send_c_store(ds)
        finally:
            assoc.release()
        code = getattr(status, "Status", None)
        if code is None:
            raise DestinationUnavailable(f"C-STORE to {where}: no answer")
        if code != 0x0000 and not (0xB000 <= code <= 0xBFFF):
            raise DestinationUnavailable(f"C-STORE to {where}: refused with status 0x{code:04X}")
        return f"C-STORE to {where}: success"


@dataclass(frozen=True)
class StowRsSender:
    base_url: str  # the DICOMweb root, e.g. https://pacs.example/dicom-web
    timeout: float = TIMEOUT_SECONDS

    def send(self, part10: bytes) -> str:
        boundary = "skinvault-stow-boundary"
        body = (
            f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            + part10
            + f"\r\n--{boundary}--\r\n".encode()
        )
        url = self.base_url.rstrip("/") + "/studies"
        request = urllib.request.Request(  # noqa: S310 — the scheme is checked in sender_for
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                "Accept": "application/dicom+json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                status = answer.status
        except urllib.error.HTTPError as exc:
            raise DestinationUnavailable(f"STOW-RS to {url}: refused with HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise DestinationUnavailable(f"STOW-RS to {url}: cannot connect ({exc})") from exc
        if status not in (200, 202):
            raise DestinationUnavailable(f"STOW-RS to {url}: HTTP {status}")
        return f"STOW-RS to {url}: HTTP {status}"


def sender_for(
    url: str, *, calling_aet: str = "SKINVAULT", timeout: float = TIMEOUT_SECONDS
) -> DicomSender:
    """The sender a destination URL names; :class:`ConfigError` for one we cannot use."""
    parts = urlsplit(url)
    if parts.scheme == "dicom":
        if not parts.username or not parts.hostname or not parts.port:
            raise ConfigError(f"a C-STORE destination is dicom://AET@host:port, not {url!r}")
        return CStoreSender(parts.hostname, parts.port, parts.username, calling_aet, timeout)
    if parts.scheme in ("http", "https") and parts.hostname:
        return StowRsSender(url, timeout)
    raise ConfigError(f"a DICOM destination is dicom://AET@host:port or https://…, not {url!r}")
