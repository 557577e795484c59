"""Reading a multipart upload into memory with a hard size cap.

Starlette spools uploads over 1 MB to a temporary file; a photo's plaintext
must never touch the disk, so uploads are read here instead: the body is
streamed into memory, refused as soon as it passes the cap, then parsed.

    >>> fields, files = parse_multipart(content_type, body)     # doctest: +SKIP
    >>> files["file"].data[:3]
    b'\\xff\\xd8\\xff'
"""

from __future__ import annotations

import re
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


_BOUNDARY = re.compile(r'boundary="?([^";,]+)"?', re.IGNORECASE)
_NAME = re.compile(rb'[; ]name="([^"]*)"', re.IGNORECASE)
_FILENAME = re.compile(rb'filename="([^"]*)"', re.IGNORECASE)


def parse_multipart(content_type: str, body: bytes) -> Form:
    """Fields and files of a ``multipart/form-data`` body held in memory (RFC 7578).

    Delimiters are found with ``bytes.find`` (C speed): a 4 MB photo is split
    in about a millisecond, without holding the interpreter for long.
    """
    match = _BOUNDARY.search(content_type)
    if not content_type.lower().startswith("multipart/form-data") or match is None:
        raise BadForm("send the photo as multipart/form-data with a field named “file”")
    delimiter = b"--" + match.group(1).strip().encode("latin-1")
    fields: dict[str, str] = {}
    files: dict[str, UploadedFile] = {}
    pos = body.find(delimiter)
    if pos < 0:
        raise BadForm("the upload form could not be read (no part boundary)")
    while True:
        pos += len(delimiter)
        if body[pos : pos + 2] == b"--":
            return fields, files
        headers_end = body.find(b"\r\n\r\n", pos)
        following = body.find(b"\r\n" + delimiter, headers_end + 4)
        if headers_end < 0 or following < 0:
            raise BadForm("the upload form is cut off (the upload did not finish)")
        headers = body[pos:headers_end]
        content = body[headers_end + 4 : following]
        name = _NAME.search(headers)
        if name is not None:
            key = name.group(1).decode("utf-8", "replace")
            filename = _FILENAME.search(headers)
            if filename is not None:
                files[key] = UploadedFile(filename.group(1).decode("utf-8", "replace"), content)
            else:
                fields[key] = content.decode("utf-8", "replace")
        pos = following + 2


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
