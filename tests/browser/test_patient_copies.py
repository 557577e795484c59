"""The patient's own copies in a real browser on a phone-sized screen: the upload receipt
(shown and downloaded, its signature checked), "check a copy" hashing the file in the
browser, the encrypted archive downloaded with progress and opened by Debian's 7z, and the
public copy downloaded with its faces covered.

Screenshots go to ``test-artifacts/browser/`` (or ``$SKINVAULT_ARTIFACTS``), like
``test_portal.py``'s.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

from PIL import Image

from skinvault.actors import Actor, Role
from skinvault.audit.chain import public_key_hex
from skinvault.bootstrap import bootstrap
from skinvault.config import load_settings
from skinvault.services import photo_store, receipts, records
from tests import factories
from tests.browser import test_portal
from tests.browser.test_accessibility import check_page
from tests.browser.test_portal import PASSWORD, PHONE, shot
from tests.conftest import ROOT

FACES = ROOT / "bench" / "clues_set" / "dlib-2008_002506.jpg"  # three faces (PASCAL VOC)
PASSPHRASE = "marmalade under the old pier"

pytestmark = test_portal.pytestmark
server = test_portal.server  # the same live server and browser fixtures
browser = test_portal.browser


def _fits(page: object) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")  # type: ignore[attr-defined]
    assert width <= PHONE["width"], f"the page is {width} px wide on a {PHONE['width']} px phone"


def _photo_with_metadata(path: Path) -> bytes:
    with Image.open(FACES) as image:
        out = io.BytesIO()
        image.convert("RGB").save(out, "JPEG", quality=92, exif=factories.gps_exif())
    path.write_bytes(out.getvalue())
    return out.getvalue()


def test_receipt_check_a_copy_archive_and_public_copy_on_a_phone(
    server: tuple[str, Path], browser: object, tmp_path: Path
) -> None:
    base, data = server
    context = browser.new_context(viewport=PHONE, base_url=base, accept_downloads=True)  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto("/signup")
    page.get_by_label("Your name").fill("Cleo Copies")
    page.get_by_label("E-mail").fill("cleo.copies@example.org")
    page.get_by_label("Password (at least 12 characters)").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(re.compile(r".*/portal$"))

    # The photo is saved through the service (the upload form has its own browser tests).
    chosen = tmp_path / "IMG_2231.jpg"
    raw = _photo_with_metadata(chosen)
    vault = bootstrap(load_settings(data_dir=data))
    user = records.user_by_email(vault, "cleo.copies@example.org")
    assert user is not None
    patient_id = records.patient_of_user(vault, user.id)
    assert patient_id
    me = Actor(user.id, Role.PATIENT, "Cleo Copies")
    stored = photo_store.store_photo(vault, patient_id=patient_id, data=raw, actor=me, site="back")
    key = public_key_hex(vault.keys.signing_key())

    # -- the receipt, from the photo list
    page.goto("/portal")
    page.get_by_role("link", name=re.compile("^Receipt of the")).first.click()
    page.wait_for_url(re.compile(r".*/receipt$"))
    assert page.get_by_role("heading", name="Upload receipt").is_visible()
    assert page.locator("[data-hash=original]").inner_text().strip() == receipts.sha256_of(raw)
    _fits(page)
    shot(page, "copies-01-receipt")
    with page.expect_download() as got:
        page.get_by_role("link", name="Download the receipt").click()
    text = Path(got.value.path()).read_text(encoding="utf-8")
    assert receipts.verify_text(text, key) and stored.id in text
    assert page.get_by_role("link", name="← Back to the photo").is_visible()

    # -- check a copy: the file is hashed in the browser, only the SHA-256 is sent
    page.goto("/portal")
    page.get_by_role("link", name="My copies").click()
    page.get_by_role("link", name="Check a copy").click()
    sent: list[bytes] = []
    page.on(
        "request", lambda r: sent.append(r.post_data_buffer or b"") if r.method == "POST" else None
    )
    page.get_by_label("The photo to check").set_input_files(str(chosen))
    page.get_by_role("button", name="Check", exact=True).click()
    page.get_by_text("Yes: this is a photo in your record").wait_for()
    assert "the file was not sent" in page.locator("#check-result").inner_text()
    assert (
        sent
        and all(raw[1000:1064] not in body for body in sent)
        and all(len(body) < 4096 for body in sent)
    )
    _fits(page)
    shot(page, "copies-02-check-a-copy")
    other = tmp_path / "other.png"
    other.write_bytes(factories.png())
    page.get_by_label("The photo to check").set_input_files(str(other))
    page.get_by_role("button", name="Check", exact=True).click()
    page.get_by_text("No: this file is not a photo in your record").wait_for()

    # -- the archive, with a progress bar, then opened by 7z
    page.goto("/portal/archive")
    page.get_by_label(re.compile("^Passphrase")).fill(PASSPHRASE)
    page.get_by_label("The same passphrase again").fill(PASSPHRASE)
    with page.expect_download(timeout=120_000) as got:
        page.get_by_role("button", name="Make and download the archive").click()
    archive = tmp_path / got.value.suggested_filename
    got.value.save_as(str(archive))
    assert archive.name.endswith(".7z")
    page.locator("[data-progress-text][data-done]").wait_for()
    assert "Downloaded skinvault-archive-" in page.locator("[data-progress-text]").inner_text()
    _fits(page)
    shot(page, "copies-03-archive")
    seven = shutil.which("7z")
    assert seven, "Debian's 7z (p7zip-full) is needed (scripts/test installs it)"
    wrong = subprocess.run([seven, "t", "-pwrong passphrase", str(archive)], capture_output=True,
                           check=False)  # fmt: skip
    assert wrong.returncode != 0
    opened = tmp_path / "opened"
    done = subprocess.run([seven, "x", f"-p{PASSPHRASE}", f"-o{opened}", str(archive)],
                          capture_output=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (opened / "README.txt").exists() and list((opened / "photos").glob("01-back-*.jpg"))

    # -- the public copy, from the photo page
    page.goto(f"/portal/photos/{stored.id}?purpose=care")
    page.get_by_role("link", name="Make a public copy").click()
    assert page.get_by_text("Tattoos, birthmarks, scars and moles").is_visible()
    with page.expect_download(timeout=120_000) as got:
        page.get_by_role("button", name="Make and download the public copy").click()
    assert got.value.suggested_filename == "back-public-copy.jpg"
    copy = Path(got.value.path()).read_bytes()
    page.locator("[data-progress-text][data-done]").wait_for()
    assert "area(s) covered" in page.locator("[data-progress-text]").inner_text()
    _fits(page)
    shot(page, "copies-04-public-copy")
    with Image.open(io.BytesIO(copy)) as image:
        assert not image.getexif()  # no EXIF at all (exiftool checks in the integration test)
        face = image.convert("L").crop((329, 78, 329 + 109, 78 + 109))  # dlib's first box
        assert face.getextrema()[1] < 40
    assert receipts.sha256_of(copy) != receipts.sha256_of(raw)
    context.close()

    # -- every page of the copies passes axe-core (injected, so this context skips the CSP)
    checked = browser.new_context(viewport=PHONE, base_url=base, bypass_csp=True)  # type: ignore[attr-defined]
    page = checked.new_page()
    page.goto("/login")
    page.get_by_label("E-mail").fill("cleo.copies@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/portal$"))
    problems = []
    for url in ("/portal/copies", f"/portal/photos/{stored.id}/receipt", "/portal/check-copy",
                "/portal/archive", f"/portal/public-copy?photo={stored.id}"):  # fmt: skip
        page.goto(url)
        problems += [f"{url}: {p}" for p in check_page(page)]
    assert problems == [], problems
    checked.close()
    vault.close()
