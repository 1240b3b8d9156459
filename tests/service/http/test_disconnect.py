"""The HTTP side of dropping a disconnected client's work: ``until_disconnect`` cancels the pending work as soon as
the ASGI server reports ``http.disconnect`` (the batcher then drops the cancelled caller's waiting rows — see
test_batcher.py), and returns the result untouched when the client stays."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from service.errors import ClientDisconnectedError
from service.http.controllers.common import until_disconnect


class FakeRequest:
    def __init__(self, disconnect_after: float | None) -> None:
        self.disconnect_after = disconnect_after

    async def receive(self) -> dict[str, Any]:
        if self.disconnect_after is None:
            await asyncio.Event().wait()  # the client never leaves
        else:
            await asyncio.sleep(self.disconnect_after)
        return {"type": "http.disconnect"}


def test_disconnect_cancels_the_work() -> None:
    async def main() -> bool:
        started = asyncio.Event()
        cancelled = asyncio.Event()

        async def work() -> str:
            started.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return "done"

        with pytest.raises(ClientDisconnectedError):
            await until_disconnect(FakeRequest(0.05), work())  # type: ignore[arg-type]
        await asyncio.sleep(0)
        return started.is_set() and cancelled.is_set()

    assert asyncio.run(asyncio.wait_for(main(), 10))


def test_result_when_client_stays() -> None:
    async def main() -> str:
        async def work() -> str:
            await asyncio.sleep(0.01)
            return "vectors"

        return await until_disconnect(FakeRequest(None), work())  # type: ignore[arg-type]

    assert asyncio.run(asyncio.wait_for(main(), 10)) == "vectors"
