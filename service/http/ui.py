"""The search page: static files (HTML, CSS, JS modules; no build step) served at ``/ui/``.

On by default; ``JEV4_UI=false`` removes the route. The files themselves are public (they hold no data); every
API call the page makes carries the key the person typed (``Authorization: Bearer``), so API-key rules are the
API's. Every response of the page carries a strict Content-Security-Policy: scripts, styles and connections
only from this origin, images from this origin or ``blob:`` (page images are fetched with the key and shown as
object URLs, since ``<img>`` cannot send headers), no inline script, no plugins, no framing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Response, Router, get
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

__all__ = ["CONTENT_SECURITY_POLICY", "UI_DIR", "UI_PATH", "root_redirect", "ui_routers"]

UI_DIR = Path(__file__).with_name("ui")
UI_PATH = "/ui"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ]
)

_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


async def _security_headers(response: Response[Any]) -> Response[Any]:
    response.headers.update(_HEADERS)
    return response


def ui_routers() -> list[Any]:
    """Route handlers of the search page (``/ui/`` serves ``index.html``)."""
    files: Router = create_static_files_router(
        path=UI_PATH,
        directories=[UI_DIR],
        html_mode=True,
        name="ui",
        after_request=_security_headers,
        opt={"public": True},
        include_in_schema=False,
    )
    return [files]


def root_redirect(ui: bool) -> Any:
    """``GET /`` -> the search page (``/ui/``), or the API docs (``/docs``) when the page is off (``JEV4_UI``)."""
    target = f"{UI_PATH}/" if ui else "/docs"

    @get("/", name="root", opt={"public": True}, include_in_schema=False)
    async def root() -> Redirect:
        return Redirect(path=target, status_code=302)

    return root
