"""What a patient, a clinician and an administrator notice on a phone (390 x 844), issue 14's
"polish" list: the admin pages fit and their buttons can be tapped, a deletion request is
chosen (never "all" by default) and confirmed, the sent log and the deletion list say which
photo, "who saw my photos" has one line per visit, sites read as the vocabulary's labels,
the clinician's patient page names the patient, "training AI models", and the consent
receipt has the portal's layout and a way back. Screenshots go to
``test-artifacts/browser/polish/``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser.test_accessibility import World, _sign_in, world
from tests.browser.test_portal import ARTIFACTS, CHROMIUM, PHONE, browser, server

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (scripts/test installs it)",
)
__all__ = ["browser", "server", "world"]  # fixtures used by name
SHOTS = ARTIFACTS / "polish"
#: The image's natural width once it has loaded (0 if it failed).
LOADED = """i => i.complete ? i.naturalWidth : new Promise(done => {
  i.addEventListener("load", () => done(i.naturalWidth));
  i.addEventListener("error", () => done(0)); })"""


def _shot(page: object, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def _context(browser: object, base: str) -> object:
    return browser.new_context(base_url=base, viewport=PHONE)  # type: ignore[attr-defined]


def _width(page: object) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))  # type: ignore[attr-defined]


def _small_buttons(page: object) -> list[str]:
    """Visible buttons (and button-like links) smaller than a 44 x 44 px tap target."""
    found = page.evaluate(  # type: ignore[attr-defined]
        """() => [...document.querySelectorAll('main button, main .button, header button')]
          .filter(b => b.offsetParent !== null)
          .map(b => [b.innerText.trim(), b.getBoundingClientRect()])
          .filter(([, r]) => r.height < 44 || r.width < 44)
          .map(([t, r]) => `${t} (${Math.round(r.width)}x${Math.round(r.height)})`)"""
    )
    return list(found)


def test_the_admin_pages_fit_a_phone_and_their_buttons_can_be_tapped(
    server: tuple[str, Path], browser: object, world: World
) -> None:
    base, _ = server
    context = _context(browser, base)
    page = context.new_page()  # type: ignore[attr-defined]
    _sign_in(page, world.emails["admin"], world.secrets["admin"])
    page.goto("/portal/admin")
    audit = page.locator("table.stack")
    assert world.ids["photo_id"][:8] in audit.inner_text()  # ids are shown short ...
    short = audit.locator(f"abbr[title='{world.ids['photo_id']}']").first
    assert short.is_visible()  # ... with the whole id in the title
    assert _width(page) <= PHONE["width"]
    assert _small_buttons(page) == []
    _shot(page, "admin-home")
    page.get_by_label(re.compile("^Find events")).fill(world.ids["photo_id"][:8])
    page.get_by_role("button", name="Search").click()
    assert "photo:store" in page.locator("table.stack").inner_text()  # the short id finds it
    page.get_by_role("button", name="Check the whole log").click()
    assert "Intact:" in page.content()
    page.get_by_role("button", name="Check the new events").click()
    assert "new events (after event" in page.content()  # only those since the last check
    assert _width(page) <= PHONE["width"]
    _shot(page, "admin-verified")
    page.goto("/portal/admin/users")
    assert _width(page) <= PHONE["width"]
    assert _small_buttons(page) == []
    assert page.get_by_role("button", name="Reset password patient@a11y.example").is_visible()
    _shot(page, "admin-users")
    context.close()  # type: ignore[attr-defined]


def test_a_deletion_request_is_chosen_and_confirmed_and_names_the_photo(
    server: tuple[str, Path], browser: object, world: World
) -> None:
    base, _ = server
    context = _context(browser, base)
    page = context.new_page()  # type: ignore[attr-defined]
    _sign_in(page, world.emails["patient"], None)
    page.goto("/portal/deletion")
    choices = page.locator("input[name=scope]")
    assert choices.count() == 3
    assert page.locator("input[name=scope]:checked").count() == 0  # nothing chosen for them
    before = page.locator("ul.requests li").count()
    page.get_by_role("button", name="Send request").click()  # the browser asks to choose
    assert page.locator("input[name=scope]").first.evaluate("e => !e.validity.valid")
    assert page.locator("ul.requests li").count() == before
    page.get_by_label("One photo").check()
    page.get_by_label("Which photo").select_option(world.ids["photo_id"])
    page.get_by_role("button", name="Send request").click()
    confirmation = page.locator("p.flash[role=status]")
    assert "Your request is sent" in confirmation.inner_text()
    newest = page.locator("ul.requests li").last
    assert re.search(r"the left forearm \(back\) photo of \d\d \w{3} \d{4}", newest.inner_text())
    assert newest.locator("img.thumb").evaluate(LOADED) > 0
    _shot(page, "deletion-confirmed")
    page.reload()
    assert page.locator("p.flash").count() == 0  # shown once
    context.close()  # type: ignore[attr-defined]


def test_the_patient_reads_which_photo_was_sent_and_one_line_per_visit(
    server: tuple[str, Path], browser: object, world: World
) -> None:
    base, _ = server
    clinic = _context(browser, base)
    doc = clinic.new_page()  # type: ignore[attr-defined]
    _sign_in(doc, world.emails["clinician"], world.secrets["clinician"])
    doc.goto(f"/portal/patients/{world.ids['patient_id']}")
    assert doc.get_by_role("heading", name="Pia Patient: photos").is_visible()
    assert "Left forearm (back)" in doc.locator(".gallery").inner_text()
    _shot(doc, "clinician-patient-page")
    for _ in range(2):  # two looks at the same photo on one day
        doc.goto(f"/portal/photos/{world.ids['photo_id']}?purpose=care")
        doc.locator("img.photo").wait_for()
    assert doc.get_by_role("heading", name="Left forearm (back)").is_visible()
    clinic.close()  # type: ignore[attr-defined]

    context = _context(browser, base)
    page = context.new_page()  # type: ignore[attr-defined]
    _sign_in(page, world.emails["patient"], None)
    page.goto("/portal")
    gallery = page.locator(".gallery").first.inner_text()
    assert "Left forearm (back) ·" in gallery  # the timeline names the site, not just a date
    assert "forearm back left" not in page.content()
    for _ in range(3):  # the patient's own looks
        page.goto(f"/portal/photos/{world.ids['photo_id']}?purpose=care")
    page.goto("/portal/sent")
    row = page.locator("table.stack tbody tr").first
    assert re.search(r"Left forearm \(back\), taken \d\d \w{3} \d{4}", row.inner_text())
    assert row.locator("img.thumb").evaluate(LOADED) > 0
    assert "Dr. Gray (GP)" in row.inner_text()
    assert _width(page) <= PHONE["width"]
    _shot(page, "sent-log")

    page.goto("/portal/history")
    lines = page.locator("ol.history li").all_inner_texts()
    by_cole = [t for t in lines if t.startswith("Dr. Cole")]
    assert len(by_cole) == 1, lines  # one line for the visit, every read counted in it
    assert re.search(r"Dr\. Cole viewed your left forearm \(back\) photo .* reads\)\.", by_cole[0])
    assert not any(t.startswith("You viewed") for t in lines)  # own looks are folded away
    own = page.locator("details.own-views")
    assert not own.locator("ol.history-own").is_visible()
    own.locator("summary").click()
    assert own.locator("ol.history-own li").first.is_visible()
    assert "You viewed" in own.inner_text()
    _shot(page, "who-saw-my-photos")
    page.goto("/portal/history?full=1")  # the whole accounting is still one tap away
    assert len(page.locator("ol.history-full li").all_inner_texts()) > len(lines)
    context.close()  # type: ignore[attr-defined]


def test_consent_wording_and_the_receipt_page(
    server: tuple[str, Path], browser: object, world: World
) -> None:
    base, _ = server
    context = _context(browser, base)
    page = context.new_page()  # type: ignore[attr-defined]
    _sign_in(page, world.emails["patient"], None)
    page.goto("/portal/consents")
    assert page.get_by_role("button", name="Allow training AI models").is_visible()
    assert "training ai models" not in page.content()
    page.get_by_role("link", name="receipt").first.click()
    assert page.get_by_role("heading", name="Consent receipt: Teaching").is_visible()
    assert page.get_by_role("navigation", name="Main").is_visible()  # the portal's layout
    assert page.evaluate("getComputedStyle(document.body).fontFamily").startswith("system-ui")
    assert _width(page) <= PHONE["width"]
    _shot(page, "consent-receipt")
    page.get_by_role("link", name="Back to my consent answers").click()
    page.wait_for_url(re.compile(r".*/portal/consents$"))
    context.close()  # type: ignore[attr-defined]
