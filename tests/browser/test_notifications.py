"""Notifications in a real browser on a phone (390x844): the header shows the unread
count, the list fits the screen without sideways scrolling and names no detail, opening
a notice leads to its page and reads it. Screenshot: ``notifications-phone.png`` in
``test-artifacts/browser/``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from skinvault.actors import Actor, Role
from skinvault.bootstrap import bootstrap
from skinvault.config import load_settings
from skinvault.services import admin, capture, deletion, photo_store, records, share_open, sharing
from skinvault.services.care import start_care
from tests import factories
from tests.browser.test_portal import CHROMIUM, PASSWORD, PHONE, browser, server, shot

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (scripts/test installs it)",
)
__all__ = ["browser", "server"]  # fixtures used by name
NOTE = "suspected melanoma beside the scar"


def _things_happen(data: Path) -> None:
    """A clinician asks twice, a link is opened, a deletion request is decided."""
    vault = bootstrap(load_settings(data_dir=data), create=False)
    try:
        setup = Actor.system("test")
        made = admin.create_user(
            vault,
            role=Role.CLINICIAN,
            email="okafor@clinic.example",
            password=PASSWORD,
            actor=setup,
            name="Dr. Okafor",
        )
        officer = admin.create_user(
            vault,
            role=Role.ADMIN,
            email="po@clinic.example",
            password=PASSWORD,
            actor=setup,
            name="Privacy Officer",
        )
        patient_user = records.user_by_email(vault, "nina@example.org")
        assert patient_user is not None
        patient_id = records.patient_of_user(vault, patient_user.id)
        assert patient_id
        ann = Actor(patient_user.id, Role.PATIENT, "Nina")
        lee = Actor(made.user_id, Role.CLINICIAN, "Dr. Okafor")
        start_care(vault, patient_id=patient_id, member_id=lee.id, actor=setup)
        capture.ask_for_photo(vault, actor=lee, patient_id=patient_id, site="hand-left", note=NOTE)
        stored = photo_store.store_photo(
            vault,
            patient_id=patient_id,
            data=factories.jpeg(),
            actor=ann,
            site="hand-left",
            note=NOTE,
        )
        link = sharing.create_share_link(
            vault, photo_id=stored.id, actor=ann, recipient="GP", expires_in=timedelta(days=1)
        )
        share_open.open_share_link(vault, token=link.token)
        filed = deletion.file_request(
            vault,
            patient_id=patient_id,
            scope=deletion.DeletionScope.PHOTO,
            scope_ref=stored.id,
            reason="no longer needed",
            actor=ann,
        )
        deletion.decide_request(
            vault,
            request_id=filed.id,
            decision=deletion.DeletionDecision.REFUSE,
            explanation="Kept for your treatment.",
            actor=Actor(officer.user_id, Role.ADMIN, "Privacy Officer"),
        )
        capture.ask_for_photo(vault, actor=lee, patient_id=patient_id, site="back")
    finally:
        vault.close()


def test_the_notification_list_on_a_phone(server: tuple[str, Path], browser: object) -> None:
    base, data = server
    context = browser.new_context(viewport=PHONE, base_url=base)  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto("/signup")
    page.get_by_label("Your name").fill("Nina Example")
    page.get_by_label("E-mail").fill("nina@example.org")
    page.get_by_label("Password (at least 12 characters)").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/portal")
    _things_happen(data)

    page.goto("/portal")
    header_link = page.get_by_role("link", name="Notifications, 4 new")
    assert header_link.is_visible()
    header_link.click()
    page.wait_for_url("**/portal/notifications")
    assert page.get_by_role("heading", name="Notifications").is_visible()
    text = page.locator("main").inner_text()
    assert "4 new" in text
    assert "Your deletion request was decided: refused." in text
    assert "A link you sent was opened." in text
    for secret in ("melanoma", "scar", "okafor", "hand"):
        assert secret not in text.lower()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the list is {width}px wide on a {PHONE['width']}px screen"
    buttons = page.get_by_role("button", name="Open")
    assert buttons.count() == 4
    box = buttons.first.bounding_box()
    assert box is not None and box["height"] >= 44  # a finger-sized target
    shot(page, "notifications-phone")

    buttons.first.click()  # the newest: a photo asked for -> the home page with the request
    page.wait_for_url("**/portal")
    assert page.get_by_role("link", name="Notifications, 3 new").is_visible()
    page.goto("/portal/notifications")
    page.get_by_role("button", name="Mark all as read").click()
    page.wait_for_url("**/portal/notifications")
    assert "Nothing new" in page.locator("main").inner_text()
    assert page.get_by_role("link", name="Notifications", exact=True).is_visible()
    page.get_by_role("link", name="Choose which notices you get, and how").click()
    page.get_by_label("A link you sent was opened.").select_option("off")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved.").wait_for()
    shot(page, "notification-choices-phone")
    context.close()
