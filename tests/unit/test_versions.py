"""What each photo version covers and keeps: the pure planning of services/versions.py."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageCms

from skinvault.errors import RequestInvalid
from skinvault.photos.derivative import display_version, make_version
from skinvault.policy.decide import Obligation
from skinvault.services.versions import (
    DISPLAY,
    Detected,
    Markup,
    NeedsDetection,
    Plan,
    Refusal,
    describe_kind,
    parse_box,
    plan_version,
    version_kind,
)
from tests import factories

FACE = Detected("face", (10, 10, 40, 40), 0.9)
UNSURE = Detected("face", (200, 10, 30, 30), 0.25)
TEXT = Detected("text", (5, 300, 120, 20), 0.8)
CHECKED = Detected("text-checked", (0, 0, 0, 0), 0.0)


@pytest.mark.parametrize(
    ("obligations", "fmt", "browser", "kind"),
    [
        (set(), "jpeg", True, None),
        (set(), "heif", False, None),  # a download of the original stays the original
        (set(), "heif", True, DISPLAY),
        (set(), "tiff", True, DISPLAY),
        (set(), "png", True, None),
        ({Obligation.REVIEW}, "jpeg", True, None),
        ({Obligation.DEIDENTIFIED}, "jpeg", False, "deidentified"),
        ({Obligation.NO_FACE}, "heif", True, "face_free"),
        ({Obligation.CROPPED}, "jpeg", False, "cropped"),
        ({Obligation.NO_FACE, Obligation.CROPPED}, "jpeg", False, "face_free+cropped"),
        # de-identified covers faces already: no separate face-free part
        ({Obligation.DEIDENTIFIED, Obligation.NO_FACE}, "jpeg", False, "deidentified"),
        ({Obligation.DEIDENTIFIED, Obligation.CROPPED}, "jpeg", False, "deidentified+cropped"),
    ],
)
def test_the_version_follows_the_obligations_and_the_browser(
    obligations: set[Obligation], fmt: str, browser: bool, kind: str | None
) -> None:
    assert version_kind(obligations, photo_format=fmt, for_browser=browser) == kind


def test_every_kind_fits_the_derivatives_column_and_the_seal_label() -> None:
    kinds = {
        version_kind(o, photo_format="heif", for_browser=True)
        for o in ({Obligation.DEIDENTIFIED, Obligation.CROPPED}, {Obligation.NO_FACE,
                  Obligation.CROPPED}, set())
    }  # fmt: skip
    assert all(k and len(k) <= 20 and "/" not in k for k in kinds)


def test_cropped_without_an_area_is_refused_with_a_reason_a_patient_can_read() -> None:
    got = plan_version("cropped", Markup(detected=(FACE,)))
    assert isinstance(got, Refusal)
    assert "no area has been chosen" in got.reason and "photo's page" in got.reason
    assert isinstance(plan_version("deidentified+cropped", Markup()), Refusal)


def test_covering_faces_needs_the_detector_first_and_text_too_when_deidentified() -> None:
    assert plan_version("face_free", Markup()) == NeedsDetection(text=False)
    assert plan_version("deidentified", Markup()) == NeedsDetection(text=True)
    # faces checked but text never looked at: a de-identified version must look again
    assert plan_version("deidentified", Markup(detected=(FACE,))) == NeedsDetection(text=True)
    assert isinstance(plan_version("face_free", Markup(detected=())), Plan)


def test_face_free_covers_faces_and_added_boxes_but_not_text() -> None:
    markup = Markup(detected=(FACE, TEXT, CHECKED), added=((1, 2, 3, 4),), confirmed_by="u1")
    plan = plan_version("face_free", markup)
    assert isinstance(plan, Plan)
    assert plan.cover == (FACE.box, (1, 2, 3, 4))
    assert plan.crop is None and plan.colour_profile and plan.confirmed_by == "u1"


def test_deidentified_covers_text_too_and_drops_the_colour_profile() -> None:
    plan = plan_version("deidentified+cropped",
                        Markup(detected=(FACE, TEXT, CHECKED), crop=(0, 0, 100, 100)))  # fmt: skip
    assert isinstance(plan, Plan)
    assert set(plan.cover) == {FACE.box, TEXT.box}
    assert plan.crop == (0, 0, 100, 100) and not plan.colour_profile


def test_only_an_unsure_hit_can_be_dismissed() -> None:
    markup = Markup(detected=(FACE, UNSURE), dismissed=(UNSURE.box, FACE.box))
    plan = plan_version("face_free", markup)
    assert isinstance(plan, Plan)
    assert plan.cover == (FACE.box,)  # the sure face stays covered even if listed


def test_a_changed_markup_changes_the_spec_so_the_old_version_is_not_served() -> None:
    one = plan_version("cropped", Markup(crop=(0, 0, 10, 10)))
    two = plan_version("cropped", Markup(crop=(0, 0, 10, 11)))
    assert isinstance(one, Plan) and isinstance(two, Plan)
    assert one.spec_json() != two.spec_json()
    assert one.spec_json() == plan_version("cropped", Markup(crop=(0, 0, 10, 10))).spec_json()  # type: ignore[union-attr]


def test_display_needs_nothing() -> None:
    assert plan_version(DISPLAY, Markup()) == Plan(DISPLAY)


@pytest.mark.parametrize("text", ["10,20,30,40", "10 20 30 40", " 10, 20 ,30, 40 "])
def test_a_box_is_read_from_what_a_person_types(text: str) -> None:
    assert parse_box(text) == (10, 20, 30, 40)


@pytest.mark.parametrize("text", ["", "1,2,3", "a,b,c,d", "1,2,0,4", "-1,2,3,4", "1,2,3,4,5"])
def test_a_box_that_is_no_area_is_refused_plainly(text: str) -> None:
    with pytest.raises(RequestInvalid, match="x, y, width and height"):
        parse_box(text)


def test_kinds_have_plain_words() -> None:
    assert describe_kind("deidentified+cropped").startswith("de-identified")
    assert "cropped" in describe_kind("deidentified+cropped")
    assert "browsers" in describe_kind(DISPLAY)


# -- the image work (photos/derivative.py): bytes in, bytes out ---------------------------


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_a_version_covers_the_box_crops_and_is_a_metadata_free_jpeg() -> None:
    made = make_version(factories.jpeg(), cover=[(8, 8, 16, 16)], crop=(0, 0, 40, 40),
                        colour_profile=True)  # fmt: skip
    image = _open(made.data)
    assert image.format == "JPEG" and image.size == (40, 40) == made.size
    assert image.getexif() == {} and "comment" not in image.info
    x, y, w, h = made.covered[0]
    assert w >= 16 and h >= 16  # padded, never smaller than asked
    assert image.crop((x, y, x + w, y + h)).convert("L").getextrema() == (0, 0)


def test_without_the_colour_profile_nothing_but_pixels_is_written() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = factories.jpeg(icc=icc)
    kept = make_version(source, cover=[], crop=None, colour_profile=True)
    assert _open(kept.data).info.get("icc_profile")
    bare = make_version(source, cover=[], crop=None, colour_profile=False)
    assert not _open(bare.data).info.get("icc_profile")


def test_a_heif_photo_gets_a_jpeg_display_version_of_the_same_size() -> None:
    source = factories.heif()
    made = display_version(source)
    assert made.data[:2] == b"\xff\xd8" and made.size == _open(source).size
