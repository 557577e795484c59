"""Every page on a phone (390 x 844), as each role: axe-core finds no serious or critical
violation and nothing scrolls sideways. Screenshots go to ``test-artifacts/browser/a11y/``.

The page list is read from the app's own routes (every GET page of the portal, and the
public pages), so a page added later is checked without editing this file; a route with a
path parameter is filled from a seeded record, else skipped (and named in the output).
axe-core comes from npm into ``.cache/npm`` (scripts/test installs it). The checks are
first shown to fail on a page built to break them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Error as PlaywrightError

from skinvault.actors import Actor, Role
from skinvault.bootstrap import bootstrap
from skinvault.config import load_settings
from skinvault.policy.purposes import Purpose
from skinvault.services import (
    admin,
    capture,
    care,
    consents,
    deletion,
    emergency,
    photo_store,
    review,
    sharing,
    totp,
)
from skinvault.services import users as user_admin
from skinvault.web.app import create_app
from tests import factories
from tests.browser.test_portal import ARTIFACTS, CHROMIUM, PASSWORD, PHONE, browser, server
from tests.conftest import ROOT

AXE = ROOT / ".cache" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Debian's chromium is not installed (scripts/test installs it)",
    ),
    pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed (scripts/test does)"),
]
__all__ = ["browser", "server"]  # fixtures used by name
SHOTS = ARTIFACTS / "a11y"
#: Answers that are not pages: images, downloads, JSON, probes.
NOT_PAGES = re.compile(
    r"(/image|/thumbnail|/original|/content|/display|\.jpg|\.json|/metrics|/healthz|/readyz|/logout)$"
)
PUBLIC_PAGES = ("/", "/login", "/signup", "/privacy-facts", "/api/docs")
SERIOUS = ("serious", "critical")
#: Swagger UI's own markup puts the copy button inside the operation's toggle button
#: (swagger-api/swagger-ui#9576, open upstream); every other rule counts on /api/docs too.
UPSTREAM = {"/api/docs": {"nested-interactive"}}


@dataclass
class World:
    ids: dict[str, str]  # path parameter -> a seeded value
    per_path: dict[str, dict[str, str]]  # path -> parameters that differ by route
    query: str  # added to every portal page (photo pages need a purpose, compare two photos)
    secrets: dict[str, str]  # role -> TOTP secret
    emails: dict[str, str]  # role -> e-mail


def _walk(routes: list[object], prefix: str = "") -> Iterator[str]:
    """Every GET path the app answers (included routers and mounts opened up)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            yield from _walk(included.routes, prefix + str(getattr(context, "prefix", "")))
            continue
        if hasattr(route, "routes") and not hasattr(route, "methods"):
            continue  # a mount (static files)
        if "GET" in (getattr(route, "methods", None) or set()):
            yield prefix + str(getattr(route, "path", ""))


@pytest.fixture(scope="module")
def world(server: tuple[str, Path]) -> World:
    _base, data = server
    vault = bootstrap(load_settings(data_dir=data), create=False)
    setup = Actor.system("test")
    made: dict[str, str] = {}
    secrets: dict[str, str] = {}
    emails = {r: f"{r}@a11y.example" for r in ("patient", "clinician", "educator", "admin")}
    names = {"patient": "Pia Patient", "clinician": "Dr. Cole", "educator": "Prof. Ede",
             "admin": "Ada Admin"}  # fmt: skip
    for role, email in emails.items():
        new = admin.create_user(
            vault, role=Role(role), email=email, password=PASSWORD, actor=setup, name=names[role]
        )
        made[role] = new.user_id
        if role == "patient":
            assert new.patient_id
            patient_id = new.patient_id
        else:
            secret = totp.begin_totp_enrolment(vault, new.user_id).secret
            assert totp.confirm_totp(vault, new.user_id, pyotp.TOTP(secret).now())
            secrets[role] = secret
    pia = Actor(made["patient"], Role.PATIENT, names["patient"])
    cole = Actor(made["clinician"], Role.CLINICIAN, names["clinician"])
    care.start_care(vault, patient_id=patient_id, member_id=cole.id, actor=setup)
    first = photo_store.store_photo(
        vault, patient_id=patient_id, data=factories.jpeg(), actor=pia, site="forearm-back-left"
    )
    second = photo_store.store_photo(
        vault, patient_id=patient_id, data=factories.jpeg(), actor=pia, site="forearm-back-left"
    )
    consents.record_consent(
        vault, patient_id=patient_id, purpose=Purpose.TEACHING, granted=True, actor=pia
    )
    link = sharing.create_share_link(
        vault, photo_id=first.id, actor=pia, recipient="Dr. Gray (GP)",
        expires_in=timedelta(days=2), password="a link password",
    )  # fmt: skip
    deletion.file_request(
        vault, patient_id=patient_id, scope=deletion.DeletionScope.PHOTO, scope_ref=second.id,
        reason="taken by mistake", actor=pia,
    )  # fmt: skip
    capture.ask_for_photo(vault, actor=cole, patient_id=patient_id, site="hand-left")
    far = admin.create_user(
        vault, role=Role.CLINICIAN, email="far@a11y.example", password=PASSWORD, actor=setup,
        name="Dr. Far",
    )  # fmt: skip
    emergency.open_record(
        vault, actor=Actor(far.user_id, Role.CLINICIAN, "Dr. Far"), patient=emails["patient"],
        reason="Admitted unconscious to A&E, rash spreading fast",
    )  # fmt: skip
    [case] = review.cases(vault, actor=Actor(made["admin"], Role.ADMIN, names["admin"]))
    setup_link = user_admin.create_account(
        vault, actor=setup, role=Role.STAFF, email="new@a11y.example", name="New Staff"
    ).link_token
    vault.close()
    return World(
        ids={"photo_id": first.id, "patient_id": patient_id, "purpose": "teaching",
             "code": "forearm-back-left", "case_id": case.id},
        per_path={"/s/{token}": {"token": link.token},
                  "/account/{token}": {"token": setup_link}},
        query=f"?purpose=care&a={first.id}&b={second.id}",
        secrets=secrets,
        emails=emails,
    )  # fmt: skip


def page_list(world: World, data: Path) -> tuple[list[str], list[str], list[str]]:
    """(portal pages, public pages, skipped routes) from the app's own route list."""
    settings = load_settings(data_dir=data)
    vault = bootstrap(settings, create=False)
    try:
        paths = sorted(set(_walk(list(create_app(settings, vault=vault).routes))))
    finally:
        vault.close()
    portal, public, skipped = [], list(PUBLIC_PAGES), []
    for path in paths:
        if NOT_PAGES.search(path) or path.startswith(("/api/", "/fhir/")):
            continue
        params = {**world.ids, **world.per_path.get(path, {})}
        names = re.findall(r"\{(\w+)(?::\w+)?\}", path)
        if any(n not in params for n in names):
            skipped.append(path)
            continue
        url = re.sub(r"\{(\w+)(?::\w+)?\}", lambda m, p=params: p[m.group(1)], path)
        if path.startswith("/portal"):
            portal.append(url + world.query)
        elif url not in public and path not in ("/enrol-totp", "/setup/{token}"):
            public.append(url)
    return portal, public, skipped


def _sign_in(page: object, email: str, secret: str | None) -> None:
    page.goto("/login")  # type: ignore[attr-defined]
    page.get_by_label("E-mail").fill(email)  # type: ignore[attr-defined]
    page.get_by_label("Password").fill(PASSWORD)  # type: ignore[attr-defined]
    if secret:  # the code of enrolment is spent; the next 30-second step is accepted
        code = pyotp.TOTP(secret).at(time.time() + 30)
        page.get_by_label(re.compile("Code from your authenticator")).fill(code)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r".*/portal(/\w+)?$"))  # type: ignore[attr-defined]


def check_page(page: object, known: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """What is wrong with the page now shown: serious/critical axe violations, sideways scroll."""
    page.add_script_tag(path=str(AXE))  # type: ignore[attr-defined]
    found = page.evaluate(  # type: ignore[attr-defined]
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"
    )
    problems = [
        f"axe {v['impact']} {v['id']}: {v['help']} at {v['nodes']}"
        for v in found
        if v["impact"] in SERIOUS and v["id"] not in known
    ]
    width = page.evaluate("document.documentElement.scrollWidth")  # type: ignore[attr-defined]
    if width > PHONE["width"]:
        problems.append(f"the page is {width} px wide on a {PHONE['width']} px screen")
    return problems


def _slug(url: str) -> str:
    path = url.split("?", maxsplit=1)[0].strip("/") or "home"
    return re.sub(r"[^A-Za-z0-9]+", "-", re.sub(r"[0-9a-f]{32}|[A-Za-z0-9_-]{40,}", "id", path))


def _visit(context: object, who: str, urls: list[str]) -> tuple[list[str], int]:
    """(what is wrong, how many pages were checked) for ``urls`` in this browser context."""
    page = context.new_page()  # type: ignore[attr-defined]
    failures = []
    refusals: set[tuple[int, str]] = set()  # a role's "not for you" pages share one template
    checked = 0
    for url in urls:
        try:
            answer = page.goto(url)
        except PlaywrightError as exc:  # a download (an original, an archive), not a page
            if "Download is starting" in str(exc):
                continue
            raise
        if answer is None or "text/html" not in answer.headers.get("content-type", ""):
            continue
        page.wait_for_load_state("load")
        if answer.status >= 400:
            refusal = (answer.status, page.locator("main").inner_text()[:200])
            if refusal in refusals:
                continue  # the same refusal page, already checked for this role
            refusals.add(refusal)
        if url.startswith("/api/docs"):
            page.locator(".opblock").first.wait_for()
        page.screenshot(path=str(SHOTS / f"{who}-{_slug(url)}.png"), full_page=True)
        checked += answer.status < 400
        failures += [
            f"{who} {url.split('?')[0]} ({answer.status}): {p}"
            for p in check_page(page, UPSTREAM.get(url, set()))
        ]
    page.close()
    return failures, len(refusals) + checked


def test_the_checks_catch_a_page_built_to_fail(browser: object) -> None:
    """A missing alt text, an unnamed button and a 1,000 px table are each reported."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=PHONE)  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_content(
        '<!doctype html><html><body><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
        "<button></button><table style='width:1000px'><tr><td>wide</td></tr></table></body></html>"
    )
    problems = " | ".join(check_page(page))
    assert "image-alt" in problems and "button-name" in problems, problems
    assert "1000 px wide" in problems or "px wide on a 390 px screen" in problems, problems
    page.set_content(
        '<!doctype html><html lang="en"><head><title>fine</title></head><body><main>'
        "<h1>Fine</h1><p>Nothing wrong here.</p></main></body></html>"
    )
    assert check_page(page) == []
    context.close()


@pytest.mark.parametrize("role", ["public", "patient", "clinician", "educator", "admin"])
def test_every_page_passes_axe_and_fits_a_phone(
    server: tuple[str, Path], browser: object, world: World, role: str
) -> None:
    base, data = server
    SHOTS.mkdir(parents=True, exist_ok=True)
    portal, public, skipped = page_list(world, data)
    assert "/portal/admin" + world.query in portal and len(portal) >= 15, portal
    # bypass_csp lets the test inject axe; test_api_docs_render_the_operations_under_the_csp
    # checks the page under the app's real CSP.
    context = browser.new_context(base_url=base, viewport=PHONE, bypass_csp=True)  # type: ignore[attr-defined]
    if role != "public":
        page = context.new_page()
        _sign_in(page, world.emails[role], world.secrets.get(role))
        page.close()
    urls = public if role == "public" else portal
    failures, checked = _visit(context, role, urls)
    context.close()
    print(f"{role}: checked {checked} of {len(urls)} pages; skipped (no seeded value for a path"
          f" parameter): {skipped}")  # fmt: skip
    assert failures == [], "\n".join(failures)
    assert checked >= 5 and len(list(SHOTS.glob(f"{role}-*.png"))) >= checked


def test_api_docs_render_the_operations_under_the_csp(
    server: tuple[str, Path], browser: object
) -> None:
    """/api/docs loads Swagger UI from the package (the CSP allows no CDN, no inline code)."""
    base, _ = server
    context = browser.new_context(base_url=base, viewport=PHONE)  # type: ignore[attr-defined]
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    page.on("requestfailed", lambda r: refused.append(f"failed: {r.url}"))
    answer = page.goto("/api/docs")
    assert answer is not None and answer.status == 200
    assert "cdn" not in page.content().lower()
    page.locator(".opblock").first.wait_for(timeout=15_000)
    operations = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/v1/photos" in p for p in operations), operations[:10]
    assert len(operations) > 10
    page.locator(".opblock").first.click()  # an operation opens with its parameters
    page.locator(".opblock-body").first.wait_for()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "api-docs.png"), full_page=False)
    assert refused == []
    context.close()
