"""The upload preview in a real browser on a phone-sized screen: the photo with its boxes,
covering a box, drawing a cover, cropping, saving — and an upload done by keyboard alone.

Screenshots go to ``test-artifacts/browser/`` (or ``$SKINVAULT_ARTIFACTS``), like
``test_portal.py``'s.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.browser import test_portal
from tests.browser.test_accessibility import AXE, check_page
from tests.browser.test_portal import PASSWORD, PHONE, shot
from tests.conftest import ROOT

pytestmark = test_portal.pytestmark
server = test_portal.server  # the same live server and browser fixtures
browser = test_portal.browser
ACTIVE_ID = "() => document.activeElement && document.activeElement.id"

LETTER = ROOT / "bench" / "clues_set" / "text-letter-table.jpg"  # 2000 × 1500, 9 text lines


def _sign_up(page: object, email: str) -> None:
    page.goto("/signup")  # type: ignore[attr-defined]
    page.get_by_label("Your name").fill("Ann Example")  # type: ignore[attr-defined]
    page.get_by_label("E-mail").fill(email)  # type: ignore[attr-defined]
    page.get_by_label("Password (at least 12 characters)").fill(PASSWORD)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Create account").click()  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r".*/portal$"))  # type: ignore[attr-defined]


def test_the_preview_shows_the_boxes_and_saves_the_covers_and_the_crop(
    server: tuple[str, Path], browser: object
) -> None:
    base, _data = server
    # bypass_csp only so that axe-core can be injected for the check of the preview below.
    context = browser.new_context(viewport=PHONE, base_url=base, bypass_csp=True)  # type: ignore[attr-defined]
    page = context.new_page()
    _sign_up(page, "ann.preview@example.org")
    page.get_by_label("Photo", exact=True).set_input_files(str(LETTER))
    preview = page.locator("#preview")
    shown = preview.locator("img[src^='/portal/drafts/']")
    shown.wait_for(timeout=60_000)
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=shown.element_handle()
    )
    boxes = preview.locator("svg rect.box.text")
    assert boxes.count() >= 8  # the letter's lines are drawn
    assert preview.locator("svg rect.box.covered").count() == boxes.count()  # sure: covered
    assert page.locator("#file").is_disabled()  # the save will not send the file again
    # the photo fits the phone's width
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "preview-01-boxes")
    if AXE.exists():  # the preview is a page state no route walk reaches: checked here
        assert check_page(page) == []

    first = preview.get_by_role("checkbox").first
    first.uncheck()  # this one stays visible
    assert preview.locator("svg rect.box.covered").count() == boxes.count() - 1

    svg = preview.locator("svg[data-overlay]")
    svg.scroll_into_view_if_needed()
    area = svg.bounding_box()
    assert area
    # draw a cover over the lower left corner (the table), by dragging
    page.mouse.move(area["x"] + area["width"] * 0.05, area["y"] + area["height"] * 0.80)
    page.mouse.down()
    page.mouse.move(area["x"] + area["width"] * 0.15, area["y"] + area["height"] * 0.90, steps=5)
    page.mouse.up()
    assert preview.get_by_text("Your cover 1 at").is_visible()
    # crop to the middle, by dragging with the crop tool
    preview.get_by_label("crop to the area in question").check()
    svg.scroll_into_view_if_needed()
    area = svg.bounding_box()  # checking the radio button scrolled the page
    assert area
    page.mouse.move(area["x"] + area["width"] * 0.10, area["y"] + area["height"] * 0.10)
    page.mouse.down()
    page.mouse.move(area["x"] + area["width"] * 0.90, area["y"] + area["height"] * 0.95, steps=5)
    page.mouse.up()
    crop = [int(preview.locator(f"#crop_{k}").input_value()) for k in "xywh"]
    assert 1500 < crop[2] <= 1700 and 1200 < crop[3] <= 1300, crop
    shot(page, "preview-02-covered-and-cropped")

    page.get_by_label("Body site").select_option("hand-left")
    page.get_by_role("button", name="Save photo").click()
    page.get_by_text("Saved. Hidden details were removed").wait_for(timeout=60_000)
    size = page.locator("dt:text('Size') + dd").inner_text()
    assert size.startswith(f"{crop[2]} × {crop[3]}"), size
    shot(page, "preview-03-saved")
    context.close()


def test_an_upload_is_done_by_keyboard_alone(server: tuple[str, Path], browser: object) -> None:
    base, _data = server
    context = browser.new_context(viewport=PHONE, base_url=base)  # type: ignore[attr-defined]
    page = context.new_page()
    _sign_up(page, "kim.keys@example.org")
    page.locator("body").focus()
    for _ in range(40):  # Tab to the photo field
        page.keyboard.press("Tab")
        if page.evaluate(ACTIVE_ID) == "file":
            break
    else:
        raise AssertionError("the photo field cannot be reached with Tab")
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(str(LETTER))
    page.locator("#preview img[src^='/portal/drafts/']").wait_for(timeout=60_000)

    def tab_to(element_id: str) -> None:
        for _ in range(80):
            page.keyboard.press("Tab")
            if (
                page.evaluate("() => document.activeElement && document.activeElement.id")
                == element_id
            ):
                return
        raise AssertionError(f"#{element_id} cannot be reached with Tab")

    # a cover and a crop typed in, the body site chosen, saved: all with keys
    for key, value in zip("xywh", ("100", "1200", "300", "200"), strict=True):
        tab_to(f"add_{key}")
        page.keyboard.type(value)
    page.keyboard.press("Tab")  # "Add this cover"
    page.keyboard.press("Enter")
    assert page.get_by_text("Your cover 1 at 100,1200").is_visible()
    for key, value in zip("xywh", ("0", "0", "1000", "800"), strict=True):
        tab_to(f"crop_{key}")
        page.keyboard.type(value)
    tab_to("site")
    page.keyboard.press("ArrowDown")  # the first place in the list
    assert page.locator("#site").input_value() != ""
    shot(page, "preview-04-keyboard")
    tab_to("note")
    page.keyboard.type("typed only")
    for _ in range(5):
        page.keyboard.press("Tab")
        name = page.evaluate("() => document.activeElement && document.activeElement.textContent")
        if name and "Save photo" in name:
            break
    page.keyboard.press("Enter")
    page.get_by_text("Saved. Hidden details were removed").wait_for(timeout=60_000)
    assert page.locator("dt:text('Size') + dd").inner_text().startswith("1000 × 800")
    shot(page, "preview-05-keyboard-saved")
    context.close()


def test_the_preview_warns_of_overexposed_skin_before_the_save(
    server: tuple[str, Path], browser: object, tmp_path: Path
) -> None:
    from tests.integration.test_tracking import _jpeg
    from tests.unit.test_tracking_measure import _photo

    base, _data = server
    bright = tmp_path / "flash.jpg"
    bright.write_bytes(_jpeg(_photo(0.1, gain=1.5)[0]))  # red clipped on the skin
    context = browser.new_context(viewport=PHONE, base_url=base)  # type: ignore[attr-defined]
    page = context.new_page()
    _sign_up(page, "flash.preview@example.org")
    page.get_by_label("Photo", exact=True).set_input_files(str(bright))
    warning = page.locator("#preview [data-capture-warning]")
    warning.wait_for(timeout=60_000)
    assert "overexposed" in warning.inner_text() and warning.is_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "preview-05-overexposed")
    context.close()
