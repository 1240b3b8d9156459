"""``POST /v1/embeddings``: Jina v4 and OpenAI compatible.

See ``service.embeddings.schemas`` and ``service.embeddings.embed``.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from service.embeddings.embed import embed_request
from service.embeddings.schemas import EmbeddingsRequest, EmbeddingsResponse
from service.engine.runtime import Runtime
from service.http.controllers.common import require_json, until_disconnect

__all__ = ["EmbeddingsController"]


class EmbeddingsController(Controller):
    path = "/v1"
    tags = ("embeddings",)

    @post(
        "/embeddings",
        status_code=200,
        before_request=require_json,
        summary="Embed texts, images and PDF pages",
        description=(
            "Jina v4 request schema (task, dimensions, late_chunking, truncate, return_multivector, "
            "embedding_type) plus OpenAI's (string input, encoding_format, user). A PDF input yields one "
            "item per page carrying input_index and page."
        ),
    )
    async def create_embeddings(
        self, request: Request[Any, Any, Any], data: JSONBody[EmbeddingsRequest], runtime: NamedDependency[Runtime]
    ) -> EmbeddingsResponse:
        return await until_disconnect(request, embed_request(runtime, data))
