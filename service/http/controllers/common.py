"""Helpers shared by controllers: the JSON content-type check and dropping work of disconnected clients."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from litestar import Request

from service.errors import ClientDisconnectedError, UnsupportedMediaTypeError

__all__ = ["require_json", "until_disconnect"]

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
