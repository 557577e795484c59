"""How the portal fits a 390 x 844 phone: page width, buttons smaller than a 44 px target,
and the lines of "Who saw my photos" after a clinician's visit and the patient's own looks.

    .venv/bin/python bench/phone_pages.py                       # this checkout
    .venv/bin/python bench/phone_pages.py --quick               # the same (it takes seconds)
    PYTHONPATH=/tmp/old/src .venv/bin/python bench/phone_pages.py   # an older tree, to compare

Starts ``skinvault serve`` on a fresh data folder, seeds one administrator, one clinician
and one patient with three photos, and prints one table row per page.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pyotp
from playwright.sync_api import sync_playwright

from skinvault.actors import Actor, Role
from skinvault.bootstrap import bootstrap
from skinvault.config import load_settings
from skinvault.services import admin, care, photo_store, totp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests import factories  # noqa: E402
from tests.ports import serve_on_free_port  # noqa: E402

PASSWORD = "a long enough password"
PHONE = {"width": 390, "height": 844}
SMALL = """() => [...document.querySelectorAll('button, .button')]
  .filter(b => b.offsetParent !== null)
  .filter(b => { const r = b.getBoundingClientRect(); return r.height < 44 || r.width < 44; })
  .length"""


def _seed(data: Path) -> dict[str, str]:
    vault = bootstrap(load_settings(data_dir=data), create=True)
    setup = Actor.system("bench")
    secrets = {}
    for role, email in (("admin", "root@bench.example"), ("clinician", "lee@bench.example")):
        new = admin.create_user(
            vault, role=Role(role), email=email, password=PASSWORD, actor=setup, name=role
        )
        secret = totp.begin_totp_enrolment(vault, new.user_id).secret
        totp.confirm_totp(vault, new.user_id, pyotp.TOTP(secret).now())
        secrets[role] = secret
        if role == "clinician":
            lee = new.user_id
    pat = admin.create_user(
        vault, role=Role.PATIENT, email="pia@bench.example", password=PASSWORD, actor=setup,
        name="Pia",
    )  # fmt: skip
    assert pat.patient_id
    care.start_care(vault, patient_id=pat.patient_id, member_id=lee, actor=setup)
    pia = Actor(pat.user_id, Role.PATIENT, "Pia")
    ids = [
        photo_store.store_photo(
            vault, patient_id=pat.patient_id, data=factories.jpeg(), actor=pia, site=site
        ).id
        for site in ("forearm-back-left", "hand-left", "face")
    ]
    vault.close()
    return {**secrets, "patient_id": pat.patient_id, "photo": ids[0]}


def _sign_in(page: object, email: str, secret: str | None) -> None:
    page.goto("/login")  # type: ignore[attr-defined]
    page.get_by_label("E-mail").fill(email)  # type: ignore[attr-defined]
    page.get_by_label("Password").fill(PASSWORD)  # type: ignore[attr-defined]
    if secret:
        code = pyotp.TOTP(secret).at(time.time() + 30)
        page.get_by_label(re.compile("Code from your authenticator")).fill(code)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r".*/portal(/\w+)?$"))  # type: ignore[attr-defined]


def _row(page: object, label: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")  # type: ignore[attr-defined]
    small = page.evaluate(SMALL)  # type: ignore[attr-defined]
    print(f"{label:<34} {width:>6} px {small:>6}")


def _healthy(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
    except OSError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="accepted for CI; the run is short")
    parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="bench-phone-"))
    seeded = _seed(data)
    proc, port = serve_on_free_port(
        lambda p: [sys.executable, "-m", "skinvault", "serve", "--data-dir", str(data),
                   "--port", str(p)],
        ready=_healthy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            print(f"{'page (390 x 844)':<34} {'width':>9} {'<44px buttons':>6}")
            ctx = chromium.new_context(base_url=base, viewport=PHONE)
            page = ctx.new_page()
            _sign_in(page, "lee@bench.example", seeded["clinician"])
            page.goto(f"/portal/patients/{seeded['patient_id']}")
            for _ in range(2):
                page.goto(f"/portal/photos/{seeded['photo']}?purpose=care")
            ctx.close()
            ctx = chromium.new_context(base_url=base, viewport=PHONE)
            page = ctx.new_page()
            _sign_in(page, "root@bench.example", seeded["admin"])
            for path in ("/portal/admin", "/portal/admin/users"):
                page.goto(path)
                _row(page, f"admin {path}")
            ctx.close()
            ctx = chromium.new_context(base_url=base, viewport=PHONE)
            page = ctx.new_page()
            _sign_in(page, "pia@bench.example", None)
            for _ in range(3):
                page.goto(f"/portal/photos/{seeded['photo']}?purpose=care")
            for path in ("/portal", "/portal/history", "/portal/sent", "/portal/deletion"):
                page.goto(path)
                _row(page, f"patient {path}")
            page.goto("/portal/history")
            shown = page.locator("ol.history li").count()
            print(f"'Who saw my photos': {shown} lines shown by default after the clinician's"
                  " visit (gallery + 2 views) and 3 own looks")  # fmt: skip
            chromium.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
