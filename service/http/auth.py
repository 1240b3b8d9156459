"""Optional API-key authentication (``Authorization: Bearer <key>``) as an app-level Litestar guard.

With no keys configured every route is open. Otherwise every route needs a valid key except those whose
handler sets ``opt={"public": True}`` (``/health``, ``/ready``) and the OpenAPI docs. ``/metrics``
(``opt={"metrics": True}``: route names, counts, collection names and sizes) takes ``JEV4_METRICS_KEY`` when it is
set (so a Prometheus scraper needs no API key), else the API keys, and is open only when neither is set. Keys are
compared in constant time; the 401 body never echoes the key.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from service.errors import UnauthorizedError

if TYPE_CHECKING:
    from service.serving import ServingOptions

__all__ = ["api_key_guard", "check_bearer"]


def check_bearer(header: str | None, keys: tuple[str, ...]) -> None:
    """Raise UnauthorizedError unless ``header`` is ``Bearer <one of keys>`` (no-op without keys)."""
    if not keys:
        return
    if not header:
        raise UnauthorizedError("missing API key: send 'Authorization: Bearer <key>'", code="missing_api_key")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise UnauthorizedError("malformed Authorization header: expected 'Bearer <key>'", code="invalid_auth_format")
    presented = token.encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented, key.encode())
    if not matched:
        raise UnauthorizedError("invalid API key", code="invalid_api_key")


def api_key_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Litestar guard: enforce :func:`check_bearer` with the app's keys on non-public routes."""
    if handler.opt.get("public"):
        return
    app = connection.app
    serving: ServingOptions = app.state.serving
    if handler.opt.get("metrics") and serving.metrics_key:
        check_bearer(connection.headers.get("authorization"), (serving.metrics_key,))
        return
    docs = (app.openapi_config.path or "") if app.openapi_config is not None else ""
    path = connection.scope["path"]
    if docs and (path == docs or path.startswith(docs.rstrip("/") + "/")):
        return
    check_bearer(connection.headers.get("authorization"), serving.api_keys)
