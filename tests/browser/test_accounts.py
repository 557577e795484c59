"""Accounts in a real browser on a phone-sized screen: the administrator adds a clinician
(who gets a one-time link, never a password chosen for them), disables and enables a
user; a password-only session sees only "not set up yet"; a patient changes their
password. Screenshots go to ``test-artifacts/browser/``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest

from skinvault.actors import Actor, Role
from skinvault.bootstrap import bootstrap
from skinvault.config import load_settings
from skinvault.services import admin, totp
from tests.browser.test_portal import CHROMIUM, PASSWORD, PHONE, browser, server, shot

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (scripts/test installs it)",
)
__all__ = ["browser", "server"]  # fixtures used by name


@pytest.fixture(scope="module")
def people(server: tuple[str, Path]) -> Iterator[dict[str, str]]:
    _base, data = server
    vault = bootstrap(load_settings(data_dir=data), create=False)
    setup = Actor.system("test")
    root = admin.create_user(
        vault, role=Role.ADMIN, email="root@clinic.example", password=PASSWORD, actor=setup,
        name="Root",
    )  # fmt: skip
    secret = totp.begin_totp_enrolment(vault, root.user_id).secret
    assert totp.confirm_totp(vault, root.user_id, pyotp.TOTP(secret).now())
    admin.create_user(
        vault, role=Role.STAFF, email="nopin@clinic.example", password=PASSWORD, actor=setup,
        name="No Pin",
    )  # fmt: skip
    admin.create_user(
        vault, role=Role.PATIENT, email="pat@example.org", password=PASSWORD, actor=setup,
        name="Pat",
    )  # fmt: skip
    vault.close()
    yield {"root_secret": secret}


def _login(page: object, email: str, code: str = "") -> None:
    page.goto("/login")  # type: ignore[attr-defined]
    page.get_by_label("E-mail").fill(email)  # type: ignore[attr-defined]
    page.get_by_label("Password").fill(PASSWORD)  # type: ignore[attr-defined]
    if code:
        page.get_by_label(re.compile("Code from your authenticator")).fill(code)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]


def test_the_administrator_adds_a_clinician_with_a_link_and_disables_a_user(
    server: tuple[str, Path], browser: object, people: dict[str, str]
) -> None:
    base, _ = server
    context = browser.new_context(base_url=base, viewport=PHONE)  # type: ignore[attr-defined]
    page = context.new_page()
    _login(page, "root@clinic.example", pyotp.TOTP(people["root_secret"]).now())
    page.wait_for_url(re.compile(r".*/portal/admin$"))
    page.get_by_role("link", name="Users and access").click()
    page.get_by_label("Role").select_option("clinician")
    page.get_by_label("Name").fill("Dr. Ink")
    page.get_by_label("E-mail").fill("ink@clinic.example")
    page.get_by_role("button", name="Create user").click()
    link = page.locator("#account-link").inner_text()
    assert re.search(r"/account/[A-Za-z0-9_-]{40,}$", link)
    shot(page, "20-admin-users-link")
    page.get_by_role("button", name="Disable pat@example.org").click()
    page.wait_for_url(re.compile(r".*/disable$"))
    assert "Disabled; every session" in page.locator("#users-report").inner_text()
    row = page.locator("tr", has_text="pat@example.org")
    assert "disabled" in row.inner_text()
    page.get_by_role("button", name="Enable pat@example.org").click()
    page.wait_for_url(re.compile(r".*/enable$"))
    assert "active" in page.locator("tr", has_text="pat@example.org").inner_text()
    shot(page, "21-admin-users-list")
    context.close()


def test_a_password_only_session_can_only_sign_out(
    server: tuple[str, Path], browser: object, people: dict[str, str]
) -> None:
    base, _ = server
    context = browser.new_context(base_url=base, viewport=PHONE)  # type: ignore[attr-defined]
    page = context.new_page()
    _login(page, "nopin@clinic.example")
    page.wait_for_url(re.compile(r".*/enrol-totp$"))
    assert page.get_by_text("set-up link your administrator gave you").is_visible()
    assert page.locator("#totp-secret").count() == 0
    shot(page, "22-second-factor-pending")
    page.goto("/portal")
    assert page.url.endswith("/enrol-totp")
    page.get_by_role("button", name="Sign out").first.click()
    page.wait_for_url(re.compile(r".*/$"))
    context.close()


def test_a_patient_changes_their_password(
    server: tuple[str, Path], browser: object, people: dict[str, str]
) -> None:
    base, _ = server
    context = browser.new_context(base_url=base, viewport=PHONE)  # type: ignore[attr-defined]
    page = context.new_page()
    _login(page, "pat@example.org")
    page.wait_for_url(re.compile(r".*/portal$"))
    page.get_by_role("link", name="My account").click()
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label(re.compile("^New password \\(")).fill("password1234")
    page.get_by_label("New password again").fill("password1234")
    page.get_by_role("button", name="Change password").click()
    page.locator("p.error").wait_for()
    assert "most common passwords" in page.locator("p.error").inner_text()
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label(re.compile("^New password \\(")).fill("a whole new passphrase")
    page.get_by_label("New password again").fill("a whole new passphrase")
    page.get_by_role("button", name="Change password").click()
    page.get_by_text("Your password is changed").wait_for()
    shot(page, "23-my-account")
    context.close()
