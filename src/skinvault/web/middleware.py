"""The two layers every request passes: security headers, and the request log with metrics.

Plain ASGI middleware rather than ``@app.middleware("http")``: Starlette's
``BaseHTTPMiddleware`` hands each chunk of a request body through a new task group, which
for a 4 MB photo arriving in 64 KB chunks means ~60 task groups per upload, per layer.
These wrap only ``send``: the body passes untouched.

    >>> app.add_middleware(SecurityHeaders)                          # doctest: +SKIP
    >>> app.add_middleware(RequestLog, metrics=m, log_requests=True)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time

from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skinvault.web import observe, problems

log = logging.getLogger("skinvault.web")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self';"
        " object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "geolocation=(), microphone=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _secure(scope: Scope, message: Message) -> None:
    headers = MutableHeaders(scope=message)
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)
    if not scope["path"].startswith("/static/"):
        # Pages and answers carry patient data: no browser or proxy keeps a copy.
        headers.setdefault("Cache-Control", "no-store")
    if scope.get("scheme") == "https":
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")


class SecurityHeaders:
    """Every answer carries the security headers — errors too: a bug that escapes every
    handler is logged and answered as a plain 500 page or problem, with the headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_secured(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                _secure(scope, message)
            await send(message)

        try:
            await self.app(scope, receive, send_secured)
        except ClientDisconnect:
            raise  # the client left: there is nobody to answer
        except Exception:
            if started:
                raise  # part of an answer went out: nothing else can be said
            request = Request(scope)
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            await problems.server_error(request)(scope, receive, send_secured)


class RequestLog:
    """One log line (when ``log_requests``) and one metrics observation per request, from
    its start to the end of its answer; an answer that never started counts as a 500."""

    def __init__(self, app: ASGIApp, *, metrics: observe.Metrics, log_requests: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        begun = time.perf_counter()
        status = 500

        async def send_seen(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_seen)
        finally:
            request = Request(scope)
            route = observe.route_of(request)
            took = time.perf_counter() - begun
            self.metrics.observe(request.method, route, status, took)
            if self.log_requests:
                observe.log_request(request, route, status, took)
