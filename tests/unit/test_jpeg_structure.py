"""A JPEG's structure says whether libjpeg decodes it, checked against Pillow itself.

An upload of a JPEG the scrubber calls ``decodable`` is stored without decoding its
pixels (services/photo_store.py), so the promise "every pixel of it decodes" must hold
for anything a user can send: seeded mutants of every corpus JPEG, each decoded by
Pillow (the thumbnail job's decoder) at thumbnail scale and in full. And the faults the
scrubber now refuses are faults Pillow cannot decode past.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from PIL import Image

from skinvault.errors import DamagedFile, PhotoError
from skinvault.photos import jpeg, jpeg_structure
from skinvault.photos.scrub import scrub
from tests import factories
from tests.fuzzing import mutate

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
SEEDS = sorted(p for p in CORPUS.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
#: What the scrubber says when it refuses what libjpeg stops on.
LIBJPEG_STOPS = ("which is no JPEG marker", "a second scan follows", "is no valid code")


def _pillow_decodes(data: bytes, *, full: bool) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as image:
            if not full:
                image.draft("RGB", (320, 320))
            image.load()
    except Exception:  # any failure means "does not decode"
        return False
    return True


def _noise_jpeg(**options: object) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((64, 48), 50).convert("RGB").save(buf, "JPEG", quality=90, **options)
    return buf.getvalue()


def _scan_start(data: bytes) -> int:
    sos = data.index(b"\xff\xda")
    return sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")


def _insert_in_scan(data: bytes, pair: bytes, at: int = 40) -> bytes:
    pos = _scan_start(data) + at
    while data[pos - 1] == 0xFF or data[pos] == 0x00:  # keep stuffed bytes whole
        pos += 1
    return data[:pos] + pair + data[pos:]


def test_every_decodable_mutant_decodes_and_every_refusal_is_one_pillow_cannot_decode() -> None:
    rng = random.Random(20261207)
    datas = [p.read_bytes() for p in SEEDS]
    proven = decodes_unproven = refused = 0
    for n in range(1500):
        mutant = mutate(rng, rng.choice(datas))
        try:
            out, report = scrub(mutant)
        except PhotoError as exc:
            if any(why in str(exc) for why in LIBJPEG_STOPS):
                refused += 1
                assert not _pillow_decodes(mutant, full=True), f"mutant {n}: {exc}"
            continue
        if report.decodable:
            proven += 1
            assert _pillow_decodes(out, full=False), f"mutant {n} called decodable"
            assert _pillow_decodes(out, full=True), f"mutant {n} called decodable"
        elif _pillow_decodes(out, full=False):
            decodes_unproven += 1
    # The flag is not simply False: nearly every mutant that decodes is proven to.
    assert proven >= 9 * decodes_unproven and proven > 300
    assert refused > 50  # stray markers are the commonest damage a mutant gets


def test_the_real_corpus_jpegs_are_proven_but_a_scan_with_a_stray_pair_and_restarts() -> None:
    unproven = []
    for path in SEEDS:
        out, report = scrub(path.read_bytes())
        assert _pillow_decodes(out, full=False)
        if not report.decodable:
            unproven.append(path.name)
    assert unproven == ["026-jpg-corrupted.jpg"]  # 0xFF9F in a scan with restart markers


def test_a_byte_pair_that_is_no_marker_inside_the_image_data_is_refused() -> None:
    broken = _insert_in_scan(_noise_jpeg(), b"\xff\x9f")
    assert not _pillow_decodes(broken, full=True)
    with pytest.raises(DamagedFile, match=r"cut at byte \d+ by 0xFF9F, which is no JPEG marker"):
        scrub(broken)


def test_in_a_scan_that_restarts_a_stray_pair_is_kept_but_proves_nothing() -> None:
    data = _noise_jpeg(restart_marker_blocks=2)
    assert b"\xff\xdd" in data
    out, report = scrub(_insert_in_scan(data, b"\xff\x9f"))
    assert b"\xff\x9f" in out and not report.decodable  # the upload decodes it to know
    assert scrub(data)[1].decodable


def test_a_tem_inside_the_image_data_is_kept_but_proves_nothing() -> None:
    with_tem = _insert_in_scan(_noise_jpeg(), b"\xff\x01")
    assert _pillow_decodes(with_tem, full=True)  # libjpeg skips on after a TEM
    out, report = scrub(with_tem)
    assert not report.decodable and b"\xff\x01" in out


def test_a_second_scan_after_a_whole_sequential_scan_is_refused() -> None:
    data = _noise_jpeg()
    sos = data.index(b"\xff\xda")
    header = data[sos : _scan_start(data)]
    eoi = data.rindex(b"\xff\xd9")
    doubled = data[:eoi] + header + data[_scan_start(data) : eoi] + b"\xff\xd9"
    assert not _pillow_decodes(doubled, full=True)
    with pytest.raises(DamagedFile, match="a second scan follows"):
        scrub(doubled)


def test_a_huffman_table_that_is_no_prefix_code_is_refused() -> None:
    data = _noise_jpeg()
    dht = data.index(b"\xff\xc4")
    at = dht + 5  # marker, length, class/id, then 16 counts
    counts = list(data[at : at + 16])
    move = 3 - counts[0]  # three codes of length 1, the same number of codes in all
    longer = next(i for i, c in enumerate(counts) if i and c >= move)
    counts[0], counts[longer] = 3, counts[longer] - move
    bogus = data[:at] + bytes(counts) + data[at + 16 :]
    assert not _pillow_decodes(bogus, full=True)
    with pytest.raises(DamagedFile, match="is no valid code"):
        scrub(bogus)


@pytest.mark.parametrize(
    ("make", "proven"),
    [
        (_noise_jpeg, True),
        (lambda: _noise_jpeg(progressive=True), True),
        (lambda: _noise_jpeg(subsampling=0), True),
        (lambda: factories.jpeg(orientation=6), True),
        (lambda: factories.jpeg(mode="L"), True),
        (lambda: factories.jpeg(mode="CMYK"), False),  # four components: decoded to know
    ],
    ids=["baseline", "progressive", "4:4:4", "rotated", "grey", "cmyk"],
)
def test_which_jpegs_are_proven(make: object, proven: bool) -> None:
    out, report = scrub(make())  # type: ignore[operator]
    assert report.decodable is proven
    assert _pillow_decodes(out, full=True)


def test_a_prefix_code_is_one_whose_codes_fit_their_lengths() -> None:
    assert jpeg_structure._prefix_code(bytes([2] + [0] * 15))  # "0", "1"
    assert not jpeg_structure._prefix_code(bytes([3] + [0] * 15))
    assert jpeg_structure._prefix_code(bytes([0, 4] + [0] * 14))
    assert not jpeg_structure._prefix_code(bytes([1, 3] + [0] * 14))  # 0, 10, 11, and one more


def test_the_parse_counts_strays_only_where_it_keeps_them() -> None:
    data = _insert_in_scan(_noise_jpeg(restart_marker_blocks=2), b"\xff\x9f")
    assert jpeg.parse(data).strays == 1
    assert jpeg.parse(_noise_jpeg()).strays == 0
