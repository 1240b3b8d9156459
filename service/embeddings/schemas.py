"""Request and response bodies (msgspec Structs) of the embeddings, rerank and model routes.

``POST /v1/embeddings`` follows Jina's v4 request schema and accepts OpenAI's fields:

- ``input``: a string, a list of strings and/or objects ``{"text"}``, ``{"image": URL | base64 | data URI}``,
  ``{"pdf": URL | base64 | data URI, "pages": "1-3,7" (optional, 1-based)}``, or one such object;
- ``task`` (default: the server's ``default_task``, ``retrieval.passage`` unless configured),
  ``dimensions``, ``late_chunking``, ``truncate`` (default false: too long is a 413), ``return_multivector``,
  ``embedding_type`` (string or list), ``encoding_format`` (OpenAI: float | base64), ``user`` (ignored).

Response items (``data[i]``): ``object``, ``index`` (position in ``data``), ``embedding`` (or
``embeddings``, tokens x 128, with ``return_multivector``). A PDF input yields one item per page; when the
request holds a PDF, EVERY item also carries ``input_index`` (position of its input) and page items carry
``page`` (1-based), since ``index`` no longer equals the input position.
``usage.prompt_tokens == usage.total_tokens`` = the sum over all sequences the model ran: text tokens
including the task prefix; images and pages their full sequence (chat template and image pad tokens); a
late-chunking request its one joined sequence.
"""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import UNSET, Meta, Struct, UnsetType

__all__ = [
    "EmbeddingObject",
    "EmbeddingsRequest",
    "EmbeddingsResponse",
    "ModelCard",
    "ModelList",
    "RerankRequest",
    "RerankResponse",
    "RerankResult",
    "Usage",
]

# a real 28x28 PNG, so the schema's example is a request the server accepts (schemathesis sends it)
_EXAMPLE_PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAIAAAD9b0jDAAAAKElEQVR42mPUiDrBQG3AxEADMGroqK"
    "Gjho4aOmroqKGjho4aOvgMBQAHIwGCfBTBAwAAAABJRU5ErkJggg=="
)

InputValue = Annotated[
    str | list[str | dict[str, Any]] | dict[str, Any],
    Meta(
        description='A string, or a list of strings and/or {"text": ...}, {"image": URL|base64|data URI}, '
        '{"pdf": URL|base64|data URI, "pages": "1-3"} objects (one object alone is accepted too).',
        examples=[["A blue cat", {"image": _EXAMPLE_PNG}]],
    ),
]


class EmbeddingsRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /v1/embeddings`` (Jina v4 + OpenAI). Unknown fields are refused (422 ``unknown_field``)."""

    input: InputValue
    model: str | None = None
    task: Annotated[
        str | None,
        Meta(description="retrieval.query | retrieval.passage | text-matching | code.query | code.passage"),
    ] = None
    dimensions: Annotated[int | None, Meta(description="Matryoshka size (e.g. 128, 256, 512, 1024, 2048)")] = None
    late_chunking: bool = False
    truncate: Annotated[bool, Meta(description="Cut over-long texts instead of answering 413")] = False
    return_multivector: bool = False
    return_dense: Annotated[
        bool,
        Meta(
            description="jev4-serve extension: with return_multivector, each item carries BOTH `embedding` "
            "(single vector, `dimensions` applies) and `embeddings` (multi-vector), from one forward pass"
        ),
    ] = False
    normalized: Annotated[
        bool | None,
        Meta(description="Jina v3/v5 field: v4 outputs are always L2-normalised, so true is a no-op, false a 400"),
    ] = None
    embedding_type: Annotated[
        str | list[str] | None, Meta(description="float | base64 | binary | ubinary, or a list of them")
    ] = None
    encoding_format: Annotated[str | None, Meta(description="OpenAI: float | base64")] = None
    encoding_type: Annotated[
        str | list[str] | None,
        Meta(description="Alias of embedding_type (sent by Jina's older API clients, e.g. LlamaIndex's)"),
    ] = None
    user: Annotated[str | None, Meta(description="Ignored (OpenAI compatibility)")] = None


class Usage(Struct):
    total_tokens: int
    prompt_tokens: int


class EmbeddingObject(Struct, kw_only=True):
    """One output vector; ``embedding`` / ``embeddings`` hold a value per ``embedding_type``."""

    object: str = "embedding"
    index: int
    embedding: Any | UnsetType = UNSET
    embeddings: Any | UnsetType = UNSET
    input_index: int | UnsetType = UNSET
    page: int | UnsetType = UNSET


class EmbeddingsResponse(Struct, kw_only=True):
    model: str
    object: str = "list"
    usage: Usage
    data: list[EmbeddingObject]


RerankItem = Annotated[
    str | dict[str, Any],
    Meta(
        description='A string, {"text": ...} or {"image": URL|base64|data URI} (jina-reranker-m0 shape); '
        'a document object may also carry an "id", returned with it'
    ),
]


class RerankRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /v1/rerank`` (Jina reranker shape, jina-reranker-m0's included). Unknown fields: 422."""

    query: RerankItem
    documents: list[RerankItem]
    model: str | None = None
    top_n: Annotated[int, Meta(ge=1)] | None = None
    return_documents: bool = True
    scoring: Annotated[str, Meta(description="maxsim (late interaction, default) | cosine (single vectors)")] = "maxsim"
    task: Annotated[str, Meta(description="adapter: retrieval | code | text-matching")] = "retrieval"
    truncate: bool = False


class RerankResult(Struct):
    index: int
    relevance_score: float
    document: dict[str, Any] | UnsetType = UNSET


class RerankResponse(Struct, kw_only=True):
    model: str
    object: str = "list"
    usage: Usage
    results: list[RerankResult]


class ModelCard(Struct):
    id: str
    object: str = "model"
    owned_by: str = "jev4-serve"
    created: int = 0


class ModelList(Struct):
    data: list[ModelCard]
    object: str = "list"
