"""Links that leave the service (share links, account links): built from the configured
public address, never from the Host header a request happened to carry."""

from __future__ import annotations

from fastapi import Request


def outward_url(request: Request, path: str) -> str:
    """``path`` on the service's public address (``public_base_url``)."""
    settings = request.app.state.settings
    base = str(getattr(settings, "public_base_url", "") or "") or str(request.base_url)
    return base.rstrip("/") + path
