"""Helpers shared by controllers: the JSON content-type check, dropping work of disconnected clients, and the
``Content-Disposition`` of a downloaded file."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from typing import Any, TypeVar
from urllib.parse import quote

from litestar import Request

from service.errors import ClientDisconnectedError, UnsupportedMediaTypeError

__all__ = ["content_disposition", "require_json", "until_disconnect"]

T = TypeVar("T")


async def require_json(request: Request[Any, Any, Any]) -> None:
    """``before_request`` hook: 415 unless the body is declared as JSON (no Content-Type is accepted)."""
    content_type = request.headers.get("content-type")
    if content_type is None:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaTypeError(
            f"expected Content-Type: application/json, got {media!r}", code="unsupported_media_type"
        )


async def until_disconnect(request: Request[Any, Any, Any], work: Awaitable[T]) -> T:
    """Await ``work``; if the client disconnects first, cancel it (the batcher drops its waiting rows)."""
    task = asyncio.ensure_future(work)

    async def watch() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                return

    watcher = asyncio.ensure_future(watch())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    raise ClientDisconnectedError("client disconnected")


_NOT_TOKEN_SAFE = re.compile(r'[^\x20-\x7e]|["\\%/]')
_ATTR_CHARS = "!#$&+-.^_`|~"  # RFC 8187 attr-char besides ALPHA / DIGIT (never quoted)


def content_disposition(filename: str | None, fallback: str, kind: str = "attachment") -> str:
    """``attachment; filename="<ASCII>"; filename*=UTF-8''<percent-encoded>`` (RFC 6266 + RFC 8187).

    ``filename`` (None: ``fallback``) may hold anything a client sent: the quoted ASCII form replaces every
    character outside printable ASCII, and ``"``, ``\\``, ``%`` and ``/``, by ``_`` (so no header injection, no
    quoting tricks, no path); ``filename*`` carries the exact name, UTF-8 percent-encoded, for clients that read
    it (all current browsers, curl -J, requests-toolbelt).

    >>> print(content_disposition('Q3 "final"\\r\\n.pdf', "doc"))
    attachment; filename="Q3 _final___.pdf"; filename*=UTF-8''Q3%20%22final%22%0D%0A.pdf
    """
    name = filename or fallback
    ascii_name = _NOT_TOKEN_SAFE.sub("_", name) or "file"
    encoded = quote(name, safe=_ATTR_CHARS, encoding="utf-8", errors="surrogatepass")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{encoded}"
