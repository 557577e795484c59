"""``skinvault serve``: the portal and the JSON API on one port (uvicorn).

On a fresh machine with no configuration it creates the data dir, keys and
database, prints the address and a one-time link that creates the first
administrator, and serves on 127.0.0.1:8000.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from skinvault.admin_cli import BlobStoreUrl, ConfigFile, DatabaseUrl, DataDir
from skinvault.errors import SkinvaultError

if TYPE_CHECKING:
    from skinvault.config import Settings

out = Console(highlight=False, soft_wrap=True)  # links stay on one line, copyable
err = Console(stderr=True, highlight=False, soft_wrap=True)  # never cut a path or command


def serve(
    host: Annotated[
        str, typer.Option("--host", envvar="SKINVAULT_HOST", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", envvar="SKINVAULT_PORT", help="Port to listen on.")
    ] = 8000,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            envvar="SKINVAULT_WORKERS",
            min=1,
            max=64,
            help="Worker processes (uvicorn); all state is in the database, so any number"
            " answers as one service.",
        ),
    ] = 1,
) -> None:
    """Start the portal and the API (creating the data dir and database on first run)."""
    import uvicorn

    from skinvault.bootstrap import bootstrap
    from skinvault.config import load_settings
    from skinvault.services import setup_tokens
    from skinvault.web.app import create_app

    try:
        settings = load_settings(
            config, data_dir=data_dir, database_url=database_url, blob_store=blob_store
        )
        listen = f"http://{host}:{port}"
        if not settings.public_base_url:
            # Outward links (share links, set-up links) go to the address printed below,
            # never to whatever Host header a request carries.
            settings = settings.model_copy(update={"public_base_url": listen})
        if workers == 1:
            app = create_app(settings)
            setup = setup_tokens.create_setup_token(app.state.vault)
        else:
            # Each worker builds its app from the environment: pass the resolved choices on.
            os.environ.update(_worker_environment(settings, config))
            vault = bootstrap(settings, create=True)  # schema, keys, bucket: once, not N times
            try:
                setup = setup_tokens.create_setup_token(vault)
            finally:
                vault.close()
    except SkinvaultError as exc:
        err.print(f"skinvault: {exc}")
        raise typer.Exit(1) from exc
    base = settings.public_base_url
    out.print(f"skinvault is serving on {listen}  (data: {settings.data_dir})")
    if base != listen:
        out.print(f"Public address (links are built on it): {base}")
    if setup:
        out.print(
            f"Create the first administrator (link works once, for 24 hours): {base}/setup/{setup}"
        )
    out.print(f"Privacy facts: {base}/privacy-facts   API: {base}/api/docs")
    # Forwarded headers are believed only from the proxies named in trusted_proxies: from
    # anyone else, X-Forwarded-For would let a client choose its address (and so reset
    # the per-address sign-in limit).
    proxies = settings.trusted_proxies
    if workers > 1:
        out.print(f"Workers: {workers}")
    _request_log(settings.request_log)
    uvicorn.run(
        app if workers == 1 else "skinvault.web.app:app_from_environment",
        factory=workers > 1,
        workers=workers if workers > 1 else None,
        host=host,
        port=port,
        log_level="warning",
        log_config=None,  # keep the handlers set up here (the request log) in every worker
        proxy_headers=bool(proxies),
        forwarded_allow_ips=",".join(proxies) if proxies else None,
        timeout_graceful_shutdown=30,  # uploads in flight finish; then the rest is cut
    )


def _worker_environment(settings: Settings, config: Path | None) -> dict[str, str]:
    env = {
        "SKINVAULT_DATA_DIR": str(settings.data_dir),
        "SKINVAULT_DATABASE_URL": settings.database_url,
        "SKINVAULT_BLOB_STORE": settings.blob_store,
        "SKINVAULT_PUBLIC_BASE_URL": settings.public_base_url,
    }
    if config is not None:
        env["SKINVAULT_CONFIG"] = str(config.resolve())
    return env


def _request_log(enabled: bool) -> None:
    """JSON lines of skinvault.requests (and skinvault's warnings) on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("skinvault", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)
        logger.propagate = False
    if enabled:
        logging.getLogger("skinvault.requests").setLevel(logging.INFO)
