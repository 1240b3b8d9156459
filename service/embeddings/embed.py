"""``POST /v1/embeddings``: the request's one typed form (:class:`CheckedRequest`), and its run.

:meth:`CheckedRequest.parse` turns the wire body (``schemas.EmbeddingsRequest``) into the typed request, checking
in this order (a request with two mistakes gets the first one's 422): the task, the encodings, ``normalized``,
``dimensions``, then the input items. :func:`embed_request` runs it: prepare (``prepare.py``), batch and encode
(the batcher and the model), then each vector in the wire encodings asked for (``encoding.py``).

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

The loosely typed ``input`` becomes typed items, naming the offending index on error (the rerank route parses
its ``documents`` with the same functions):

>>> parse_inputs(["a cat", {"text": "a dog"}, {"image": "iVBOR..."}, {"pdf": "JVBER...", "pages": "1-2"}])
... # doctest: +NORMALIZE_WHITESPACE
[TextItem(text='a cat'), TextItem(text='a dog'), ImageItem(source='iVBOR...'),
 PdfItem(source='JVBER...', pages='1-2')]
>>> parse_inputs("one string")
[TextItem(text='one string')]
>>> parse_api_task("code.query").api_name
'code.query'
>>> parse_api_task("retrieval")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
model.errors.InvalidTaskError: task 'retrieval' names an adapter, not a task: send 'retrieval.query' (queries) or ...

Aliases (shapes Jina's API and its published clients send; docs/clients.md):

>>> parse_inputs([{"url": "https://x/cat.png"}, {"bytes": "iVBOR..."}, "data:image/png;base64,iVBOR..."])
... # doctest: +NORMALIZE_WHITESPACE
[ImageItem(source='https://x/cat.png'), ImageItem(source='iVBOR...'),
 ImageItem(source='data:image/png;base64,iVBOR...')]
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from model.errors import InvalidDimensionError, InvalidTaskError
from model.types import TaskSpec, parse_task
from service.embeddings.encoding import EmbeddingType, encode_value
from service.embeddings.schemas import EmbeddingObject, EmbeddingsRequest, EmbeddingsResponse, Usage
from service.errors import PayloadTooLargeError, UnprocessableError

if TYPE_CHECKING:
    from model.types import EmbeddingOutput
    from service.embeddings.prepare import Row
    from service.engine.runtime import Runtime

__all__ = [
    "API_TASKS",
    "CheckedRequest",
    "ImageItem",
    "InputItem",
    "PdfItem",
    "TextItem",
    "embed_request",
    "parse_api_task",
    "parse_embedding_types",
    "parse_inputs",
    "parse_item",
]

API_TASKS = ("retrieval.query", "retrieval.passage", "text-matching", "code.query", "code.passage")
# Their specs, parsed once: a request looks its task up; only a name that is not one reaches parse_task's errors.
_API_SPECS = {name: parse_task(name) for name in API_TASKS}


def parse_api_task(name: str) -> TaskSpec:
    """One of the five API task names (:data:`API_TASKS`). A bare adapter name (``retrieval``, ``code``) is refused
    rather than guessed: the reference's ``encode_text`` would read it as a query, an omitted task means a passage
    here, and a silent guess either way embeds half a corpus on the wrong side."""
    if name in ("retrieval", "code"):
        raise InvalidTaskError(
            f"task {name!r} names an adapter, not a task: send '{name}.query' (queries) or '{name}.passage' "
            f"(documents); the tasks are {', '.join(API_TASKS)}"
        )
    spec = _API_SPECS.get(name)
    return spec if spec is not None else parse_task(name)


@dataclass(frozen=True, slots=True)
class TextItem:
    text: str


@dataclass(frozen=True, slots=True)
class ImageItem:
    source: str  # URL, base64 or data URI


@dataclass(frozen=True, slots=True)
class PdfItem:
    source: str  # URL, base64 or data URI
    pages: str | None = None  # "1-3,7" (1-based); None = every page up to the cap


InputItem = TextItem | ImageItem | PdfItem

_KINDS = '"text", "image" or "pdf"'
_OTHER_MODALITIES = ("audio", "video")
# {"url": ...} and {"bytes": base64} are Jina's image objects of the CLIP era, still sent by LlamaIndex's and
# LangChain's Jina embeddings for images.
_IMAGE_ALIASES = ("url", "bytes")


def parse_inputs(raw: Any, *, max_items: int | None = None, field: str = "input") -> list[InputItem]:
    """A string, one object, or a list of strings/objects -> items. Empty and token-id lists are refused."""
    values = raw if isinstance(raw, list) else [raw]
    if not values:
        raise UnprocessableError(f"{field} is empty; expected at least one item", code="empty_input")
    if max_items is not None and len(values) > max_items:
        raise PayloadTooLargeError(
            f"{field} has {len(values)} items, more than the limit of {max_items} per request "
            "(JEV4_MAX_ITEMS_PER_REQUEST)",
            code="too_many_items",
        )
    return [parse_item(value, f"{field}[{i}]" if isinstance(raw, list) else field) for i, value in enumerate(values)]


def parse_item(value: Any, where: str) -> InputItem:
    """One input value -> an item (422 naming ``where`` when it is neither a string nor a known object)."""
    if isinstance(value, str):
        return _from_string(value, where)
    if isinstance(value, int | float | list):
        raise UnprocessableError(
            f"{where}: token ids and numbers are not accepted; send text as a string or {{'text': ...}}",
            code="invalid_input",
        )
    if not isinstance(value, dict):
        raise UnprocessableError(f"{where}: expected a string or an object with {_KINDS}", code="invalid_input")
    alias = [k for k in _IMAGE_ALIASES if k in value]
    if alias and not any(k in value for k in ("text", "image", "pdf")):
        value = {"image" if k == alias[0] else k: v for k, v in value.items()}
    kinds = [k for k in ("text", "image", "pdf") if k in value]
    other = [k for k in _OTHER_MODALITIES if k in value]
    if other:
        raise UnprocessableError(
            f"{where}: {other[0]} inputs are not supported: this server serves jina-embeddings-v4, which embeds "
            f"text, images and PDF pages; send an object with {_KINDS}",
            code="unsupported_input_type",
        )
    if len(kinds) != 1:
        found = ", ".join(sorted(map(str, value))) or "none"
        raise UnprocessableError(
            f"{where}: expected an object with exactly one of {_KINDS}; found keys: {found}",
            code="invalid_input",
        )
    kind = kinds[0]
    allowed = {"pdf": {"pdf", "pages"}}.get(kind, {kind})
    extra = sorted(set(value) - allowed)
    if extra:
        raise UnprocessableError(
            f"{where}: unknown key(s) for a {kind} input: {', '.join(extra)}", code="invalid_input"
        )
    content = value[kind]
    if not isinstance(content, str):
        raise UnprocessableError(
            f"{where}.{kind}: expected a string, got {type(content).__name__}", code="invalid_input"
        )
    if kind == "text":
        return _text(content, f"{where}.text")
    if kind == "image":
        return ImageItem(content)
    pages = value.get("pages")
    if pages is not None and not isinstance(pages, str):
        raise UnprocessableError(f'{where}.pages: expected a string like "1-3,7"', code="invalid_input")
    return PdfItem(content, pages)


def _text(value: str, where: str) -> TextItem:
    """Empty strings are refused, as OpenAI's and TEI's APIs do (the model would embed the prefix alone)."""
    if not value:
        raise UnprocessableError(f"{where}: empty string; send at least one character", code="empty_input")
    return TextItem(value)


def _from_string(value: str, where: str) -> InputItem:
    """A bare string is text, except a base64 data URI of an image or a PDF (Haystack's Jina image embedder
    sends images this way; no text starts with ``data:image/...;base64,``)."""
    head = value[:64].lower()
    if head.startswith("data:") and ";base64," in head:
        if head.startswith("data:image/"):
            return ImageItem(value)
        if head.startswith("data:application/pdf;"):
            return PdfItem(value)
    return _text(value, where)


def parse_embedding_types(value: str | Sequence[str]) -> list[EmbeddingType]:
    """``"float"`` or ``["float", "binary"]`` -> enum list (order kept, duplicates dropped).

    Raises ValueError naming the allowed values (the caller maps it to a 422)."""
    names = [value] if isinstance(value, str) else list(value)
    if not names:
        raise ValueError("embedding_type must name at least one of: float, base64, binary, ubinary")
    out: list[EmbeddingType] = []
    for name in names:
        try:
            kind = EmbeddingType(name)
        except ValueError:
            raise ValueError(
                f"unknown embedding_type {name!r}; expected one of: float, base64, binary, ubinary"
            ) from None
        if kind not in out:
            out.append(kind)
    return out


@dataclass(frozen=True, slots=True)
class CheckedRequest:
    """One ``/v1/embeddings`` body, checked and typed: what to embed, with which task, and how to answer."""

    spec: TaskSpec
    items: list[InputItem]
    kinds: list[EmbeddingType]  # the wire encodings, in the order asked
    as_dict: bool  # a list ``embedding_type``: each value is an object keyed by type
    dimensions: int | None
    multivector: bool
    dense: bool
    late_chunking: bool
    truncate: bool

    @classmethod
    def parse(
        cls, data: EmbeddingsRequest, *, default_task: str, allowed_dims: Collection[int], max_items: int | None
    ) -> CheckedRequest:
        """Check the body in the module doc's order (422 naming the allowed values, 413 for too many items)."""
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
        return cls(
            spec=spec,
            items=parse_inputs(data.input, max_items=max_items),
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
    ``encoding_format`` (422 when they disagree); ``float`` when none is given."""
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
    request = CheckedRequest.parse(
        data,
        default_task=runtime.default_task,
        allowed_dims={*info.matryoshka_dims, info.hidden_size},
        max_items=runtime.limits.max_items_per_request,
    )
    rows: list[Row] | None = None
    if request.late_chunking:
        late = await preparer.prepare_late_chunks(request.items, request.spec, truncate=request.truncate)
        outputs = await batcher.embed_late_chunks(late, return_multivector=request.multivector)
        tokens = late.prepared.num_tokens
        runtime.metrics.tokens.labels(kind="late_chunk").inc(tokens)
    else:
        rows = await preparer.prepare(request.items, request.spec, truncate=request.truncate)
        outputs = await batcher.embed([row.prepared for row in rows], return_multivector=request.multivector)
        tokens = sum(row.prepared.num_tokens for row in rows)
        _count(runtime, rows)
    loop = asyncio.get_running_loop()
    data_items = await loop.run_in_executor(runtime.pool, lambda: _build_items(outputs, rows, request, info))
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
    outputs: Sequence[EmbeddingOutput], rows: Sequence[Row] | None, request: CheckedRequest, info: Any
) -> list[EmbeddingObject]:
    """Encode every output (pre-serialised as msgspec.Raw so the event loop only concatenates bytes)."""
    has_pdf = rows is not None and any(row.page is not None for row in rows)
    # imported here, not at the top: model.pooling loads torch, and service.settings (the CLI's first import)
    # reads parse_api_task from this module
    from model.pooling import truncate as truncate_dims

    dense = np.stack([out.dense for out in outputs])  # (N, hidden)
    if request.dimensions is not None and request.dimensions != dense.shape[1]:
        dense = truncate_dims(dense, request.dimensions, info.matryoshka_dims)  # (N, dimensions)
    items: list[EmbeddingObject] = []
    for i, out in enumerate(outputs):
        item = EmbeddingObject(index=i)
        if request.multivector:
            assert out.multivector is not None
            item.embeddings = msgspec.Raw(
                msgspec.json.encode(encode_value(out.multivector, request.kinds, as_dict=request.as_dict))
            )
        if request.dense:
            item.embedding = msgspec.Raw(
                msgspec.json.encode(encode_value(dense[i], request.kinds, as_dict=request.as_dict))
            )
        if has_pdf and rows is not None:
            item.input_index = rows[i].input_index
            page = rows[i].page
            if page is not None:
                item.page = page
        items.append(item)
    return items
