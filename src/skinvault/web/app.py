"""The FastAPI application: built from settings, never at import time.

    >>> app = create_app(load_settings(data_dir=Path("/srv/skinvault")))   # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)                       # doctest: +SKIP

One vault per app (the composition root in :mod:`skinvault.bootstrap`), one
error mapping (:mod:`skinvault.web.problems`), and security headers on every
answer: a CSP without inline scripts, no framing, no sniffing, no referrer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SqlTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from skinvault import __version__
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import Settings
from skinvault.db.engine import is_busy
from skinvault.db.models import AuditEvent, MailOutbox
from skinvault.errors import Busy, SkinvaultError
from skinvault.services import jobs, privacy, share_open
from skinvault.services.checkpoints import CheckpointSchedule
from skinvault.services.job_kinds import PERIODIC
from skinvault.services.maintenance import MaintenanceSchedule
from skinvault.services.notice_sweep import NotificationWorker
from skinvault.web import api, api_interop, api_tracking, fhir, observe, pages, problems
from skinvault.web.deps import client_address
from skinvault.web.docs import mount_api_docs
from skinvault.web.health import Readiness
from skinvault.web.middleware import RequestLog, SecurityHeaders

HERE = Path(__file__).parent
log = logging.getLogger("skinvault.web")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """While the app runs, the audit head is signed on a schedule and kept outside the
    database; the thread stops (after one last signing) on shutdown."""
    schedule = CheckpointSchedule(app.state.vault)
    schedule.start()
    app.state.metrics.start()
    upkeep = MaintenanceSchedule(app.state.vault)  # sweep (and retention, if turned on)
    upkeep.start()
    notices = NotificationWorker(app.state.vault)  # e-mail and sweeps: never in a request
    notices.start()
    workers = jobs.Workers(app.state.vault, periodic=PERIODIC)  # job_threads (0: none)
    workers.start()
    try:
        yield
    finally:
        await run_in_threadpool(app.state.metrics.stop)  # waits for a snapshot in hand
        await run_in_threadpool(workers.stop)
        await run_in_threadpool(upkeep.stop)
        await run_in_threadpool(notices.stop)
        await run_in_threadpool(schedule.stop)


async def _busy(request: Request, exc: Exception) -> Response:
    """A database that stayed busy past its bounded wait (SQLite's busy timeout, the
    connection pool's timeout) is a "try again shortly", never a 500; anything else is a bug."""
    if not is_busy(exc):
        raise exc
    log.warning("database busy on %s %s: %s", request.method, request.url.path, exc)
    return await problems.handle(request, Busy("the service is busy; please try again shortly"))


def app_from_environment() -> FastAPI:
    """The app of one ``serve --workers N`` worker: settings from SKINVAULT_* (which
    ``serve`` sets from its options before it starts the workers)."""
    from skinvault.config import load_settings  # noqa: PLC0415

    return create_app(load_settings())


def create_app(settings: Settings, *, vault: Vault | None = None) -> FastAPI:
    """The whole service for ``settings`` (creating the data dir and schema if needed)."""
    app = FastAPI(
        lifespan=_lifespan,
        title="skinvault",
        version=__version__,
        description=(
            "Share skin photos without leaking more than the clinical question needs. Every"
            " read names a purpose and passes one policy decision; every access is audited."
        ),
        docs_url=None,  # served by web/docs.py from the package: the CSP blocks a CDN
        redoc_url=None,
    )
    app.state.vault = vault or bootstrap(settings, create=True)
    app.state.settings = settings
    app.add_exception_handler(SkinvaultError, problems.handle)
    app.add_exception_handler(RequestValidationError, problems.handle_validation)
    app.add_exception_handler(StarletteHTTPException, problems.handle_http)
    app.add_exception_handler(OperationalError, _busy)
    app.add_exception_handler(SqlTimeout, _busy)

    app.add_middleware(SecurityHeaders)
    app.state.metrics = observe.Metrics(settings.data_dir / "run" / "metrics")
    # The outermost layer (added last): it times the whole answer.
    app.add_middleware(RequestLog, metrics=app.state.metrics, log_requests=settings.request_log)

    app.include_router(api.router)
    app.include_router(api_interop.router)
    app.include_router(api_tracking.router)
    app.include_router(fhir.router)
    app.include_router(pages.router)
    mount_api_docs(app)  # before /static: it mounts /static/swagger-ui
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/healthz", include_in_schema=True)
    def healthz() -> dict[str, str]:
        """Liveness: the process answers (it checks nothing else; see /readyz)."""
        return {"status": "ok", "version": __version__}

    readiness = Readiness(app.state.vault, settings.readiness_timeout_seconds)

    @app.get("/readyz", include_in_schema=True)
    def readyz() -> JSONResponse:
        """Readiness: 200 when the database and the blob store both answer within
        readiness_timeout_seconds, else 503 naming which did not."""
        checks = readiness.check()
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", **checks},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        """Prometheus text: requests, latencies, audit appends. Only with the metrics token,
        or (without one) from this machine."""
        if not observe.may_scrape(request, settings.metrics_token.get_secret_value()):
            return problems.problem(403, "metrics-refused", "Not allowed", "metrics are private")
        with app.state.vault.reading() as session:
            audit_events = session.scalar(select(func.max(AuditEvent.seq))) or 0
            mail_waiting = session.scalar(
                select(func.count())
                .select_from(MailOutbox)
                .where(MailOutbox.sent_at.is_(None), MailOutbox.failed_at.is_(None))
            )
        queue = jobs.status(app.state.vault, dead_limit=0)
        gauges = {
            "skinvault_audit_events_total": ("Events appended to the audit log.", audit_events),
            "skinvault_mail_outbox_waiting": ("E-mails waiting to be sent.", mail_waiting or 0),
            **{
                f"skinvault_jobs_{state}": (f"Background jobs {state}.", n)
                for state, n in queue.counts.items()
            },
            "skinvault_jobs_oldest_waiting_seconds": (
                "How long the oldest due job has waited.", queue.oldest_waiting_seconds,
            ),
        }
        text = observe.render(app.state.metrics.gathered(), gauges)
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/privacy-facts.json")
    def privacy_facts_json() -> JSONResponse:
        return JSONResponse(privacy.privacy_facts(settings).as_json())

    @app.get("/privacy-facts", response_class=HTMLResponse)
    def privacy_facts_page(request: Request) -> HTMLResponse:
        facts = privacy.privacy_facts(settings)
        return pages.render(request, "privacy_facts.html", facts=facts, text=facts.as_text())

    @app.get("/s/{token}/content", response_class=Response)
    def share_link_content(token: str, request: Request) -> Response:
        """The shared image, for the recipient; a withdrawn, expired or used link gets 410,
        a wrong password or a locked link 403, too many refused tries from one address 429."""
        password = request.headers.get("x-link-password")  # never in the URL, where logs keep it
        got = share_open.open_share_link(
            pages.vault(request),
            token=token,
            password=password,
            address=client_address(request),
        )
        return Response(got.data, media_type=got.media_type, headers={"Cache-Control": "no-store"})

    return app
