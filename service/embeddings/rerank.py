"""``POST /v1/rerank`` logic: score documents (texts and/or images) against one query.

The query is embedded with ``<task>.query``, documents with ``<task>.passage`` (images: no prefix). Scores:

- ``maxsim`` (default): late interaction over the 128-d multi-vectors,
  ``sum over query tokens of max over document tokens of q . d`` (unnormalised; grows with query length);
- ``cosine``: dot product of the L2-normalised single vectors, in [-1, 1].

Results are sorted by score (descending), cut to ``top_n``; ``index`` is the document's request position.

jina-reranker-m0's request shape is accepted as it is: the query a string, ``{"text"}`` or ``{"image"}``;
documents strings, ``{"text"}`` or ``{"image"}`` objects, a document object optionally carrying an ``"id"``
(Jina's TextDoc), which comes back in ``document`` with the rest of the object as it was sent.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import numpy as np

from colbert.scoring import maxsim
from model.types import PromptType, Task, TaskSpec
from service.embeddings.embed import ImageItem, InputItem, PdfItem, TextItem, parse_inputs, parse_item
from service.embeddings.schemas import RerankRequest, RerankResponse, RerankResult, Usage
from service.errors import UnprocessableError

if TYPE_CHECKING:
    from service.engine.runtime import Runtime

__all__ = ["rerank_request"]


def _specs(task: str) -> tuple[TaskSpec, TaskSpec]:
    try:
        adapter = Task(task)
    except ValueError:
        raise UnprocessableError(
            f"task for rerank must be one of retrieval, code, text-matching; got {task!r}",
            code="invalid_task",
        ) from None
    return TaskSpec(adapter, PromptType.QUERY), TaskSpec(adapter, PromptType.PASSAGE)


def _no_pdf(items: list[InputItem], field: str) -> None:
    for i, item in enumerate(items):
        if isinstance(item, PdfItem):
            raise UnprocessableError(f"{field}[{i}]: rerank takes texts and images, not PDFs", code="invalid_input")


def _document(item: InputItem, raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return dict(raw)  # as sent (Jina: "all text fields will be preserved in the response")
    if isinstance(item, TextItem):
        return {"text": item.text}
    assert isinstance(item, ImageItem)
    return {"image": item.source}


def _without_ids(documents: list[Any]) -> list[Any]:
    """Documents with a TextDoc ``id`` set aside (it must be a string; it is echoed, never embedded)."""
    out: list[Any] = []
    for i, doc in enumerate(documents):
        if isinstance(doc, dict) and "id" in doc:
            if not isinstance(doc["id"], str):
                raise UnprocessableError(f"documents[{i}].id: expected a string", code="invalid_input")
            doc = {k: v for k, v in doc.items() if k != "id"}
        out.append(doc)
    return out


async def rerank_request(runtime: Runtime, data: RerankRequest) -> RerankResponse:
    runtime.check_model(data.model)
    _encoder, batcher, preparer = runtime.engine()
    if data.scoring not in ("maxsim", "cosine"):
        raise UnprocessableError(f"scoring must be 'maxsim' or 'cosine', got {data.scoring!r}", code="invalid_scoring")
    query_spec, doc_spec = _specs(data.task)
    query = parse_item(data.query, "query")
    _no_pdf([query], "query")
    documents = parse_inputs(
        _without_ids(data.documents), max_items=runtime.limits.max_items_per_request, field="documents"
    )
    _no_pdf(documents, "documents")
    query_rows, doc_rows = await asyncio.gather(
        preparer.prepare([query], query_spec, truncate=data.truncate),
        preparer.prepare(documents, doc_spec, truncate=data.truncate),
    )
    rows = [*query_rows, *doc_rows]
    multivector = data.scoring == "maxsim"
    outputs = await batcher.embed([row.prepared for row in rows], return_multivector=multivector)
    q, docs = outputs[0], outputs[1:]
    if multivector:
        assert q.multivector is not None
        scores = maxsim(q.multivector, [d.multivector for d in docs if d.multivector is not None])[0]  # (N,)
    else:
        scores = np.stack([d.dense for d in docs]) @ q.dense  # (N, hidden) @ (hidden,) -> (N,)
    order = np.argsort(-scores, kind="stable")
    if data.top_n is not None:
        order = order[: data.top_n]
    results = [
        RerankResult(index=int(i), relevance_score=float(scores[i]))
        if not data.return_documents
        else RerankResult(
            index=int(i), relevance_score=float(scores[i]), document=_document(documents[i], data.documents[i])
        )
        for i in order
    ]
    tokens = sum(row.prepared.num_tokens for row in rows)
    return RerankResponse(
        model=runtime.model_name, usage=Usage(total_tokens=tokens, prompt_tokens=tokens), results=results
    )
