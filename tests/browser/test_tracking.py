"""Progress tracking in a real browser on a phone-sized screen (390 x 844).

A patient chooses the site on the body map, uploads two visits of it (the capture
date read from the photos), opens the site's series and chart, and compares the two
dates aligned: fade slider and swipe divider. Screenshots go to
``test-artifacts/browser/tracking-*.png``.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.browser.test_portal import CHROMIUM, PASSWORD, PHONE, browser, server, shot  # noqa: F401
from tests.unit.test_tracking_align import visit_jpeg as _visit

assert CHROMIUM


def test_body_map_series_chart_and_aligned_comparison(
    server: tuple[str, Path],  # noqa: F811  (fixture imported from test_portal)
    browser: object,  # noqa: F811
    tmp_path: Path,
) -> None:
    base, _ = server
    first, second = tmp_path / "visit1.jpg", tmp_path / "visit2.jpg"
    first.write_bytes(_visit(90, (0, 0), "2026:01:10 10:00:00"))
    second.write_bytes(_visit(130, (24, -15), "2026:03:07 10:00:00"))

    ctx = browser.new_context(viewport=PHONE, base_url=base)  # type: ignore[attr-defined]
    page = ctx.new_page()
    page.goto("/signup")
    page.get_by_label("Your name").fill("Tara Tracking")
    page.get_by_label("E-mail").fill("tara@example.org")
    page.get_by_label("Password (at least 12 characters)").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(re.compile(r".*/portal$"))

    for n, path in enumerate((first, second)):
        page.goto("/portal")
        select = page.get_by_label("Body site")
        assert select.input_value() == ""  # no default site
        # Choose the place on the figure: the patient's left forearm, front view.
        page.locator('[data-site-picker] a[data-site="forearm-left"]').click()
        assert select.input_value() == "forearm-left"
        page.get_by_text("Chosen: Left forearm (front)").wait_for()
        if n == 1:
            page.locator("#ghost-box").wait_for(state="visible")  # last photo as a guide
            shot(page, "tracking-01-capture-with-guide")
        page.get_by_label("Photo", exact=True).set_input_files(str(path))
        page.get_by_label("Light").select_option("daylight")
        page.get_by_role("button", name="Save photo").click()
        page.get_by_text("Saved. Hidden details were removed").wait_for()

    page.goto("/portal/body-map")
    shot(page, "tracking-02-body-map")
    page.locator('a.region.has[data-site="forearm-left"]').click()
    page.get_by_role("heading", name="Left forearm (front)").wait_for()
    # Measured in the background: reload until both figures are there.
    for _ in range(40):
        if page.locator("svg.chart circle").count() == 2:
            break
        page.wait_for_timeout(500)
        page.reload()
    assert page.locator("svg.chart circle").count() == 2
    text = page.inner_text("main")
    assert "10 January 2026" in text and "7 March 2026" in text
    assert "date from the photo" in text
    assert "A measurement aid, not a diagnosis." in text
    shot(page, "tracking-03-series-chart")

    page.get_by_role("button", name="Compare aligned").click()
    page.locator("[data-aligned=yes]").wait_for()
    top = page.locator("#overlay-top")
    page.locator("#amount").fill("80")
    assert abs(float(top.evaluate("e => getComputedStyle(e).opacity")) - 0.8) < 0.01
    shot(page, "tracking-04-compare-fade")
    page.get_by_label("Swipe").check()
    box = page.locator("#overlay").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
    assert "inset" in top.evaluate("e => e.style.clipPath")
    assert page.locator("#divider").is_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]  # nothing wider than the phone
    shot(page, "tracking-05-compare-swipe")

    # Measure the first visit again: draw the region and a part to leave out on the photo.
    page.goto("/portal/sites/forearm-left")
    entry = page.locator("ol.series > li").first
    entry.get_by_text("Correct the date or details").click()
    roi = entry.locator("[data-roi]")
    roi.locator("img").wait_for()
    page.wait_for_function(
        "el => el.complete && el.naturalWidth > 0", arg=roi.locator("img").element_handle()
    )

    def drag(x0: float, y0: float, x1: float, y1: float) -> None:
        roi.scroll_into_view_if_needed()
        box = roi.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] * x0, box["y"] + box["height"] * y0)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * x1, box["y"] + box["height"] * y1, steps=5)
        page.mouse.up()

    drag(0.1, 0.1, 0.9, 0.9)  # the region: most of the photo
    fields = [int(entry.locator(f"input[name={k}]").input_value()) for k in "xywh"]
    # In the photo's own pixels (800 x 600), not the thumbnail's, within a pixel or so.
    assert all(abs(a - b) <= 4 for a, b in zip(fields, (80, 60, 640, 480), strict=True)), fields
    entry.get_by_label("a part to leave out (hair, clothing, background)").check()
    drag(0.7, 0.1, 0.85, 0.3)
    line = entry.locator("textarea[name=exclude]").input_value().strip()
    assert len(line.split(",")) == 4, line
    assert entry.locator(".roi-box.region").count() == 1
    assert entry.locator(".roi-box.leave-out").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "tracking-06-draw-region")
    entry.get_by_role("button", name="Measure again").click()
    page.get_by_text("in the chosen region, 1 part left out").wait_for()

    # The last visit is months old: the home page says so, and its link opens the upload
    # form on that site (the faded guide of the last photo shown).
    page.goto("/portal")
    page.get_by_role("heading", name="Time for a new photo").wait_for()
    page.get_by_role("link", name="Take the next one").click()
    assert page.get_by_label("Body site").input_value() == "forearm-left"
    page.get_by_text("Chosen: Left forearm (front)").wait_for()
    page.locator("#ghost-box").wait_for(state="visible")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.goto("/portal")
    shot(page, "tracking-07-reminder")
    ctx.close()


def test_an_overexposed_photo_is_shown_as_not_measured_with_what_to_do(
    server: tuple[str, Path],  # noqa: F811
    browser: object,  # noqa: F811
    tmp_path: Path,
) -> None:
    from tests.integration.test_tracking import _jpeg
    from tests.unit.test_tracking_measure import _photo

    base, _ = server
    fine, bright = tmp_path / "fine.jpg", tmp_path / "bright.jpg"
    fine.write_bytes(_jpeg(_photo(0.1)[0], "2026:01:10 10:00:00"))
    bright.write_bytes(_jpeg(_photo(0.1, gain=1.5)[0], "2026:03:07 10:00:00"))  # flash

    ctx = browser.new_context(viewport=PHONE, base_url=base)  # type: ignore[attr-defined]
    page = ctx.new_page()
    page.goto("/signup")
    page.get_by_label("Your name").fill("Olga Overexposed")
    page.get_by_label("E-mail").fill("olga@example.org")
    page.get_by_label("Password (at least 12 characters)").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(re.compile(r".*/portal$"))
    for path in (fine, bright):
        page.goto("/portal")
        page.locator('[data-site-picker] a[data-site="forearm-left"]').click()
        page.get_by_label("Photo", exact=True).set_input_files(str(path))
        page.get_by_role("button", name="Save photo").click()
        page.get_by_text("Saved. Hidden details were removed").wait_for()

    page.goto("/portal/sites/forearm-left")
    for _ in range(40):  # measured in the background
        if "Not measured." in page.inner_text("main") and page.locator("svg.chart").count():
            break
        page.wait_for_timeout(500)
        page.reload()
    text = page.inner_text("main")
    assert "Not measured." in text and "overexposed" in text and "without flash" in text, text
    assert page.locator("svg.chart circle").count() == 1  # only the photo that was measured
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "tracking-08-not-measured")
    ctx.close()
