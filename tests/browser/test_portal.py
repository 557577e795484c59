"""The portal in a real browser: Debian's Chromium driven by Playwright against `skinvault serve`.

A patient signs up on a phone-sized screen, uploads a photo (seeing the privacy
preview first), grants and withdraws teaching consent, shares a link that a
second browser opens once, and reads who saw the photo; a clinician enrols
TOTP, signs in with it and views the photo. Screenshots of every page go to
``test-artifacts/browser/`` (or ``$SKINVAULT_ARTIFACTS``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest

from tests import factories
from tests.conftest import ROOT
from tests.ports import serve_on_free_port

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (scripts/test installs it)",
)
ARTIFACTS = Path(os.environ.get("SKINVAULT_ARTIFACTS", ROOT / "test-artifacts")) / "browser"
PASSWORD = "a long enough password"
PHONE = {"width": 390, "height": 844}


def _cli(data: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "skinvault", *args, "--data-dir", str(data)],
        input=stdin, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("vault")

    def healthy(port: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    try:  # a port taken between choosing and binding it is retried with another
        proc, port = serve_on_free_port(
            lambda port: [sys.executable, "-m", "skinvault", "serve", "--data-dir", str(data),
                          "--port", str(port)],
            ready=healthy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    except RuntimeError as exc:
        pytest.fail(f"skinvault serve did not start: {exc}")
    base = f"http://127.0.0.1:{port}"
    yield base, data
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    if proc.stdout:
        proc.stdout.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def shot(page: object, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_a_patient_and_a_clinician_use_the_portal(
    server: tuple[str, Path], browser: object, tmp_path: Path
) -> None:
    base, data = server
    photo = tmp_path / "IMG_0412.jpg"
    photo.write_bytes(factories.jpeg())

    # -- the patient, on a phone-sized screen
    patient = browser.new_context(viewport=PHONE, base_url=base)  # type: ignore[attr-defined]
    page = patient.new_page()
    page.goto("/signup")
    shot(page, "01-signup")
    page.get_by_label("Your name").fill("Ann Example")
    page.get_by_label("E-mail").fill("ann@example.org")
    page.get_by_label("Password (at least 12 characters)").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(re.compile(r".*/portal$"))
    assert page.get_by_role("heading", name="My photos").is_visible()

    page.get_by_label("Photo", exact=True).set_input_files(str(photo))
    preview = page.locator("#preview")
    preview.get_by_text("will remove these hidden details").wait_for()
    assert "GPS position" in preview.inner_text()
    assert "Jane Patient" in preview.inner_text()
    shot(page, "02-privacy-preview")
    page.get_by_label("Body site").select_option("hand-left")
    page.get_by_label("Note (anything else)").fill("day 3")
    page.get_by_role("button", name="Save photo").click()
    page.get_by_text("Saved. Hidden details were removed").wait_for()
    image = page.locator("img.photo")
    image.wait_for()
    assert page.evaluate("(img) => img.naturalWidth", image.element_handle()) == 64
    shot(page, "03-photo-saved")
    photo_url = page.url.split("?")[0]

    page.goto("/portal/consents")
    teaching = page.locator("section", has=page.get_by_role("heading", name="Teaching"))
    teaching.get_by_role("button", name="Allow teaching").click()
    teaching = page.locator("section", has=page.get_by_role("heading", name="Teaching"))
    assert "Yes" in teaching.locator(".state").inner_text()
    shot(page, "04-consent-granted")
    teaching.get_by_role("button", name="Withdraw consent for teaching").click()
    teaching = page.locator("section", has=page.get_by_role("heading", name="Teaching"))
    assert "No" in teaching.locator(".state").inner_text()
    shot(page, "05-consent-withdrawn")

    page.goto(photo_url + "?purpose=care")
    page.get_by_label("Who is it for?").fill("Dr. Gray (GP)")
    page.get_by_role("button", name="Make link").click()
    link = page.get_by_label("Share link").input_value()
    assert "/s/" in link
    shot(page, "06-share-link")

    # -- the recipient, in a separate browser with no session
    recipient = browser.new_context()  # type: ignore[attr-defined]
    other = recipient.new_page()
    other.goto(link)
    other.get_by_role("button", name="Open the photo").click()
    shared = other.locator("img.photo")
    shared.wait_for()
    assert other.evaluate("(img) => img.naturalWidth", shared.element_handle()) == 64
    shot(other, "07-link-opened")
    answer = other.goto(link)
    assert answer is not None and answer.status == 410
    assert other.get_by_text("It has already been used.").is_visible()
    shot(other, "08-link-used")
    recipient.close()

    page.goto("/portal/history")
    history = page.locator("ol.history").inner_text()
    assert "opened, through a share link" in history
    assert "You gave consent for teaching" in history
    assert "You withdrew consent for teaching" in history
    shot(page, "09-who-saw-my-photos")
    page.goto("/portal/sent")
    assert "Dr. Gray (GP)" in page.locator("table").inner_text()
    shot(page, "10-sent-log")

    # -- a clinician, set up by the administrator's one-time link, with a second factor
    made = json.loads(
        _cli(data, "admin", "users", "create", "--role", "clinician",
             "--email", "lee@clinic.example", "--name", "Dr. Lee", "--json").stdout
    )  # fmt: skip
    link = made["link"][made["link"].index("/account/") :]
    _cli(
        data, "admin", "relate", "--patient", "ann@example.org", "--clinician", "lee@clinic.example"
    )
    clinic = browser.new_context(base_url=base, viewport=PHONE)  # type: ignore[attr-defined]
    doc = clinic.new_page()
    doc.goto(link)
    shot(doc, "11-account-set-up-link")
    secret = doc.locator("#totp-secret").inner_text().strip()
    doc.get_by_label("Choose a password").fill(PASSWORD)
    doc.get_by_label("The same password again").fill(PASSWORD)
    doc.get_by_label("6-digit code").fill(pyotp.TOTP(secret).now())
    doc.get_by_role("button", name="Save").click()
    assert doc.get_by_text("Your account is ready").is_visible()
    doc.goto(link)
    assert doc.get_by_text("This link no longer works").is_visible()  # it works once

    doc.goto("/login")
    doc.get_by_label("E-mail").fill("lee@clinic.example")
    doc.get_by_label("Password").fill(PASSWORD)
    doc.get_by_role("button", name="Sign in").click()
    assert doc.get_by_text("wrong e-mail, password or code").is_visible()
    doc.get_by_label("E-mail").fill("lee@clinic.example")
    doc.get_by_label("Password").fill(PASSWORD)
    # The code typed at enrolment is spent; the next 30-second step is accepted too.
    doc.get_by_label(re.compile("Code from your authenticator")).fill(
        pyotp.TOTP(secret).at(time.time() + 30)
    )
    doc.get_by_role("button", name="Sign in").click()
    doc.wait_for_url(re.compile(r".*/portal$"))
    doc.get_by_role("link", name="Ann Example").click()
    doc.locator(".gallery a").first.click()
    viewed = doc.locator("img.photo")
    viewed.wait_for()
    assert doc.evaluate("(img) => img.naturalWidth", viewed.element_handle()) == 64
    shot(doc, "12-clinician-views-photo")
    clinic.close()

    page.goto("/portal/history")
    assert "Dr. Lee viewed your left hand photo" in page.locator("ol.history").inner_text()
    patient.close()
    assert len(list(ARTIFACTS.glob("*.png"))) >= 12
