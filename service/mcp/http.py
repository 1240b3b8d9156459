"""The MCP server over Streamable HTTP at ``/mcp`` of ``serve``: a Litestar plugin adding one ASGI route and the
SDK session manager's lifespan. ``/mcp`` is an ordinary route for the app's guard, so with ``JEV4_API_KEYS``
set it needs ``Authorization: Bearer <key>`` like every ``/v1`` route. Stateless (each POST is a whole
exchange): the tools need no server-to-client requests, and nothing is held between calls. The SDK's DNS
rebinding protection (Host/Origin checks) is on when the server listens on a loopback address.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from litestar import Litestar, asgi
from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol
from litestar.types import Receive, Scope, Send

from service.mcp.server import build_server

if TYPE_CHECKING:
    from service.collections.manager import Collections
    from service.mcp.writes import WriteOptions

__all__ = ["McpPlugin"]


class McpPlugin(InitPluginProtocol):
    """Adds ``/mcp`` (the tools over the app's :class:`Collections`, found in ``app.state`` when called);
    ``host`` is the address the server listens on (the SDK's Host/Origin checks are on for a loopback one)."""

    def __init__(self, writes: WriteOptions, host: str) -> None:
        self._app: Litestar | None = None
        server = build_server(self._collections, writes)
        server.streamable_http_app(stateless_http=True, json_response=True, host=host)
        self._manager = server.session_manager

    def _collections(self) -> Collections:
        assert self._app is not None
        collections: Collections = self._app.state["collections"]
        return collections

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        manager = self._manager

        @asgi("/mcp", is_mount=True, copy_scope=True)
        async def mcp_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
            await manager.handle_request(dict(scope), receive, send)  # type: ignore[arg-type]

        @asynccontextmanager
        async def lifespan(app: Litestar) -> AsyncIterator[None]:
            self._app = app
            async with manager.run():
                yield

        app_config.route_handlers.append(mcp_endpoint)
        app_config.lifespan.append(lifespan)
        return app_config
