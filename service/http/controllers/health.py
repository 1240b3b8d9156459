"""Operational routes: ``/health`` (live) and ``/ready`` (model warmed), open without an API key; ``/metrics``
(behind ``JEV4_METRICS_KEY`` or the API keys, see ``service.http.auth``); and ``GET /v1/models`` (OpenAI
clients list models; needs a key when keys are configured)."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, MediaType, Response, get
from litestar.di import NamedDependency

from service.embeddings.schemas import ModelCard, ModelList
from service.engine.runtime import Runtime
from service.metrics import CONTENT_TYPE_LATEST

__all__ = ["HealthController"]


class HealthController(Controller):
    tags = ("operations",)

    @get("/health", opt={"public": True}, summary="Liveness: the process serves HTTP")
    async def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @get(
        "/ready",
        opt={"public": True},
        summary="Readiness: the model is loaded and warmed up (503 until then)",
    )
    async def ready(self, runtime: NamedDependency[Runtime]) -> Response[dict[str, Any]]:
        # test_checkpoint: the random test weights (--tiny, or a checkpoint model.testing built): rankings mean
        # nothing, and the search page says so
        body: dict[str, Any] = {"status": runtime.status, "model": runtime.model_name}
        body["test_checkpoint"] = runtime.tiny_checkpoint
        if runtime.ready and runtime.encoder is not None:
            info = runtime.encoder.info
            body["test_checkpoint"] = runtime.tiny_checkpoint or info.test_checkpoint
            body.update(
                dimensions=info.hidden_size,
                multivector_dimensions=info.multivector_dim,
                matryoshka_dims=list(info.matryoshka_dims),
                max_tokens=runtime.limits.max_text_tokens,
            )
        return Response(body, status_code=200 if runtime.ready else 503)

    @get(
        "/metrics",
        opt={"metrics": True},  # JEV4_METRICS_KEY, else the API keys (service.http.auth)
        media_type=MediaType.TEXT,
        summary="Prometheus metrics",
        include_in_schema=True,
    )
    async def metrics(self, runtime: NamedDependency[Runtime]) -> Response[bytes]:
        # in a thread: the collection families read the index (service.collections.metrics)
        return Response(await asyncio.to_thread(runtime.metrics.render), media_type=CONTENT_TYPE_LATEST)

    @get("/v1/models", summary="The served model (OpenAI-compatible list)")
    async def models(self, runtime: NamedDependency[Runtime]) -> ModelList:
        return ModelList(data=[ModelCard(id=runtime.model_name)])
