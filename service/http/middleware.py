"""Per-request context: request id, access log line, request metrics.

The request id is the client's ``X-Request-ID`` when it is 1-128 characters of ``[A-Za-z0-9._:-]``,
otherwise a fresh uuid4 hex; it is echoed in the ``X-Request-ID`` response header and set in
:data:`service.logs.REQUEST_ID` so every log line of the request carries it. Unmatched routes (404/405)
are answered by the app-level exception handler, which also sets the header.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import TYPE_CHECKING
from urllib.parse import unquote

from litestar.enums import ScopeType

from service.logs import REQUEST_ID

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from service.metrics import Metrics

__all__ = ["RequestContextMiddleware", "request_id_from_scope", "requested_path"]

_ACCESS = logging.getLogger("jev4.access")
_VALID_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def request_id_from_scope(scope: Scope) -> str:
    """The request id of ``scope`` (created and stored in the scope on first use)."""
    state = scope.setdefault("state", {})
    existing = state.get("request_id")
    if isinstance(existing, str):
        return existing
    header = next((v for k, v in scope.get("headers", ()) if k == b"x-request-id"), b"")
    text = header.decode("latin-1")
    request_id = text if _VALID_ID.match(text) else uuid.uuid4().hex
    state["request_id"] = request_id
    return request_id


def requested_path(scope: Scope) -> str:
    """The path as the client sent it, percent-decoded as the server decodes ``path``: from ``raw_path``, which
    routing leaves alone (Litestar's router replaces ``path`` of a request to a mounted app, ``/mcp``, with the
    rest after the mount before any middleware runs: ``/``).

    >>> requested_path({"raw_path": b"/mcp", "path": "/"}), requested_path({"raw_path": b"/a%20b", "path": "/x"})
    ('/mcp', '/a b')
    """
    raw = scope.get("raw_path")
    if not raw:
        return str(scope.get("path", ""))
    text = bytes(raw).decode("latin-1")
    return unquote(text) if "%" in text else text


class RequestContextMiddleware:
    """ASGI middleware (Litestar ``MiddlewareProtocol``) around every matched route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = request_id_from_scope(scope)
        token = REQUEST_ID.set(request_id)
        path = requested_path(scope)
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("path_template") or "unmatched"
            method = scope.get("method", "")
            metrics: Metrics | None = getattr(getattr(scope.get("app"), "state", None), "metrics", None)
            if metrics is not None:
                metrics.requests.labels(route=route, method=method, status=str(status)).inc()
                metrics.request_duration.labels(route=route).observe(elapsed)
            _ACCESS.info(
                "request",
                extra={
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            REQUEST_ID.reset(token)
