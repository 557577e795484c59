"""residue.strings() finds exactly what its former regular expressions found (issue 11).

strings() now searches a byte-class copy of each blob for literal runs instead of running
``[\\x20-\\x7e]{6,}``, ``(?:[\\x20-\\x7e]\\x00){6,}`` and the embedded-JPEG ``re.sub`` over the
raw bytes. The old code is kept here, verbatim, as the oracle: every removed string it
collected (and so every leftover the verify step refuses) must still be collected.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skinvault.photos import jpeg, residue

_RUN = re.compile(rb"[\x20-\x7e]{%d,}" % residue.MIN_LENGTH)
_UTF16 = re.compile(rb"(?:[\x20-\x7e]\x00){%d,}" % residue.MIN_LENGTH)
_EMBEDDED_JPEG = re.compile(rb"\xff\xd8\xff.*?(?:\xff\xd9|\Z)", re.DOTALL)
CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"


def old_strings(*blobs: bytes) -> set[bytes]:
    out: set[bytes] = set()
    for blob in blobs:
        raw = _EMBEDDED_JPEG.sub(b"\x00", bytes(blob))
        for found in _RUN.findall(raw):
            run = found.strip()
            if len(run) >= residue.MIN_LENGTH and residue._STRUCTURE_BLOB.find(run) < 0:
                out.add(run)
        if raw.count(b"\x00") * 8 >= len(raw):
            out.update(_UTF16.findall(raw))
        if len(out) > residue._MAX_STRINGS:
            break
    return out


# Pieces that make the edge cases likely: runs just under and over six characters, UTF-16
# text, zeros, JPEG start/end markers (nested, unterminated), Huffman-table text, spaces.
PIECES = st.sampled_from(
    [
        b"Canon",
        b"Canon EOS",
        b" Jane ",
        b"Nikon\x00",
        b"S\x00m\x00i\x00t\x00h\x00",
        b"J\x00a\x00n\x00e\x00 \x00Q\x00",
        b"\x00",
        b"\x00\x00",
        b"\xff\xd8\xff",
        b"\xff\xd9",
        b"\xff",
        b"\xd8\xff\xd9",
        b"\xd9",
        b"%&'()*456789:CDEFGHIJ",
        b"http://ns.adobe.com/xap/1.0/",
        b"      ",
        b"\x7f\x80\x1f",
        b"abc",
    ]
)
BLOB = st.lists(st.one_of(PIECES, st.binary(max_size=12)), max_size=30).map(b"".join)


@settings(max_examples=600, deadline=None)
@given(st.lists(BLOB, min_size=1, max_size=3))
def test_strings_finds_what_the_former_patterns_found(blobs: list[bytes]) -> None:
    assert residue.strings(*blobs) == old_strings(*blobs)


@settings(max_examples=600, deadline=None)
@given(BLOB)
def test_the_class_search_finds_the_runs_the_pattern_finds(blob: bytes) -> None:
    # strings() picks the class search for binary blobs and the pattern for text; this
    # checks the class search on every blob, whichever branch strings() would take.
    classes = blob.translate(residue._CLASSES)
    assert list(residue._class_runs(blob, classes)) == _RUN.findall(blob)


@pytest.mark.parametrize("text_share", [0.1, 0.5, 0.74, 0.76, 0.95, 1.0])
def test_text_heavy_and_binary_blobs_alike(text_share: float) -> None:
    text = b"<rdf:li>Jane Q Patient, 12 Main St</rdf:li>\n" * 40
    binary = bytes(range(1, 32)) * 60
    cut = int(len(binary) * (1 - text_share))
    blob = text[: int(len(text) * text_share)] + binary[:cut] + b"Serial#A1B2C3\x00"
    assert residue.strings(blob) == old_strings(blob)


def test_a_camera_name_inside_and_after_an_embedded_preview() -> None:
    preview = b"\xff\xd8\xff\xe1Canon EOS 5D inside the preview\xff\xd9"
    blob = b"Model=Canon EOS R5\x00" + preview + b"Serial 0123456789" + b"\xff\xd8\xffNikon D850"
    found = residue.strings(blob)
    assert found == old_strings(blob)
    assert b"Model=Canon EOS R5" in found and b"Serial 0123456789" in found
    assert not any(b"5D" in s or b"D850" in s for s in found)  # previews are skipped


def test_an_end_marker_sharing_the_start_markers_last_byte_does_not_end_the_preview() -> None:
    # FF D8 FF D9: the FF belongs to the start marker, so no end follows and the rest of
    # the blob counts as the preview, as the former pattern had it.
    blob = b"Model=Nikon D850\x00\xff\xd8\xff\xd9Canon EOS R5 after it"
    assert residue.strings(blob) == old_strings(blob) == {b"Model=Nikon D850"}


def test_utf16_names_are_found() -> None:
    blob = b"\x01\x02" + "Jane Q Patient".encode("utf-16-le") + b"\x00\x00\x00\x00" * 8
    assert "Jane Q Patient".encode("utf-16-le") in residue.strings(blob)


@pytest.mark.parametrize(
    "name", sorted(p.name for p in CORPUS.glob("*.jpg")) if CORPUS.is_dir() else []
)
def test_the_corpus_removed_strings_are_unchanged(name: str) -> None:
    data = (CORPUS / name).read_bytes()
    try:
        out = jpeg._rewritten(data, jpeg.parse(data))
    except Exception:  # a damaged corpus file: refused earlier, nothing to compare
        pytest.skip("not parseable")
    assert residue.strings(*out.removed_bytes) == old_strings(*out.removed_bytes)
