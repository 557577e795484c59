"""The interactive API reference at /api/docs, served from this package alone.

FastAPI's default page loads Swagger UI from a CDN and starts it with an inline
script; the app's CSP (``script-src 'self'``) blocks both, so the page stayed blank.
Here the Swagger UI files come from the ``swagger-ui-bundle-v2`` wheel (Apache-2.0,
Swagger UI 5.x, which reads OpenAPI 3.1) and the start-up code is a static file.

    >>> mount_api_docs(app, openapi_url="/openapi.json")             # doctest: +SKIP
"""

from __future__ import annotations

from html import escape

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

ASSETS = "/static/swagger-ui"


def page(title: str, openapi_url: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{escape(title)} · API reference</title>
  <link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
  <link rel="stylesheet" href="/static/api-docs.css">
  <script src="{ASSETS}/swagger-ui-bundle.js" defer></script>
  <script src="/static/api-docs.js" defer></script>
</head>
<body>
  <main id="swagger-ui" data-openapi-url="{escape(openapi_url)}" aria-label="API reference">
    <p>Loading the API reference… (as JSON:
      <a href="{escape(openapi_url)}">{escape(openapi_url)}</a>)</p>
  </main>
</body>
</html>
"""


def mount_api_docs(
    app: FastAPI, *, path: str = "/api/docs", openapi_url: str = "/openapi.json"
) -> None:
    """Serve Swagger UI's files under /static/swagger-ui and the page at ``path``; call it
    before the app's own /static mount (the first matching mount answers)."""
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="swagger-ui")
    html = page(app.title, openapi_url)

    @app.get(path, include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(html)
