"""HEIC photos show in Chromium and consent limits are served and shown, on a phone screen.

Debian's Chromium (no HEIC decoder) against `skinvault serve`: an iPhone HEIC from the
corpus renders (``naturalWidth > 0``) on the photo page, in the comparison and behind a
share link; the original still downloads as HEIC; an educator with a "no face" teaching
consent sees the face-free version; the consent page keeps the limit boxes ticked and
says what each limit means. Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from skinvault.actors import Actor, Role
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import load_settings
from skinvault.services import admin, photo_store, sharing, web_sessions
from skinvault.web.deps import SESSION_COOKIE
from tests.browser.test_portal import ARTIFACTS, CHROMIUM, PHONE, shot
from tests.conftest import ROOT
from tests.ports import serve_on_free_port

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (scripts/test installs it)",
)
HEIC = ROOT / "tests" / "data" / "corpus" / "005-heic-mobile-iphone-13-pro-max.heic"
HEIC_2 = ROOT / "tests" / "data" / "corpus" / "001-heic-img-5195.heic"
PASSWORD = "a long enough password"
OPERATOR = Actor.system("test")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("vault")

    def healthy(port: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    try:
        proc, port = serve_on_free_port(
            lambda port: [sys.executable, "-m", "skinvault", "serve", "--data-dir", str(data),
                          "--port", str(port)],
            ready=healthy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    except RuntimeError as exc:
        pytest.fail(f"skinvault serve did not start: {exc}")
    yield f"http://127.0.0.1:{port}", data
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _vault(data: Path) -> Vault:
    """The served vault, opened beside the server (same data folder, keys and database)."""
    return bootstrap(load_settings(data_dir=data))


def _person(vault: Vault, role: Role, email: str) -> tuple[Actor, str | None]:
    made = admin.create_user(
        vault, role=role, email=email, password=PASSWORD, actor=OPERATOR, name=email
    )
    return Actor(made.user_id, role, email), made.patient_id


def _sign_in(browser: object, base: str, email: str) -> object:
    context = browser.new_context(viewport=PHONE, base_url=base, accept_downloads=True)  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/portal.*"))
    return page


def _shown(page: object, selector: str = "img.photo") -> list[int]:
    """naturalWidth of every matching image once loaded (0: the browser could not show it)."""
    page.wait_for_load_state("networkidle")  # type: ignore[attr-defined]
    widths: list[int] = page.eval_on_selector_all(  # type: ignore[attr-defined]
        selector,
        "imgs => Promise.all(imgs.map(i => i.complete ? i.naturalWidth : new Promise("
        "r => { i.onload = () => r(i.naturalWidth); i.onerror = () => r(0); })))",
    )
    return widths


def test_heic_photos_show_everywhere_and_limits_are_served_and_shown(
    server: tuple[str, Path], browser: object
) -> None:
    base, data = server
    vault = _vault(data)
    try:
        patient, pid = _person(vault, Role.PATIENT, "ann@example.org")
        educator, _ = _person(vault, Role.EDUCATOR, "edu@clinic.example")
        # Educators sign in with a second factor (tested in test_accounts.py); here the
        # session is started directly so the test is about what the educator is shown.
        educator_cookie = web_sessions.start_session(vault, educator).cookie_value
        assert pid
        one = photo_store.store_photo(
            vault, patient_id=pid, data=HEIC.read_bytes(), actor=patient, site="hand-left"
        )
        two = photo_store.store_photo(
            vault, patient_id=pid, data=HEIC_2.read_bytes(), actor=patient, site="hand-left"
        )
        link = sharing.create_share_link(
            vault, photo_id=one.id, actor=patient, recipient="Dr. Second Opinion",
            expires_in=timedelta(hours=2), single_use=False,
        )  # fmt: skip
    finally:
        vault.close()

    # -- the patient: the HEIC photo on its page, in the comparison, and the original
    page = _sign_in(browser, base, "ann@example.org")
    page.goto(f"/portal/photos/{one.id}")  # type: ignore[attr-defined]
    widths = _shown(page)
    assert len(widths) == 1 and widths[0] > 0, widths
    shot(page, "versions-01-heic-photo-page")
    with page.expect_download() as download:  # type: ignore[attr-defined]
        page.get_by_role("link", name=re.compile("Download the original")).click()  # type: ignore[attr-defined]
    assert download.value.suggested_filename == "photo.heic"
    assert Path(download.value.path()).read_bytes()[4:12] == b"ftypheic"
    page.goto(f"/portal/compare?a={one.id}&b={two.id}")  # type: ignore[attr-defined]
    widths = _shown(page)
    assert len(widths) == 2 and all(w > 0 for w in widths), widths
    shot(page, "versions-02-heic-compare")

    # -- the consent page keeps the limits and says what they mean
    page.goto("/portal/consents")  # type: ignore[attr-defined]
    teaching = page.locator("section", has=page.get_by_role("heading", name="Teaching"))  # type: ignore[attr-defined]
    teaching.get_by_label("no face is visible").check()
    teaching.get_by_role("button", name=re.compile("^Allow")).click()
    page.wait_for_url(re.compile(r".*/portal/consents$"))  # type: ignore[attr-defined]
    teaching = page.locator("section", has=page.get_by_role("heading", name="Teaching"))  # type: ignore[attr-defined]
    assert teaching.get_by_label("no face is visible").is_checked()
    assert not teaching.get_by_label("cropped to the skin area").is_checked()
    state = teaching.locator(".state").inner_text()
    assert "Now: Yes, with limits: no face is visible" in state, state
    assert "every face is covered" in teaching.inner_text()
    shot(page, "versions-03-consent-limits-kept")
    page.context.close()  # type: ignore[attr-defined]

    # -- the educator gets the face-free version, and is told so
    context = browser.new_context(viewport=PHONE, base_url=base)  # type: ignore[attr-defined]
    context.add_cookies([{"name": SESSION_COOKIE, "value": educator_cookie, "url": base}])
    page = context.new_page()
    page.goto(f"/portal/photos/{one.id}?purpose=teaching")  # type: ignore[attr-defined]
    assert _shown(page)[0] > 0
    note = page.locator("[data-version]")  # type: ignore[attr-defined]
    assert note.get_attribute("data-version") == "face_free"
    assert "face-free" in note.inner_text()
    shot(page, "versions-04-educator-face-free")
    page.context.close()  # type: ignore[attr-defined]

    # -- the recipient of the share link sees a JPEG, or asks for the original
    recipient = browser.new_context(viewport=PHONE, base_url=base, accept_downloads=True)  # type: ignore[attr-defined]
    page = recipient.new_page()
    page.goto(f"/s/{link.token}")
    page.get_by_role("button", name="Open the photo").click()
    page.get_by_role("heading", name="Photo shared with you").wait_for()
    assert _shown(page)[0] > 0
    shot(page, "versions-05-share-link-heic")
    page.goto(f"/s/{link.token}")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the original file instead").click()
    assert download.value.suggested_filename == "photo.heic"
    recipient.close()
