"""The one place where errors become HTTP answers: RFC 9457 problem+json documents for
the API, and for portal pages a page a person can act on.

{"type": "https://skinvault.example/problems/access-denied", "title": "Access denied",
 "status": 403, "detail": "The patient withdrew consent for teaching on 6 May 2026."}

A portal page whose session ended sends the browser to sign in (and back after it);
a session still waiting for its second factor goes to the enrolment page; any other
refusal is a plain page with the message. The API always answers problem+json.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from skinvault.errors import (
    AccessDenied,
    AccountLocked,
    AuditChainBroken,
    AuthenticationFailed,
    BlobUnreadable,
    Busy,
    ConfigError,
    DestinationUnavailable,
    KeyUnavailable,
    LinkRefused,
    LinkUnavailable,
    NotFound,
    PhotoError,
    RequestInvalid,
    SecondFactorPending,
    ServerMisconfigured,
    ServiceUnavailable,
    SkinvaultError,
    TooLarge,
    TooManyAttempts,
    TooManyLinkTries,
)

PROBLEM = "application/problem+json"
log = logging.getLogger("skinvault.web")
_BASE = "https://skinvault.dev/problems/"

# (status, slug, title) by error class; the most specific class listed first wins.
_MAP: list[tuple[type[Exception], int, str, str]] = [
    (AccountLocked, 429, "locked", "Too many failed sign-ins"),
    (SecondFactorPending, 401, "second-factor-pending", "Two-step sign-in not set up"),
    (TooManyAttempts, 429, "too-many-attempts", "Too many sign-in attempts"),
    (AuthenticationFailed, 401, "unauthenticated", "Sign-in required"),
    (TooManyLinkTries, 429, "too-many-link-tries", "Too many tries from this address"),
    (LinkRefused, 403, "link-refused", "This link did not open"),
    (Busy, 429, "busy", "The service is busy"),
    (LinkUnavailable, 410, "link-unavailable", "This link no longer works"),
    (RequestInvalid, 400, "invalid-request", "Invalid request"),
    (TooLarge, 413, "too-large", "Upload too large"),
    (PhotoError, 422, "unreadable-photo", "The photo cannot be accepted"),
    (AccessDenied, 403, "access-denied", "Access denied"),
    (DestinationUnavailable, 502, "destination-unavailable", "The destination did not accept it"),
    (NotFound, 404, "not-found", "Not found"),
    (BlobUnreadable, 500, "stored-data-damaged", "Stored data cannot be read"),
    (KeyUnavailable, 500, "key-unavailable", "Encryption key unavailable"),
    (AuditChainBroken, 500, "audit-broken", "Audit log broken"),
    (ServiceUnavailable, 503, "service-unavailable", "The service is unavailable"),
    # Server-side configuration first: only what is left of ConfigError is the client's input.
    (ServerMisconfigured, 500, "server-misconfigured", "The server is misconfigured"),
    (ConfigError, 400, "invalid-request", "Invalid request"),
]


def problem(
    status: int, slug: str, title: str, detail: str, *, extra: dict[str, Any] | None = None
) -> JSONResponse:
    """A problem+json answer; ``extra``: RFC 9457 extension members (a machine-readable
    state such as ``{"preview": "failed"}``)."""
    body = {"type": _BASE + slug, "title": title, "status": status, "detail": detail}
    return JSONResponse(
        {**body, **(extra or {})},
        status_code=status,
        media_type=PROBLEM,
        headers={"WWW-Authenticate": "Bearer"} if status == 401 else None,
    )


_SERVER_SIDE = {
    ServiceUnavailable: "A service this one depends on is not answering; please try again shortly.",
    ServerMisconfigured: "The server is not set up correctly; its operator has been told.",
}


def _detail(exc: SkinvaultError) -> str:
    """What the client reads: its own mistakes in full; a server-side fault only in general
    words (bucket names, key paths and hosts go to the server's log, not to the client)."""
    for cls, text in _SERVER_SIDE.items():
        if isinstance(exc, cls):
            log.error("%s: %s", type(exc).__name__, exc)
            return text
    return str(exc)


def for_error(exc: SkinvaultError) -> JSONResponse:
    for cls, status, slug, title in _MAP:
        if isinstance(exc, cls):
            answer = problem(status, slug, title, _detail(exc))
            if status == 429:
                answer.headers["Retry-After"] = "5" if isinstance(exc, Busy) else "60"
            elif status == 503:
                answer.headers["Retry-After"] = "10"
            return answer
    return problem(500, "error", "Something went wrong", str(exc))


_API_PREFIXES = (
    "/api/",
    "/fhir/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/privacy-facts.json",
    "/static/",
)


def is_page(request: Request) -> bool:
    """Whether the answer goes to a person in a browser (a portal page, not the API)."""
    path = request.url.path
    return not path.startswith(_API_PREFIXES) and not path.endswith("/content")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never //host or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/portal"
    if any(ch in target for ch in "\r\n\t") or len(target) > 500:
        return "/portal"
    return target


def _page(request: Request, status: int, title: str, message: str) -> Response:
    from skinvault.web.pages.common import render  # noqa: PLC0415 (pages import this module)

    return render(
        request, "message.html", status_code=status, title=title, message=message, info=None
    )


def for_page(request: Request, exc: SkinvaultError) -> Response:
    if isinstance(exc, SecondFactorPending):
        return RedirectResponse("/enrol-totp", status_code=303)
    is_auth = isinstance(exc, AuthenticationFailed) and not isinstance(
        exc, (AccountLocked, TooManyAttempts)
    )
    if is_auth and request.method in ("GET", "HEAD"):
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urlencode({'next': safe_next(here)})}", 303)
    answer = for_error(exc)
    status = answer.status_code
    if is_auth:
        return _page(request, status, "Please sign in again", str(exc))
    title = "That did not work" if status < 500 else "Something went wrong on our side"
    return _page(request, status, title, str(exc))


async def handle(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SkinvaultError)
    if is_page(request):
        return for_page(request, exc)
    return for_error(exc)


def server_error(request: Request) -> Response:
    """A bug escaped: say so without details (they are in the server's log)."""
    text = "The server failed to answer this request. It has been logged; please try again."
    if is_page(request):
        return _page(request, 500, "Something went wrong on our side", text)
    return problem(500, "error", "Something went wrong", text)


async def handle_validation(request: Request, exc: Exception) -> JSONResponse:
    """A request that does not match the API's shapes (missing purpose, wrong type)."""
    errors: list[dict[str, Any]] = list(getattr(exc, "errors", list)())
    parts = []
    for error in errors[:5]:
        where = ".".join(str(x) for x in error.get("loc", ()) if x not in ("body", "query", "path"))
        parts.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
    response = problem(
        422, "invalid-request", "Invalid request", "; ".join(parts) or "invalid request"
    )
    return response


async def handle_http(request: Request, exc: Exception) -> JSONResponse:
    """Framework-level refusals (an unparsable body, a wrong method) as problem documents too."""
    assert isinstance(exc, StarletteHTTPException)
    server_side = exc.status_code >= 500
    response = problem(
        exc.status_code,
        "error" if server_side else "invalid-request",
        "Something went wrong" if server_side else "Invalid request",
        str(exc.detail),
    )
    response.headers.update(exc.headers or {})
    return response
