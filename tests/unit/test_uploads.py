"""The in-memory multipart reader: exact bytes back, clear errors for broken forms."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skinvault.web.uploads import BadForm, parse_multipart

BOUNDARY = "----skinvaultBoundary7MA4YWxk"
TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def form(parts: list[tuple[str, str | None, bytes]]) -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename:
            out += b"Content-Type: image/jpeg\r\n"
        out += b"\r\n" + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


@given(st.binary(max_size=4096), st.text(max_size=50))
def test_file_bytes_and_fields_come_back_exactly(photo: bytes, note: str) -> None:
    body = form(
        [("site", None, b"left-hand"), ("note", None, note.encode()), ("file", "a.jpg", photo)]
    )
    fields, files = parse_multipart(TYPE, body)
    assert files["file"].data == photo and files["file"].filename == "a.jpg"
    assert fields == {"site": "left-hand", "note": note}


def test_data_that_looks_like_a_delimiter_but_is_not_survives() -> None:
    tricky = b"\r\n--" + BOUNDARY.encode()[:-1] + b"X\r\n\r\n--\r\n"
    _, files = parse_multipart(TYPE, form([("file", "a.jpg", tricky)]))
    assert files["file"].data == tricky


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("application/json", b"{}", "multipart/form-data"),
        ("multipart/form-data", b"x", "multipart/form-data"),
        (TYPE, b"no boundary here", "no part boundary"),
        (TYPE, form([("file", "a.jpg", b"\xff\xd8" * 100)])[:-40], "cut off"),
    ],
)
def test_broken_forms_are_refused_clearly(content_type: str, body: bytes, message: str) -> None:
    with pytest.raises(BadForm, match=message):
        parse_multipart(content_type, body)
