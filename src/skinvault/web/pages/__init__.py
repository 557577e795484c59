"""The portal: server-rendered pages, one module per audience.

Pages are thin: each one calls a service and renders a template. Forms carry
the session's CSRF token; the one script (``static/portal.js``) only adds the
privacy preview before an upload and works without inline code.
"""

from __future__ import annotations

from fastapi import APIRouter

from skinvault.web.pages import (
    account,
    admin,
    clinician,
    copies,
    notifications,
    patient,
    public,
    review,
    tracking,
    upload,
    users,
    versions,
)
from skinvault.web.pages.common import render, vault

router = APIRouter(include_in_schema=False)
for _module in (
    public,
    account,
    patient,
    upload,
    clinician,
    admin,
    review,
    users,
    notifications,
    tracking,
    copies,
    versions,
):
    router.include_router(_module.router)

__all__ = ["render", "router", "vault"]
