"""The body-site vocabulary: closed, coded, and every old free-text site has a home."""

from __future__ import annotations

import re

import pytest

from skinvault.tracking import sites

OLD_SITES = [
    "face",
    "scalp",
    "neck",
    "chest",
    "abdomen",
    "back",
    "left-arm",
    "right-arm",
    "left-hand",
    "right-hand",
    "left-leg",
    "right-leg",
    "left-foot",
    "right-foot",
    "genital-area",
    "other",
]


def test_codes_are_url_safe_and_unique_labels() -> None:
    labels = [s.label for s in sites.SITES.values()]
    assert len(labels) == len(set(labels))
    for code, site in sites.SITES.items():
        assert site.code == code
        assert re.fullmatch(r"[a-z][a-z-]*[a-z]", code)
        assert len(code) <= 64


_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]


def _sctid_ok(code: str) -> bool:
    """Digits, partition 00 (international concept), valid Verhoeff check digit."""
    if not (code.isdigit() and 6 <= len(code) <= 18 and code[-3:-1] == "00"):
        return False
    c = 0
    for i, ch in enumerate(reversed(code)):
        c = _D[c][_P[i % 8][int(ch)]]
    return c == 0


def test_snomed_ids_are_well_formed_sctids() -> None:
    codes = {s.snomed_code for s in sites.SITES.values()}
    codes |= {c for c, _ in sites.LATERALITY_SNOMED.values()}
    for code in codes:
        assert _sctid_ok(code), code


def test_check_digit_validator_fails_on_typos() -> None:
    assert _sctid_ok("73897004")  # skin of face
    assert not _sctid_ok("73897005")
    assert not _sctid_ok("73987004")
    assert not _sctid_ok("7389704")


def test_paired_regions_carry_laterality() -> None:
    left = sites.get("forearm-back-left")
    right = sites.get("forearm-back-right")
    assert (left.laterality, right.laterality) == ("left", "right")
    assert left.snomed_code == right.snomed_code == "41550009"
    assert left.laterality_snomed == ("7771000", "Left")
    assert right.laterality_snomed == ("24028007", "Right")
    assert sites.get("face").laterality is None
    assert sites.get("face").laterality_snomed is None


@pytest.mark.parametrize("old", OLD_SITES)
def test_every_old_site_maps_into_the_vocabulary(old: str) -> None:
    site = sites.from_legacy(old)
    assert site.code in sites.SITES
    if old.startswith("left-"):
        assert site.laterality == "left"
    if old.startswith("right-"):
        assert site.laterality == "right"


def test_unknown_free_text_becomes_other_and_codes_pass_through() -> None:
    assert sites.from_legacy("behind my knee, small spot").code == "other"
    assert sites.from_legacy(None).code == "other"
    assert sites.from_legacy("Left Foot").code == "foot-left"
    assert sites.from_legacy("shin-right").code == "shin-right"
    assert not sites.is_site("left-arm")
    assert sites.is_site("arm-left")


def test_both_views_have_sites() -> None:
    assert sites.by_view("front") and sites.by_view("back")
    assert len(sites.choices()) == len(sites.SITES)
