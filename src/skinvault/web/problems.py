"""The one place where errors become HTTP answers: RFC 9457 problem+json documents.

{"type": "https://skinvault.example/problems/access-denied", "title": "Access denied",
 "status": 403, "detail": "The patient withdrew consent for teaching on 6 May 2026."}
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from skinvault.errors import (
    AccessDenied,
    AccountLocked,
    AuditChainBroken,
    AuthenticationFailed,
    BlobUnreadable,
    ConfigError,
    KeyUnavailable,
    LinkUnavailable,
    NotFound,
    PhotoError,
    RequestInvalid,
    SkinvaultError,
    TooLarge,
    TooManyAttempts,
)

PROBLEM = "application/problem+json"
_BASE = "https://skinvault.dev/problems/"

# (status, slug, title) by error class; the most specific class listed first wins.
_MAP: list[tuple[type[Exception], int, str, str]] = [
    (AccountLocked, 429, "locked", "Too many failed sign-ins"),
    (TooManyAttempts, 429, "too-many-attempts", "Too many sign-in attempts"),
    (AuthenticationFailed, 401, "unauthenticated", "Sign-in required"),
    (LinkUnavailable, 410, "link-unavailable", "This link no longer works"),
    (RequestInvalid, 400, "invalid-request", "Invalid request"),
    (TooLarge, 413, "too-large", "Upload too large"),
    (PhotoError, 422, "unreadable-photo", "The photo cannot be accepted"),
    (AccessDenied, 403, "access-denied", "Access denied"),
    (NotFound, 404, "not-found", "Not found"),
    (BlobUnreadable, 500, "stored-data-damaged", "Stored data cannot be read"),
    (KeyUnavailable, 500, "key-unavailable", "Encryption key unavailable"),
    (AuditChainBroken, 500, "audit-broken", "Audit log broken"),
    (ConfigError, 400, "invalid-request", "Invalid request"),
]


def problem(status: int, slug: str, title: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {"type": _BASE + slug, "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type=PROBLEM,
        headers={"WWW-Authenticate": "Bearer"} if status == 401 else None,
    )


def for_error(exc: SkinvaultError) -> JSONResponse:
    for cls, status, slug, title in _MAP:
        if isinstance(exc, cls):
            return problem(status, slug, title, str(exc))
    return problem(500, "error", "Something went wrong", str(exc))


async def handle(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SkinvaultError)
    return for_error(exc)


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
