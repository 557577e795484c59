"""Reading a multipart upload into memory with a hard size cap.

Starlette spools uploads over 1 MB to a temporary file; a photo's plaintext
must never touch the disk, so uploads are read here instead: the body is
streamed into memory, refused as soon as it passes the cap, then parsed.

    >>> fields, files = parse_multipart(content_type, body)     # doctest: +SKIP
    >>> files["file"].data[:3]
    b'\\xff\\xd8\\xff'
"""

from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass

from starlette.requests import Request

from skinvault.errors import PhotoError, TooLarge

#: Room for the multipart framing and the small text fields around the file.
FORM_OVERHEAD = 64 * 1024


class BadForm(PhotoError):
    """The upload is not a readable multipart form."""


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    data: bytes


Form = tuple[dict[str, str], dict[str, UploadedFile]]


def parse_multipart(content_type: str, body: bytes) -> Form:
    """Fields and files of a ``multipart/form-data`` body held in memory."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise BadForm("send the photo as multipart/form-data with a field named “file”")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise BadForm("the upload form could not be read")
    fields: dict[str, str] = {}
    files: dict[str, UploadedFile] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files[name] = UploadedFile(filename, data)
        else:
            fields[name] = data.decode("utf-8", "replace")
    return fields, files


async def read_body(request: Request, cap: int) -> bytes:
    """The whole body, refusing (before reading on) anything larger than ``cap``."""
    limit = cap + FORM_OVERHEAD
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the upload is {int(declared):,} bytes; the limit is {cap:,} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the upload is larger than the limit of {cap:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form(request: Request, cap: int) -> Form:
    body = await read_body(request, cap)
    return parse_multipart(request.headers.get("content-type", ""), body)
