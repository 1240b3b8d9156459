"""What keeps a web page from driving the server through a visitor's browser: a ``Host`` check (DNS rebinding)
and an ``Origin`` check on writes (cross-site request forgery).

A keyless server on ``127.0.0.1`` is reachable by any page the user opens: a form on ``evil.example`` can POST
to it (a "simple request" needs no CORS preflight), and a page whose DNS name is re-pointed at ``127.0.0.1``
(DNS rebinding) can even read the answers, its requests carrying ``Host: evil.example``. So:

- **Host** (every request): the server answers only the names it serves. Always allowed: IP literals
  (``127.0.0.1``, ``[::1]``, a LAN address: a page cannot make a browser send one for its own origin),
  ``localhost`` and ``*.localhost``, mDNS ``*.local`` names, the bound ``JEV4_HOST`` and this machine's host
  name: none can be pointed at the server through public DNS. Anything else must be in ``JEV4_ALLOWED_HOSTS``
  (``name`` exact, ``.example.com`` the domain and its subdomains, ``*`` any), e.g. the name of a reverse proxy
  in front. When API keys are set and ``JEV4_ALLOWED_HOSTS`` is empty every name is answered: a rebinding page
  has no key to send. Refused: ``403 host_not_allowed``.
- **Origin** (``POST``/``PUT``/``PATCH``/``DELETE`` on a keyless server): a browser's cross-site write is
  refused with ``403 cross_origin_refused``: an ``Origin`` header (browsers send it on every cross-origin
  write) that is neither the server's own (same host and port as ``Host``) nor in ``JEV4_CORS_ALLOW_ORIGINS``,
  ``Origin: null`` (sandboxed frames, ``file://`` pages), or ``Sec-Fetch-Site: cross-site``/``same-site``
  without an ``Origin``; ``Sec-Fetch-Site: same-origin`` (which scripts cannot forge) always passes. Clients
  that are not browsers (curl, SDKs, the CLI) send neither header and pass; so does the search page (``/ui/``).
- **CORS** (which other origins' pages may read answers): closed unless ``JEV4_CORS_ALLOW_ORIGINS`` names
  origins (:func:`cors_config`).
"""

from __future__ import annotations

import ipaddress
import json
import socket
from typing import TYPE_CHECKING

from litestar.config.cors import CORSConfig
from litestar.enums import ScopeType

from service.embeddings.media import host_allowed
from service.http.middleware import request_id_from_scope

if TYPE_CHECKING:
    from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send

    from service.serving import ServingOptions

__all__ = ["OriginGuardMiddleware", "cors_config", "host_served", "origin_refusal"]

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_ALWAYS = (".localhost", ".local")  # reserved / link-local names: not resolvable through public DNS


def _split_host(host: str) -> str:
    """``name:port`` / ``[v6]:port`` -> the name (lower case, no brackets, no trailing dot)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0].rstrip(".") if host.count(":") == 1 else host.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def cors_config(serving: ServingOptions) -> CORSConfig | None:
    """CORS is closed unless ``cors_allow_origins`` names origins (then only those, with the API's headers)."""
    if not serving.cors_allow_origins:
        return None
    return CORSConfig(
        allow_origins=list(serving.cors_allow_origins),
        allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
        expose_headers=["X-Request-ID", "Retry-After", "Location"],
        allow_credentials=False,
        max_age=600,
    )


def host_served(host: str, serving: ServingOptions) -> bool:
    """True when the server answers requests naming ``host`` (the ``Host`` header); the module doc's rules."""
    allowed = serving.allowed_hosts
    if "*" in allowed or (not allowed and serving.api_keys):
        return True
    name = _split_host(host)
    if not name or _is_ip(name) or name == "localhost" or host_allowed(name, _ALWAYS):
        return True
    own = (_split_host(serving.host), socket.gethostname().lower())
    return name in own or host_allowed(name, allowed)


def origin_refusal(method: str, origin: str | None, fetch_site: str | None, host: str, serving: ServingOptions) -> str:
    """Why a write from a browser page of another origin is refused ('' = allowed); keyless servers only.

    ``Sec-Fetch-Site`` (set by the browser, never by page scripts) decides first where it is sent: the search
    page's own requests say ``same-origin`` even when its no-referrer policy makes their ``Origin`` ``null``."""
    if serving.api_keys or method not in _WRITES or fetch_site in ("same-origin", "none"):
        return ""
    allowed = serving.cors_allow_origins
    if origin is not None and ("*" in allowed or origin.rstrip("/") in {o.rstrip("/") for o in allowed}):
        return ""
    if origin is None:
        if fetch_site is not None:  # cross-site / same-site without an Origin
            return f"a {fetch_site} request (Sec-Fetch-Site) cannot write to a server without API keys"
        return ""  # not a browser: curl, SDKs, the CLI
    if origin == "null":
        return "a page with an opaque origin (Origin: null) cannot write to a server without API keys"
    _scheme, _sep, netloc = origin.partition("://")
    if netloc.lower() == host.strip().lower():
        return ""
    return (
        f"cross-origin write from {origin[:200]!r} refused: this server has no API keys, so only its own pages "
        "may write to it; set JEV4_API_KEYS, or list the origin in JEV4_CORS_ALLOW_ORIGINS"
    )


class OriginGuardMiddleware:
    """ASGI middleware applying :func:`host_served` and :func:`origin_refusal` (403 with the error body)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        serving: ServingOptions = scope["app"].state.serving
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
        host = headers.get("host", "")
        if host and not host_served(host, serving):
            message = (
                f"this server does not answer for host {_split_host(host)[:200]!r}; add it to JEV4_ALLOWED_HOSTS "
                "(a guard against DNS rebinding)"
            )
            await _refuse(scope, send, "host_not_allowed", message)
            return
        why = origin_refusal(
            scope.get("method", ""), headers.get("origin"), headers.get("sec-fetch-site"), host, serving
        )
        if why:
            await _refuse(scope, send, "cross_origin_refused", why)
            return
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, send: Send, code: str, message: str) -> None:
    body = json.dumps(
        {"error": {"message": message, "type": "permission_error", "code": code}, "detail": message}
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id_from_scope(scope).encode("latin-1")),
    ]
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": 403, "headers": headers}
    await send(start)
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(end)
