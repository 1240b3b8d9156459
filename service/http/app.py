"""The Litestar application: routes, DI, error table, auth, request context, OpenAPI docs, lifespan.

``create_app(settings)`` builds everything from data; nothing starts until the ASGI server runs the lifespan,
which opens the catalog and loads + warms the model in the background (``/ready`` turns 200 when done).
Interactive docs: ``/docs`` (Swagger UI, also at ``/docs/swagger``; its assets are served locally, see
``service.http.openapi``), schema at ``/docs/openapi.json``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide

from service.collections.manager import Collections
from service.collections.metrics import CollectionsCollector
from service.embeddings.media import MediaLimits
from service.engine.loading import load_encoder
from service.engine.runtime import Runtime
from service.http.auth import api_key_guard
from service.http.controllers.collections import CollectionsController
from service.http.controllers.embeddings import EmbeddingsController
from service.http.controllers.health import HealthController
from service.http.controllers.pages import PagesController
from service.http.controllers.rerank import RerankController
from service.http.exception_handlers import handle_exception
from service.http.middleware import RequestContextMiddleware
from service.http.openapi import document_errors, openapi_config
from service.http.origin import OriginGuardMiddleware, cors_config
from service.http.ui import root_redirect, ui_routers
from service.mcp.http import McpPlugin
from service.mcp.writes import WriteOptions
from service.metrics import Metrics
from service.serving import ServingOptions

if TYPE_CHECKING:
    from litestar.types import Message, Scope

    from model.encoder import Encoder
    from service.collections.jobs import JobRegistry
    from service.engine.loading import ModelSource
    from service.settings import Settings

__all__ = ["create_app"]


def _provide_runtime(state: State) -> Runtime:
    runtime: Runtime = state.runtime
    return runtime


def _jobs(state: State) -> JobRegistry | None:
    """The job registry of the app's :class:`~service.collections.manager.Collections`, once one exists."""
    collections = state.get("collections")
    return None if collections is None else collections.jobs


def _dimensions(runtime: Runtime) -> tuple[int, ...]:
    """The model's Matryoshka sizes for the OpenAPI (empty while the model is not loaded yet)."""
    return tuple(runtime.encoder.info.matryoshka_dims) if runtime.encoder is not None else ()


def _controllers(settings: Settings) -> list[Any]:
    controllers: list[Any] = [
        HealthController,
        EmbeddingsController,
        RerankController,
        CollectionsController,
        PagesController,
    ]
    if settings.ui:
        controllers += ui_routers()
    return [*controllers, root_redirect(settings.ui)]


async def _allow_of_the_whole_route(message: Message, scope: Scope) -> None:
    """``before_send`` hook: an ``OPTIONS`` answer lists every method of its path. Litestar's automatic OPTIONS
    handler keeps the methods of the route as it was when the first handler of the path was registered
    (``Allow: OPTIONS, POST`` for ``/v1/collections``, which also has GET); RFC 9110 wants all of them."""
    if message["type"] != "http.response.start" or scope.get("method") != "OPTIONS":
        return
    handler = scope.get("route_handler")
    paths = getattr(handler, "paths", None) or set()
    methods = {m for route in scope["app"].routes if route.path in paths for m in getattr(route, "methods", ())}
    if methods:
        headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
        message["headers"] = [*headers, (b"allow", ", ".join(sorted(methods)).encode())]


def create_app(
    settings: Settings,
    *,
    serving: ServingOptions | None = None,
    encoder: Encoder | None = None,
    catalog: Any = None,
    loader: Callable[[ModelSource], Encoder] = load_encoder,
) -> Litestar:
    """Build the app. ``serving``: the address, keys and guards ``serve`` read from the same settings (built
    here when not given). ``encoder``/``catalog`` given -> used as they are (not closed by the app, the encoder
    is still warmed up); otherwise the lifespan loads the model with ``loader`` and opens the catalog."""
    serving = serving or ServingOptions.from_settings(settings)
    metrics = Metrics()
    runtime = Runtime(settings, metrics, encoder=encoder, catalog=catalog, loader=loader)
    state = State({"runtime": runtime, "serving": serving, "metrics": metrics})
    media = MediaLimits.from_settings(settings)  # whether the docs offer remote URLs as inputs
    metrics.registry.register(CollectionsCollector(lambda: (runtime.catalog, _jobs(state))))

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await runtime.start()
        collections = Collections(runtime)  # the app's document repository, jobs, indexer and searcher
        app.state["collections"] = collections
        try:
            yield
        finally:
            await collections.close()
            await runtime.close()

    return Litestar(
        route_handlers=_controllers(settings),
        dependencies={"runtime": Provide(_provide_runtime, sync_to_thread=False)},
        exception_handlers={Exception: handle_exception},
        guards=[api_key_guard],
        middleware=[RequestContextMiddleware, OriginGuardMiddleware],
        before_send=[_allow_of_the_whole_route],  # the Host and Origin checks: http/origin.py
        lifespan=[lifespan],
        state=state,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=openapi_config(),
        on_startup=[
            lambda app: document_errors(app.openapi_schema, _dimensions(runtime), remote_urls=media.allow_remote_urls)
        ],
        cors_config=cors_config(serving),
        # /mcp: the MCP tools over Streamable HTTP (service.mcp.http)
        plugins=[McpPlugin(WriteOptions.from_settings(settings, local_files=False), serving.host)],
        logging_config=None,  # logging is configured once by service.logs (JSON lines + request id)
        debug=False,
    )
