""":class:`AsyncClient`: :class:`~service.client.sync.Client` for asyncio, method for method (same names,
arguments and results), each one line over the same :mod:`service.client.operations` / :mod:`service.client.core`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar, Unpack

import httpx

from service.client import operations as ops
from service.client.core import (
    Call,
    ClientError,
    Config,
    Flow,
    SearchOptions,
    Sleep,
    UploadOptions,
    check,
    follow_job,
    start_upload,
    start_upload_url,
)
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
)

__all__ = ["AsyncClient"]

T = TypeVar("T")
Progress = Callable[[Job], None]


class AsyncClient:
    """A jev4-serve server over HTTP, for asyncio. ``base_url`` / ``api_key`` default to ``JEV4_URL`` / ``JEV4_API_KEY``
    (then ``http://127.0.0.1:8080``, no key). Errors: :class:`~service.client.ClientError`."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout_s: float = 300.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = Config.resolve(base_url, api_key, timeout_s)
        self._http = httpx.AsyncClient(
            base_url=self.config.base_url, headers=self.config.headers(), timeout=timeout_s, transport=transport
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, call: Call[T]) -> T:
        try:
            response = await self._http.request(
                call.method, call.path, json=call.json, params=call.params, files=call.files, data=call.data
            )
        except httpx.TransportError as exc:
            raise ClientError(None, "unreachable", f"{self.config.base_url}: {exc}") from exc
        return call.parse(check(response))

    async def _flow(self, flow: Flow[T]) -> T:
        try:
            step = next(flow)
            while True:
                if isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                    step = flow.send(None)
                else:
                    step = flow.send(await self._call(step))
        except StopIteration as done:
            result: T = done.value
            return result

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        files: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Any route (``path`` from ``/v1/...``) with this client's URL, key and errors: the 2xx/3xx response
        itself, for JSON decoded into types of your own; a 4xx/5xx raises :class:`~service.client.ClientError`."""
        return await self._call(ops.raw(method, path, json, params, files, data))

    # ---- collections -------------------------------------------------------------------------------------
    async def list_collections(self) -> list[Collection]:
        return await self._call(ops.list_collections())

    async def create_collection(self, name: str, **options: Any) -> Collection:
        """``options``: dimensions, codec, pool_factor, task (retrieval | code), unit_kind (page | chunk)."""
        return await self._call(ops.create_collection(name, options))

    async def get_collection(self, name: str) -> Collection:
        return await self._call(ops.get_collection(name))

    async def delete_collection(self, name: str) -> Deleted:
        return await self._call(ops.delete_collection(name))

    async def vacuum(self, name: str, codec: str | None = None) -> Vacuumed:
        return await self._call(ops.vacuum(name, codec))

    async def train_cells(self, name: str, cells: int | None = None) -> CellsTrained:
        """Give an embedded collection the cells of the ``pooled_ivf`` first stage (once; then files new units)."""
        return await self._call(ops.train_cells(name, cells))

    # ---- documents ---------------------------------------------------------------------------------------
    async def upload(
        self,
        collection: str,
        file: str | Path | bytes,
        *,
        filename: str | None = None,
        on_progress: Progress | None = None,
        poll_s: float = 0.5,
        timeout_s: float | None = None,
        **options: Unpack[UploadOptions],
    ) -> Document:
        """Upload a PDF, image, text or code file (a path or bytes) and return the stored document; the upload
        runs as a job (``wait=false``) and ``on_progress`` sees it after every poll (``pages_done``)."""
        started = await self.start_upload(collection, file, filename=filename, **options)
        return await self.wait_for_job(collection, started, on_progress=on_progress, poll_s=poll_s, timeout_s=timeout_s)

    async def start_upload(
        self,
        collection: str,
        file: str | Path | bytes,
        *,
        filename: str | None = None,
        **options: Unpack[UploadOptions],
    ) -> Job | Document:
        """Send the file and return its job at once (or the stored document the same bytes already are)."""
        return await self._call(start_upload(collection, file, filename, options))

    async def wait_for_job(
        self,
        collection: str,
        job: Job | Document,
        *,
        on_progress: Progress | None = None,
        poll_s: float = 0.5,
        timeout_s: float | None = None,
    ) -> Document:
        return await self._flow(
            follow_job(collection, job, on_progress=on_progress, poll_s=poll_s, timeout_s=timeout_s)
        )

    async def upload_url(
        self,
        collection: str,
        url: str,
        *,
        on_progress: Progress | None = None,
        poll_s: float = 0.5,
        timeout_s: float | None = None,
        **options: Unpack[UploadOptions],
    ) -> Document:
        """Have the server fetch ``url`` (a PDF, office file, e-book, image, web page, text or code file; under its
        URL rules: JEV4_ALLOW_REMOTE_URLS, allowed hosts, no private addresses) and index it as a job; the stored
        document, its metadata ``source`` the URL."""
        started = await self._call(start_upload_url(collection, url, options))
        return await self.wait_for_job(collection, started, on_progress=on_progress, poll_s=poll_s, timeout_s=timeout_s)

    async def add_text(self, collection: str, text: str, *, path: str | None = None, **fields: Any) -> Document:
        """A text/code document (``path`` names its language by extension); fields: language, metadata,
        document_id, replace."""
        return await self._call(ops.add_text(collection, text, {"path": path, **fields}))

    async def list_documents(self, collection: str, *, offset: int = 0, limit: int = 100) -> DocumentList:
        return await self._call(ops.list_documents(collection, offset, limit))

    async def get_document(self, collection: str, document_id: str) -> Document:
        return await self._call(ops.get_document(collection, document_id))

    async def patch_document(
        self, collection: str, document_id: str, metadata: dict[str, Any], *, replace: bool = False
    ) -> Document:
        return await self._call(ops.patch_document(collection, document_id, metadata, replace))

    async def delete_document(self, collection: str, document_id: str) -> Deleted:
        return await self._call(ops.delete_document(collection, document_id))

    async def document_file(self, collection: str, document_id: str) -> bytes:
        """The original file as uploaded (kept when the server runs with JEV4_KEEP_ORIGINALS=true)."""
        return await self._call(ops.document_file(collection, document_id))

    async def list_jobs(self, collection: str, status: str | None = None) -> list[Job]:
        return await self._call(ops.list_jobs(collection, status))

    async def get_job(self, collection: str, job_id: str) -> Job:
        return await self._call(ops.get_job(collection, job_id))

    # ---- search and pages --------------------------------------------------------------------------------
    async def search(
        self,
        collection: str,
        query: str | None = None,
        *,
        query_image: str | None = None,
        like: tuple[str, int] | None = None,
        **options: Unpack[SearchOptions],
    ) -> SearchResults:
        """One of ``query`` (text), ``query_image`` (base64 / data URI / URL) or ``like`` ((document id, page))."""
        return await self._call(ops.search(collection, query, query_image, like, options))

    async def page_image(
        self, collection: str, document_id: str, page: int, *, size: Literal["full", "thumbnail"] = "full"
    ) -> bytes:
        return await self._call(ops.page_image(collection, document_id, page, size))

    async def page_similarity(
        self,
        collection: str,
        document_id: str,
        page: int,
        query: str,
        *,
        highlight: bool = False,
        regions: bool = False,
    ) -> PageSimilarity:
        return await self._call(ops.page_similarity(collection, document_id, page, query, highlight, regions))

    # ---- embeddings --------------------------------------------------------------------------------------
    async def embed(self, inputs: list[Any], **options: Any) -> Embeddings:
        """``POST /v1/embeddings``; options: task, dimensions, return_multivector, late_chunking, truncate, …"""
        return await self._call(ops.embed(inputs, options))

    async def rerank(self, query: Any, documents: list[Any], **options: Any) -> Reranked:
        """``POST /v1/rerank``; options: top_n, return_documents, scoring, task, truncate."""
        return await self._call(ops.rerank(query, documents, options))
