"""The one core of :class:`~service.client.Client` and :class:`~service.client.AsyncClient`: what each
operation sends and how its answer is read, written once, without I/O.

An operation is a :class:`Call` (method, path, body, and the parser of its answer). An operation of several
steps (an upload followed until its job finishes) is a *flow*: a generator that yields calls (the driver sends
back each parsed answer) and :class:`Sleep` pauses, and returns the result. The sync client drives flows with
``httpx.Client`` and ``time.sleep``, the async one with ``httpx.AsyncClient`` and ``asyncio.sleep``; neither
holds any logic of its own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypedDict, TypeVar

import httpx

from service.client.types import Document, Job

__all__ = [
    "Call",
    "ClientError",
    "Config",
    "Flow",
    "SearchOptions",
    "Sleep",
    "UploadOptions",
    "check",
    "follow_job",
    "named_url",
    "search_body",
    "start_upload",
]

T = TypeVar("T")


class ClientError(Exception):
    """The server refused or failed a request: ``status`` (HTTP; ``None`` for a background job that failed, or
    when the server could not be reached), ``code`` (e.g. ``collection_not_found``) and ``message`` from its
    JSON error body (``{"error": {"message", "type", "code"}}``)."""

    def __init__(self, status: int | None, code: str, message: str, *, type: str = "") -> None:
        super().__init__(f"{status or '-'} {code}: {message}")
        self.status, self.code, self.message, self.type = status, code, message, type


def named_url(base_url: str | None) -> str | None:
    """The server ``base_url`` or else ``JEV4_URL`` names; None when neither does (the CLI then works without a
    server)."""
    return base_url or os.environ.get("JEV4_URL") or None


@dataclass(frozen=True, slots=True)
class Config:
    """Where the server is and the key to send; arguments win over ``JEV4_URL`` / ``JEV4_API_KEY``."""

    base_url: str
    api_key: str | None
    timeout_s: float

    @classmethod
    def resolve(cls, base_url: str | None, api_key: str | None, timeout_s: float) -> Config:
        url = named_url(base_url) or "http://127.0.0.1:8080"
        key = api_key if api_key is not None else os.environ.get("JEV4_API_KEY") or None
        return cls(url.rstrip("/"), key, timeout_s)

    def headers(self) -> dict[str, str]:
        return {} if self.api_key is None else {"Authorization": f"Bearer {self.api_key}"}


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One HTTP request and the parser of its (successful) answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json: Any = None
    params: dict[str, Any] | None = None
    files: dict[str, Any] | None = None
    data: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


Flow = Generator["Call[Any] | Sleep", Any, T]


def check(response: httpx.Response) -> httpx.Response:
    """``response`` when 2xx/3xx; else :class:`ClientError` from the server's error body (or its raw text)."""
    if response.status_code < 400:
        return response
    try:
        body = response.json()
        error = body["error"]
        raise ClientError(response.status_code, str(error["code"]), str(error["message"]), type=str(error["type"]))
    except (ValueError, KeyError, TypeError):
        raise ClientError(response.status_code, "http_error", response.text[:500] or response.reason_phrase) from None


class SearchOptions(TypedDict, total=False):
    """Every option of ``POST /v1/collections/{name}/search`` besides the query (see docs/api.md)."""

    mode: Literal["visual", "text", "hybrid"]
    fusion: Literal["rrf", "weighted"]
    text_weight: float
    top_k: int
    filter: dict[str, Any]
    include_image: bool
    include_similarity_map: bool
    include_text: bool
    highlight: bool
    regions: bool
    exhaustive: bool
    candidates: int
    first_stage: Literal["dense", "pooled", "ivf", "pooled_ivf"]
    model: str


def search_body(
    query: str | None, query_image: str | None, like: tuple[str, int] | None, options: SearchOptions
) -> dict[str, Any]:
    """The search body: exactly one of the three queries is checked by the server (a 422 names them)."""
    body: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
    if query is not None:
        body["query"] = query
    if query_image is not None:
        body["query_image"] = query_image
    if like is not None:
        body["like"] = {"document_id": like[0], "page": like[1]}
    return body


class UploadOptions(TypedDict, total=False):
    """Fields of a document upload besides the file (see ``AddDocumentRequest``)."""

    metadata: dict[str, Any]
    pages: str
    ocr: str  # auto | always | never
    document_id: str
    replace: bool


def _upload_parts(
    file: str | Path | bytes, filename: str | None, options: UploadOptions
) -> tuple[dict[str, Any], dict[str, str]]:
    """Multipart parts: the file (its name from the path unless given) and the option fields as text."""
    if isinstance(file, bytes):
        content, name = file, filename or "upload"
    else:
        path = Path(file)
        content, name = path.read_bytes(), filename or path.name
    data: dict[str, str] = {}
    if "metadata" in options:
        import json

        data["metadata"] = json.dumps(options["metadata"])
    if "pages" in options:
        data["pages"] = options["pages"]
    if "ocr" in options:
        data["ocr"] = options["ocr"]
    if "document_id" in options:
        data["document_id"] = options["document_id"]
    if options.get("replace"):
        data["replace"] = "true"
    return {"file": (name, content)}, data


def _job_or_document(response: httpx.Response) -> Job | Document:
    """202: the job to follow; 200 (the same bytes are already stored): that document; 201: the document."""
    body = response.json()
    return Job.from_json(body) if body.get("object") == "indexing_job" else Document.from_json(body)


def start_upload(
    collection: str, file: str | Path | bytes, filename: str | None, options: UploadOptions
) -> Call[Job | Document]:
    files, data = _upload_parts(file, filename, options)
    return Call(
        "POST",
        f"/v1/collections/{collection}/documents",
        _job_or_document,
        params={"wait": "false"},
        files=files,
        data=data,
    )


def start_upload_url(collection: str, url: str, options: UploadOptions) -> Call[Job | Document]:
    """The server fetches ``url`` (a PDF, office file, e-book, image, web page, text/code file) under its URL rules
    and indexes it as an upload; its job at once (or the stored document the same bytes already are)."""
    return Call(
        "POST",
        f"/v1/collections/{collection}/documents",
        _job_or_document,
        params={"wait": "false"},
        json={"url": url, **options},
    )


def follow_job(
    collection: str,
    started: Job | Document,
    *,
    on_progress: Callable[[Job], None] | None,
    poll_s: float,
    timeout_s: float | None,
) -> Flow[Document]:
    """Poll the job until it finishes: its document, or :class:`ClientError` with the job's error body."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    job = started
    while isinstance(job, Job):
        if on_progress is not None:
            on_progress(job)
        if job.status == "succeeded" and job.document is not None:
            return job.document
        if job.finished:
            err = job.error or {}
            raise ClientError(
                None,
                err.get("code", "job_failed"),
                err.get("message", f"job {job.id} {job.status}"),
                type=err.get("type", ""),
            )
        if deadline is not None and time.monotonic() > deadline:
            raise ClientError(None, "timeout", f"job {job.id} still {job.status} after {timeout_s} s")
        yield Sleep(poll_s)
        job = yield Call("GET", f"/v1/collections/{collection}/jobs/{job.id}", lambda r: Job.from_json(r.json()))
    return job
