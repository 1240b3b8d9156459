"""``POST /v1/embeddings`` logic: options, preparation, batching, truncation, wire encoding, usage.

Decisions (documented in the README's API section):

- ``task`` omitted -> the server's ``default_task`` (``retrieval.passage``): an OpenAI client embedding
  documents gets passage embeddings; send ``retrieval.query`` for queries.
- ``encoding_format`` (OpenAI) and ``embedding_type`` (Jina) are synonyms for one type; both given and
  different -> 422. A list ``embedding_type`` returns an object keyed by type for each item.
- ``dimensions`` must be one of the checkpoint's Matryoshka sizes (or its full size), else 422; it applies to
  single vectors, and is refused (422) together with ``return_multivector`` (multi-vectors are always 128-d).
- ``return_multivector`` returns ``embeddings`` (tokens x 128) INSTEAD of ``embedding``, as Jina does.
- ``return_dense`` (our extension) with ``return_multivector``: each item carries both ``embedding`` and
  ``embeddings``, computed by the same forward pass; ``dimensions`` then applies to ``embedding``.
- ``normalized`` (Jina's v3/v5 field): v4 vectors are always L2-normalised, so ``true`` changes nothing and
  ``false`` is a 422 (it would ask for something this model cannot give).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from model.errors import InvalidDimensionError
from model.pooling import truncate as truncate_dims
from model.types import TaskSpec
from service.embeddings.encoding import EmbeddingType, encode_value, parse_embedding_types
from service.embeddings.inputs import parse_api_task, parse_inputs
from service.embeddings.schemas import EmbeddingObject, EmbeddingsRequest, EmbeddingsResponse, Usage
from service.errors import UnprocessableError

if TYPE_CHECKING:
    from model.types import EmbeddingOutput
    from service.embeddings.prepare import Row
    from service.engine.runtime import Runtime

__all__ = ["EmbedOptions", "embed_request", "resolve_options"]


@dataclass(frozen=True, slots=True)
class EmbedOptions:
    """The validated knobs of one request."""

    spec: TaskSpec
    kinds: list[EmbeddingType]
    as_dict: bool
    dimensions: int | None
    multivector: bool
    dense: bool
    late_chunking: bool
    truncate: bool


def resolve_options(data: EmbeddingsRequest, default_task: str, allowed_dims: Collection[int]) -> EmbedOptions:
    """Validate task, encoding and dimensions (422 with the allowed values on error)."""
    spec = parse_api_task(data.task if data.task is not None else default_task)
    kinds = _kinds(data)
    if data.normalized is False:
        raise UnprocessableError(
            "normalized=false is not available: jina-embeddings-v4 vectors are always L2-normalised "
            "(drop normalized or send true)",
            code="invalid_normalized",
        )
    dense = not data.return_multivector or data.return_dense
    if data.dimensions is not None:
        if not dense:
            raise UnprocessableError(
                "dimensions applies to single vectors; multi-vectors are always 128-d "
                "(drop dimensions, or add return_dense=true to get both)",
                code="invalid_dimensions",
            )
        if data.dimensions not in allowed_dims:
            raise InvalidDimensionError(f"dimensions must be one of {sorted(allowed_dims)}, got {data.dimensions}")
    return EmbedOptions(
        spec=spec,
        kinds=kinds,
        as_dict=isinstance(_requested_type(data), list),
        dimensions=data.dimensions,
        multivector=data.return_multivector,
        dense=dense,
        late_chunking=data.late_chunking,
        truncate=data.truncate,
    )


def _requested_type(data: EmbeddingsRequest) -> str | list[str]:
    """The one encoding asked for by ``embedding_type``, its alias ``encoding_type`` and/or OpenAI's
    ``encoding_format`` (400 when they disagree); ``float`` when none is given."""
    given = {
        name: value
        for name, value in (
            ("embedding_type", data.embedding_type),
            ("encoding_type", data.encoding_type),
            ("encoding_format", data.encoding_format),
        )
        if value is not None
    }
    values = list(given.values())
    if any(value != values[0] for value in values[1:]):
        shown = ", ".join(f"{name}={value!r}" for name, value in given.items())
        raise UnprocessableError(f"{shown} differ; send one of them", code="invalid_encoding")
    return values[0] if values else "float"


def _kinds(data: EmbeddingsRequest) -> list[EmbeddingType]:
    if data.encoding_format is not None and data.encoding_format not in ("float", "base64"):
        raise UnprocessableError(
            f"encoding_format must be 'float' or 'base64', got {data.encoding_format!r}",
            code="invalid_encoding",
        )
    try:
        return parse_embedding_types(_requested_type(data))
    except ValueError as exc:
        raise UnprocessableError(str(exc), code="invalid_encoding") from None


async def embed_request(runtime: Runtime, data: EmbeddingsRequest) -> EmbeddingsResponse:
    """Run one request end to end (the caller wraps it in the disconnect watcher)."""
    runtime.check_model(data.model)
    encoder, batcher, preparer = runtime.engine()
    info = encoder.info
    options = resolve_options(data, runtime.default_task, {*info.matryoshka_dims, info.hidden_size})
    items = parse_inputs(data.input, max_items=runtime.limits.max_items_per_request)
    rows: list[Row] | None = None
    if options.late_chunking:
        late = await preparer.prepare_late_chunks(items, options.spec, truncate=options.truncate)
        outputs = await batcher.embed_late_chunks(late, return_multivector=options.multivector)
        tokens = late.prepared.num_tokens
        runtime.metrics.tokens.labels(kind="late_chunk").inc(tokens)
    else:
        rows = await preparer.prepare(items, options.spec, truncate=options.truncate)
        outputs = await batcher.embed([row.prepared for row in rows], return_multivector=options.multivector)
        tokens = sum(row.prepared.num_tokens for row in rows)
        _count(runtime, rows)
    loop = asyncio.get_running_loop()
    data_items = await loop.run_in_executor(runtime.pool, lambda: _build_items(outputs, rows, options, info))
    return EmbeddingsResponse(
        model=runtime.model_name, usage=Usage(total_tokens=tokens, prompt_tokens=tokens), data=data_items
    )


def _count(runtime: Runtime, rows: Sequence[Row]) -> None:
    metrics = runtime.metrics
    for row in rows:
        kind = "image" if row.prepared.is_image else "text"
        metrics.tokens.labels(kind=kind).inc(row.prepared.num_tokens)
        if row.page is not None:
            metrics.pdf_pages.inc()
        elif row.prepared.is_image:
            metrics.images.inc()


def _build_items(
    outputs: Sequence[EmbeddingOutput], rows: Sequence[Row] | None, options: EmbedOptions, info: Any
) -> list[EmbeddingObject]:
    """Encode every output (pre-serialised as msgspec.Raw so the event loop only concatenates bytes)."""
    has_pdf = rows is not None and any(row.page is not None for row in rows)
    dense = np.stack([out.dense for out in outputs])  # (N, hidden)
    if options.dimensions is not None and options.dimensions != dense.shape[1]:
        dense = truncate_dims(dense, options.dimensions, info.matryoshka_dims)  # (N, dimensions)
    items: list[EmbeddingObject] = []
    for i, out in enumerate(outputs):
        item = EmbeddingObject(index=i)
        if options.multivector:
            assert out.multivector is not None
            item.embeddings = msgspec.Raw(
                msgspec.json.encode(encode_value(out.multivector, options.kinds, as_dict=options.as_dict))
            )
        if options.dense:
            item.embedding = msgspec.Raw(
                msgspec.json.encode(encode_value(dense[i], options.kinds, as_dict=options.as_dict))
            )
        if has_pdf and rows is not None:
            item.input_index = rows[i].input_index
            page = rows[i].page
            if page is not None:
                item.page = page
        items.append(item)
    return items
