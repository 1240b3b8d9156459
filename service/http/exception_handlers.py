"""The app-level exception handler: every error becomes ``{"error": {"message", "type", "code"}}``.

Service, model and colbert errors go through :func:`service.errors.error_info`; Litestar's own exceptions
are mapped here (malformed JSON 400, schema validation 422, unknown route 404, wrong method 405, body too
large 413).
An unexpected exception is logged with its traceback and answered with a bare 500 (no details in the body).
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import (
    ClientException,
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    ValidationException,
)
from litestar.exceptions.http_exceptions import RequestEntityTooLarge

from service.errors import ErrorInfo, error_info
from service.http.middleware import request_id_from_scope
from service.settings_rules import env_name

__all__ = ["handle_exception", "litestar_error_info"]

_LOG = logging.getLogger("jev4.errors")


def litestar_error_info(exc: HTTPException, method: str = "", path: str = "") -> ErrorInfo:
    """Map one of Litestar's HTTP exceptions."""
    if isinstance(exc, ValidationException):
        details = "; ".join(
            str(item.get("message", item)) + (f" (at {item['key']})" if item.get("key") else "")
            for item in (exc.extra if isinstance(exc.extra, list) else [])
            if isinstance(item, dict)
        )
        message = f"invalid request body: {details}" if details else f"invalid request: {exc.detail}"
        if "unknown field" in details:  # refused, never ignored: it could change the output (docs/clients.md)
            message += "; this server refuses fields it does not know instead of ignoring them: remove it"
            return ErrorInfo(422, "invalid_request_error", "unknown_field", message)
        return ErrorInfo(422, "invalid_request_error", "validation_error", message)
    if isinstance(exc, RequestEntityTooLarge):
        message = f"request body larger than the server's limit ({env_name('max_body_bytes')})"
        return ErrorInfo(413, "request_too_large", "body_too_large", message)
    if isinstance(exc, NotFoundException):
        detail = exc.detail if exc.detail and exc.detail != "Not Found" else f"no route {method} {path}"
        return ErrorInfo(404, "not_found_error", "not_found", detail)
    if isinstance(exc, MethodNotAllowedException):
        return ErrorInfo(405, "invalid_request_error", "method_not_allowed", f"{path} does not accept {method}")
    if isinstance(exc, NotAuthorizedException):
        return ErrorInfo(401, "authentication_error", "invalid_api_key", exc.detail or "unauthorized")
    if type(exc) is ClientException:  # raised by Litestar for a body that is not valid JSON
        return ErrorInfo(400, "invalid_request_error", "invalid_json", f"request body is not valid JSON: {exc.detail}")
    status = exc.status_code
    kind = "invalid_request_error" if status < 500 else "server_error"
    message = exc.detail if status < 500 else "internal server error"
    return ErrorInfo(status, kind, type(exc).__name__, message)


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[object]:
    """Litestar exception handler registered for ``Exception`` on the app."""
    info = error_info(exc)
    if info is None and isinstance(exc, HTTPException):
        info = litestar_error_info(exc, request.method, request.url.path)
    if info is None or info.status >= 500:
        _LOG.error("request failed: %s", type(exc).__name__, exc_info=exc)
    if info is None:
        info = ErrorInfo(500, "server_error", "internal_error", "internal server error")
    headers = dict(info.headers)
    if isinstance(exc, MethodNotAllowedException):  # RFC 9110: a 405 lists the methods the resource allows
        allow = (exc.headers or {}).get("allow") or "GET, HEAD"  # static files raise it without one
        headers["Allow"] = ", ".join(m for m in allow.replace(" ", "").split(",") if m)
    headers["X-Request-ID"] = request_id_from_scope(request.scope)
    return Response(content=info.body(), status_code=info.status, headers=headers, media_type=MediaType.JSON)
