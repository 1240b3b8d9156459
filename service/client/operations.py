"""Each single-request operation of the client as a :class:`~service.client.core.Call`: the route, the body
and how the answer becomes a typed result (:mod:`service.client.types`). Flows of several requests (uploads
followed to the end) are in :mod:`service.client.core`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from service.client.core import Call, SearchOptions, search_body
from service.client.types import (
    CellsTrained,
    Collection,
    Deleted,
    Document,
    DocumentList,
    Embeddings,
    Job,
    PageSimilarity,
    Reranked,
    SearchResults,
    Vacuumed,
    build,
)

__all__ = [
    "add_text",
    "create_collection",
    "delete_collection",
    "delete_document",
    "document_file",
    "embed",
    "get_collection",
    "get_document",
    "get_job",
    "list_collections",
    "list_documents",
    "list_jobs",
    "page_image",
    "page_similarity",
    "patch_document",
    "raw",
    "rerank",
    "search",
    "train_cells",
    "vacuum",
]


def _c(name: str) -> str:
    return f"/v1/collections/{quote(name, safe='')}"


def _d(collection: str, document_id: str) -> str:
    return f"{_c(collection)}/documents/{quote(document_id, safe='')}"


def _json(r: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = r.json()
    return body


def _bytes(r: httpx.Response) -> bytes:
    return r.content


def raw(
    method: str,
    path: str,
    json: Any = None,
    params: dict[str, Any] | None = None,
    files: dict[str, Any] | None = None,
    data: dict[str, str] | None = None,
) -> Call[httpx.Response]:
    """Any route, its (successful) answer as the response itself: for callers that decode the JSON into their
    own types (the CLI decodes into the server's schemas, so its output is the same with and without a server)."""
    return Call(method, path, lambda r: r, json=json, params=params, files=files, data=data)


def list_collections() -> Call[list[Collection]]:
    return Call("GET", "/v1/collections", lambda r: [build(Collection, c) for c in _json(r)["data"]])


def create_collection(name: str, options: dict[str, Any]) -> Call[Collection]:
    body = {"name": name, **{k: v for k, v in options.items() if v is not None}}
    return Call("POST", "/v1/collections", lambda r: build(Collection, _json(r)), json=body)


def get_collection(name: str) -> Call[Collection]:
    return Call("GET", _c(name), lambda r: build(Collection, _json(r)))


def delete_collection(name: str) -> Call[Deleted]:
    return Call("DELETE", _c(name), lambda r: build(Deleted, _json(r)))


def vacuum(name: str, codec: str | None = None) -> Call[Vacuumed]:
    body = None if codec is None else {"codec": codec}
    return Call("POST", f"{_c(name)}/vacuum", lambda r: build(Vacuumed, _json(r)), json=body)


def train_cells(name: str, cells: int | None = None) -> Call[CellsTrained]:
    body = None if cells is None else {"cells": cells}
    return Call("POST", f"{_c(name)}/cells", lambda r: build(CellsTrained, _json(r)), json=body)


def add_text(collection: str, text: str, fields: dict[str, Any]) -> Call[Document]:
    """A text or code document sent as JSON (``path`` names its language by extension), stored before the answer."""
    body = {"text": text, **{k: v for k, v in fields.items() if v is not None}}
    return Call("POST", f"{_c(collection)}/documents", lambda r: Document.from_json(_json(r)), json=body)


def list_documents(collection: str, offset: int, limit: int) -> Call[DocumentList]:
    params = {"offset": offset, "limit": limit}
    return Call("GET", f"{_c(collection)}/documents", lambda r: DocumentList.from_json(_json(r)), params=params)


def get_document(collection: str, document_id: str) -> Call[Document]:
    return Call("GET", _d(collection, document_id), lambda r: Document.from_json(_json(r)))


def patch_document(collection: str, document_id: str, metadata: dict[str, Any], replace: bool) -> Call[Document]:
    body = {"metadata": metadata, "replace": replace}
    return Call("PATCH", _d(collection, document_id), lambda r: Document.from_json(_json(r)), json=body)


def delete_document(collection: str, document_id: str) -> Call[Deleted]:
    return Call("DELETE", _d(collection, document_id), lambda r: build(Deleted, _json(r)))


def document_file(collection: str, document_id: str) -> Call[bytes]:
    return Call("GET", f"{_d(collection, document_id)}/file", _bytes)


def list_jobs(collection: str, status: str | None) -> Call[list[Job]]:
    params = None if status is None else {"status": status}
    return Call("GET", f"{_c(collection)}/jobs", lambda r: [Job.from_json(j) for j in _json(r)["data"]], params=params)


def get_job(collection: str, job_id: str) -> Call[Job]:
    return Call("GET", f"{_c(collection)}/jobs/{quote(job_id, safe='')}", lambda r: Job.from_json(_json(r)))


def search(
    collection: str,
    query: str | None,
    query_image: str | None,
    like: tuple[str, int] | None,
    options: SearchOptions,
) -> Call[SearchResults]:
    body = search_body(query, query_image, like, options)
    return Call("POST", f"{_c(collection)}/search", lambda r: SearchResults.from_json(_json(r)), json=body)


def page_image(collection: str, document_id: str, page: int, size: str) -> Call[bytes]:
    return Call("GET", f"{_d(collection, document_id)}/pages/{page}/image", _bytes, params={"size": size})


def page_similarity(
    collection: str, document_id: str, page: int, query: str, highlight: bool, regions: bool = False
) -> Call[PageSimilarity]:
    body: dict[str, Any] = {"query": query, "highlight": highlight}
    if regions:  # sent only when asked, so that servers without regions still answer
        body["regions"] = True
    path = f"{_d(collection, document_id)}/pages/{page}/similarity"
    return Call("POST", path, lambda r: PageSimilarity.from_json(_json(r)), json=body)


def embed(inputs: list[Any], options: dict[str, Any]) -> Call[Embeddings]:
    body = {"input": inputs, **{k: v for k, v in options.items() if v is not None}}
    return Call("POST", "/v1/embeddings", lambda r: Embeddings.from_json(_json(r)), json=body)


def rerank(query: Any, documents: list[Any], options: dict[str, Any]) -> Call[Reranked]:
    body = {"query": query, "documents": documents, **{k: v for k, v in options.items() if v is not None}}
    return Call("POST", "/v1/rerank", lambda r: Reranked.from_json(_json(r)), json=body)
