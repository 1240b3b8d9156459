"""``/v1/collections``: create / list / get / delete collections; add (upload) / list / get / delete
documents; poll indexing jobs; search. Thin: parse, call :class:`service.collections.manager.Collections`, map.

Schemas and the route table: ``service.collections.schemas``. Errors: the app's table (404 unknown collection,
document or job; 409 name or document id taken; 413 too big; 415 not JSON/multipart or not a PDF/image;
422 invalid body, name, filter or page selection; 400 unreadable body; 503 while the model loads).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, Parameter

from service.collections.deletion import DeleteByFilterRequest, DeletionObject
from service.collections.manager import Collections
from service.collections.schemas import (
    MAX_JSON_INT,
    CellsObject,
    CellsRequest,
    CollectionList,
    CollectionObject,
    CreateCollectionRequest,
    DeletedObject,
    DocumentList,
    DocumentObject,
    JobList,
    JobObject,
    PatchDocumentRequest,
    VacuumObject,
    VacuumRequest,
)
from service.collections.search_schemas import SearchRequest, SearchResponse
from service.collections.uploads import read_upload
from service.http.controllers.common import content_disposition, require_json, until_disconnect
from service.http.openapi import ErrorResponse, UploadOperation

__all__ = ["CollectionsController"]


def _provide_collections(state: State) -> Collections:
    """The app's :class:`Collections`, made in the lifespan (``service.http.app``)."""
    collections: Collections = state["collections"]
    return collections


_ADD_DESCRIPTION = """\
JSON: `{"pdf" | "image": base64 | data URI | http(s) URL, "metadata": {...}, "pages": "1-3", \
"document_id": "...", "replace": false}`, or `{"url": "https://…/report.docx", …}` for any document the \
collection takes (PDF, office file, e-book, image, web page, text/code), fetched under the server's URL rules and \
kept as the metadata key `source`. Multipart: a `file` part (PDF or image) and optional `metadata` \
(JSON text), `pages`, `document_id`, `replace` parts. `?wait=true` (default) answers 201 with the document \
once every page is stored; `?wait=false` answers 202 with a job (`Location` header) whose `pages_done` / \
`pages_total` show progress at `GET /v1/collections/{name}/jobs/{id}`. The same bytes uploaded again without \
a `document_id` follow `JEV4_DUPLICATE_POLICY`: by default 200 with the stored document and an `X-Duplicate-Of` \
header (nothing is embedded); `refuse`: 409 `duplicate_document`; `allow`: a second document."""


class CollectionsController(Controller):
    path = "/v1/collections"
    tags = ("collections",)
    dependencies = {"collections": Provide(_provide_collections, sync_to_thread=False)}  # noqa: RUF012

    @post("/", status_code=201, before_request=require_json, summary="Create a collection")
    async def create_collection(
        self, data: JSONBody[CreateCollectionRequest], collections: NamedDependency[Collections]
    ) -> CollectionObject:
        return await collections.create(data)

    @get("/", summary="List collections with their document and page counts")
    async def list_collections(self, collections: NamedDependency[Collections]) -> CollectionList:
        return await collections.list_collections()

    @get("/{name:str}", summary="One collection")
    async def get_collection(self, name: FromPath[str], collections: NamedDependency[Collections]) -> CollectionObject:
        return await collections.get(name)

    @post(
        "/{name:str}/vacuum",
        status_code=200,
        summary="Reclaim the disk space of deleted and replaced documents",
        description="Embedded backend: merges the full-text index, rebuilds the index file (SQLite VACUUM) and "
        "reports the bytes on disk before and after; writes to the collection wait meanwhile, searches go on. "
        "Qdrant: nothing to do (it compacts by itself); the byte counts are null. With a body "
        '{"codec": C}: rebuild the collection in codec C keeping every document, swapped in when complete '
        "(embedded backend; 422 invalid_codec, 409 collection_busy while an indexing job or another writer is at "
        "work on it).",
    )
    async def vacuum_collection(
        self,
        name: FromPath[str],
        collections: NamedDependency[Collections],
        data: JSONBody[VacuumRequest | None] = None,
    ) -> VacuumObject:
        return await collections.vacuum(name, codec=None if data is None else data.codec)

    @post(
        "/{name:str}/cells",
        status_code=200,
        summary="Train the cells of the pooled_ivf first stage",
        description="Embedded backend: trains the collection's cells once (spherical k-means over a sample of its "
        'pages\' sketch centroids; optional body {"cells": K}) and files every page under them, so that '
        'searches can ask first_stage "pooled_ivf" (pages added later are filed as they are written). Called '
        "again it trains nothing and files what is not filed yet. Runs until done (minutes at a million pages); "
        "searches and writes go on meanwhile. 422 first_stage_unavailable on the Qdrant backend, 422 "
        "invalid_document for an empty collection.",
    )
    async def train_cells(
        self,
        name: FromPath[str],
        collections: NamedDependency[Collections],
        data: JSONBody[CellsRequest | None] = None,
    ) -> CellsObject:
        return await collections.train_cells(name, cells=None if data is None else data.cells)

    @delete("/{name:str}", status_code=200, summary="Delete a collection and everything in it")
    async def delete_collection(self, name: FromPath[str], collections: NamedDependency[Collections]) -> DeletedObject:
        return await collections.delete(name)

    @post(
        "/{name:str}/documents",
        summary="Add a PDF or an image (JSON or multipart upload)",
        description=_ADD_DESCRIPTION,
        operation_class=UploadOperation,
    )
    async def add_document(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        collections: NamedDependency[Collections],
        wait: Annotated[bool, Parameter(description="wait for the document (201) or return a job (202)")] = True,
    ) -> Response[DocumentObject | JobObject]:
        upload = await read_upload(request, collections.runtime.settings)
        if wait:
            added, duplicate = await until_disconnect(request, collections.add_document(name, upload, wait=True))
        else:
            added, duplicate = await collections.add_document(name, upload, wait=False)
        if duplicate:  # JEV4_DUPLICATE_POLICY=return_existing: the stored document, nothing indexed
            return Response(added, status_code=200, headers={"X-Duplicate-Of": added.id})
        if wait:
            return Response(added, status_code=201)
        return Response(added, status_code=202, headers={"Location": f"{self.path}/{name}/jobs/{added.id}"})

    @get("/{name:str}/documents", summary="List the documents of a collection")
    async def list_documents(
        self,
        name: FromPath[str],
        collections: NamedDependency[Collections],
        offset: Annotated[int, Parameter(ge=0, le=MAX_JSON_INT)] = 0,
        limit: Annotated[int, Parameter(ge=1, le=10000)] = 100,
    ) -> DocumentList:
        return await collections.list_documents(name, offset=offset, limit=limit)

    @get("/{name:str}/documents/{document_id:str}", summary="One document (id, pages, metadata)")
    async def get_document(
        self, name: FromPath[str], document_id: FromPath[str], collections: NamedDependency[Collections]
    ) -> DocumentObject:
        return await collections.get_document(name, document_id)

    @get(
        "/{name:str}/documents/{document_id:str}/file",
        summary="The document's original file, as uploaded (kept when JEV4_KEEP_ORIGINALS is on)",
        description="The bytes of the uploaded PDF, image or text/code file with its media type (read from the "
        "bytes at upload) and `Content-Disposition: attachment` with its file name (`filename` ASCII-only, "
        "`filename*` the exact UTF-8 name). `ETag` (a hash of the bytes) + `Cache-Control: private, no-cache`; "
        "`If-None-Match` answers 304. 404 `original_not_kept` when the document was uploaded while "
        "JEV4_KEEP_ORIGINALS was off; 404 `document_not_found` when there is no such document.",
        media_type="application/octet-stream",
        response_description="The original file's bytes",
        responses={
            304: ResponseSpec(data_container=None, description="Not modified: If-None-Match named the ETag"),
            404: ResponseSpec(
                data_container=ErrorResponse,
                description="document_not_found, collection_not_found, or original_not_kept (JEV4_KEEP_ORIGINALS)",
            ),
        },
    )
    async def get_document_file(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        document_id: FromPath[str],
        collections: NamedDependency[Collections],
    ) -> Response[bytes]:
        etag, original = await collections.original(
            name, document_id, if_none_match=request.headers.get("if-none-match")
        )
        headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
        if original is None:
            return Response(b"", status_code=304, headers=headers)
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Content-Disposition"] = content_disposition(original.name, document_id)
        headers["Content-Security-Policy"] = "sandbox"  # never a page of this origin, whatever the bytes hold
        headers["content-type"] = original.media_type  # as stored (Litestar would add a second charset to text/*)
        return Response(original.data, media_type=original.media_type, headers=headers)

    @patch(
        "/{name:str}/documents/{document_id:str}",
        before_request=require_json,
        summary="Change a document's metadata (merge patch, or replace); nothing is re-embedded",
    )
    async def patch_document(
        self,
        name: FromPath[str],
        document_id: FromPath[str],
        data: JSONBody[PatchDocumentRequest],
        collections: NamedDependency[Collections],
    ) -> DocumentObject:
        return await collections.patch_document(name, document_id, data)

    @delete("/{name:str}/documents/{document_id:str}", status_code=200, summary="Delete a document")
    async def delete_document(
        self, name: FromPath[str], document_id: FromPath[str], collections: NamedDependency[Collections]
    ) -> DeletedObject:
        return await collections.delete_document(name, document_id)

    @post(
        "/{name:str}/delete",
        status_code=200,
        before_request=require_json,
        summary="Delete the documents a metadata filter selects (dry_run: only list them)",
        description='`{"filter": {...}, "dry_run": false}`: the filter language of search, at least one '
        "condition, every key held by some document of the collection (else 422 `invalid_filter`: a key no "
        "document has would match every document by absence). Deletes in one transaction and answers the ids; "
        "`dry_run: true` deletes nothing and answers the ids that would go.",
    )
    async def delete_by_filter(
        self, name: FromPath[str], data: JSONBody[DeleteByFilterRequest], collections: NamedDependency[Collections]
    ) -> DeletionObject:
        return await collections.delete_by_filter(name, data)

    @get("/{name:str}/jobs", summary="The collection's indexing jobs, newest first (queued, running, recent)")
    async def list_jobs(
        self,
        name: FromPath[str],
        collections: NamedDependency[Collections],
        status: Annotated[
            Literal["queued", "running", "succeeded", "failed"] | None, Parameter(description="only jobs in this state")
        ] = None,
    ) -> JobList:
        return await collections.list_jobs(name, status)

    @get("/{name:str}/jobs/{job_id:str}", summary="Progress of a background indexing job")
    async def get_job(
        self, name: FromPath[str], job_id: FromPath[str], collections: NamedDependency[Collections]
    ) -> JobObject:
        return await collections.job(name, job_id)

    @post(
        "/{name:str}/search",
        status_code=200,
        before_request=require_json,
        summary="Search a collection with a text query",
        description="Ranked pages by MaxSim (dense first stage + exact rerank, or exhaustive), optionally "
        "with each page's image (base64 PNG), per-query-token similarity maps over its patch grid and its regions "
        "(citations: page boxes or chunk line ranges, docs/regions.md).",
    )
    async def search(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        data: JSONBody[SearchRequest],
        collections: NamedDependency[Collections],
    ) -> SearchResponse:
        return await until_disconnect(request, collections.search(name, data))
