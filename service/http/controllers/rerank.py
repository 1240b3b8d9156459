"""``POST /v1/rerank``: Jina reranker shape (``results: [{index, relevance_score, document?}]``)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from service.embeddings.rerank import rerank_request
from service.embeddings.schemas import RerankRequest, RerankResponse
from service.engine.runtime import Runtime
from service.http.controllers.common import require_json, until_disconnect

__all__ = ["RerankController"]


class RerankController(Controller):
    path = "/v1"
    tags = ("rerank",)

    @post(
        "/rerank",
        status_code=200,
        before_request=require_json,
        summary="Score documents (texts and/or images) against a query",
        description="MaxSim over multi-vectors (default) or cosine of single vectors (scoring='cosine').",
    )
    async def rerank(
        self, request: Request[Any, Any, Any], data: JSONBody[RerankRequest], runtime: NamedDependency[Runtime]
    ) -> RerankResponse:
        return await until_disconnect(request, rerank_request(runtime, data))
