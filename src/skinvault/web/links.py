"""Links that leave the service (share links, account links): built from the configured
public address, never from the Host header a request happened to carry."""

from __future__ import annotations

from fastapi import Request

#: Where ``skinvault serve`` listens (and what it prints) when nothing else is configured.
DEFAULT_BASE = "http://127.0.0.1:8000"


def outward_url(request: Request, path: str) -> str:
    """``path`` on the service's public address: ``public_base_url``, else the address
    ``serve`` printed (it sets the setting to it), never the request's Host header, which
    any client may forge to plant its own site in a link the clinic sends."""
    base = request.app.state.settings.public_base_url or DEFAULT_BASE
    return base.rstrip("/") + path
