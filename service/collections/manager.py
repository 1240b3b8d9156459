"""The collections application service: what the HTTP routes (``service.http.controllers.collections``), the CLI
(``service.cli``) and the MCP server (``service.mcp``) call. One :class:`Collections` per runtime, over the
runtime's catalog (:class:`colbert.catalog.Catalog`), holding the indexing jobs and the :class:`Indexer` and
:class:`Searcher` (made once, when the model is ready).

Blocking index calls (SQLite, file I/O) run in threads; preprocessing in the runtime's pool; the model in
the batcher's worker. Decisions:

- A new collection's ``dimensions``: a Matryoshka size or the model's full size (default); ``codec``: a
  :class:`colbert.quantize.Codec` (:func:`parse_codec`; int8 by default); ``pool_factor`` >= 1 (1: no pooling).
- Adding a document waits for the result (201) unless ``wait=false`` (202 + a job to poll).
- A new document's id: ``document_id`` if given, else the uploaded file's name (made URL-safe), else a random
  id; an existing id is 409 unless ``replace``. The same bytes uploaded again without an explicit id follow
  ``JEV4_DUPLICATE_POLICY`` (:mod:`service.collections.duplicates`). The file name is also kept as the
  ``source`` metadata key (unless the metadata sets one). A replace without ``metadata`` keeps the document's
  metadata; with ``metadata`` it stores exactly that.
- A collection has a ``task`` (retrieval | code) and holds one ``unit_kind`` (page | chunk); ``task: code``
  with ``unit_kind: page`` is 422 ``invalid_task`` (:mod:`service.collections.tasks`). Every document takes one
  write path (:mod:`service.collections.writing`): a converter per input kind, one admission check, one atomic
  write. Text and code documents are chunked and embedded with late chunking (``service.collections.texts``);
  they are not subject to ``JEV4_DUPLICATE_POLICY`` (a text's ``content_hash`` serves skip-unchanged re-indexing).
- ``JEV4_KEEP_ORIGINALS`` (default on): the uploaded file is stored with the document (same transaction /
  version), served by :meth:`Collections.original`; a document without one answers 404 ``original_not_kept``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from typing import TYPE_CHECKING

from colbert.errors import CollectionBusyError, CollectionNotFoundError, DocumentNotFoundError
from colbert.quantize import Codec, checked_codec
from colbert.store import CollectionConfig
from colbert.transfer import export_collection, import_collection
from model.errors import InvalidDimensionError
from service.collections.deletion import DeleteByFilterRequest, DeletionObject, check_filter_size, delete_by_filter
from service.collections.duplicates import admit
from service.collections.embedder import EmbeddingModel
from service.collections.indexing import Indexer, IndexOptions
from service.collections.job_store import Retention, open_job_store
from service.collections.jobs import IndexJob, JobRegistry
from service.collections.responses import collection_object, document_object, hit_object, job_object, merge_patch
from service.collections.schemas import (
    CellsObject,
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
)
from service.collections.search import Searcher
from service.collections.search_plan import SearchLimits, SearchQuery
from service.collections.search_schemas import SearchRequest, SearchResponse
from service.collections.tasks import check_task, collection_ocr
from service.collections.writing import plan_document
from service.embeddings.media import MediaLimits, load_source
from service.embeddings.schemas import Usage
from service.errors import NotFoundError, NotReadyError, UnprocessableError
from service.settings import env_name

if TYPE_CHECKING:
    from pathlib import Path

    from colbert.catalog import Catalog
    from colbert.store import DocumentInfo, OriginalFile, Store
    from colbert.transfer import ExportSummary
    from service.collections.uploads import DocumentUpload
    from service.engine.runtime import Runtime

__all__ = ["Collections", "document_object", "job_object", "parse_codec"]


def parse_codec(name: str) -> Codec:
    """A new collection's ``codec``, else 422 ``invalid_codec`` naming them (the CLI asks before loading the model)."""
    try:
        return Codec(name)
    except ValueError:
        choices = ", ".join(c.value for c in Codec)
        raise UnprocessableError(f"codec must be one of {choices}, got {name!r}", code="invalid_codec") from None


class Collections:
    """The collection routes' logic for one app (see the module doc)."""

    def __init__(self, runtime: Runtime, *, jobs: JobRegistry | None = None) -> None:
        self.runtime = runtime
        s = runtime.settings
        self._job_store = None
        retention = Retention(s.job_keep_finished, s.job_keep_finished_s)
        if jobs is None and runtime.catalog is not None:
            self._job_store = open_job_store(
                runtime.catalog, busy_timeout_s=runtime.store_busy_timeout_s, retention=retention
            )
        self.jobs = jobs or JobRegistry(
            retry_after_s=runtime.retry_after_s,
            store=self._job_store,
            heartbeat_s=s.job_heartbeat_s,
            stale_after_s=s.job_stale_after_s,
            retention=retention,
        )
        self._services: tuple[Indexer, Searcher] | None = None

    # ---- plumbing ------------------------------------------------------------------------------------------
    def catalog(self) -> Catalog:
        """The runtime's catalog of collections (NotReadyError when it did not open)."""
        catalog: Catalog | None = self.runtime.catalog
        if catalog is None:
            raise NotReadyError("collections are not available on this server (the catalog did not open)")
        return catalog

    async def store(self, name: str) -> Store:
        return await asyncio.to_thread(self.catalog().get, name)

    def _facts(self, name: str) -> tuple[int | None, int | None]:
        """The collection's bytes on disk (None: unknown, Qdrant) and ``pooled_ivf`` cells (None: none); both None
        when it vanished meanwhile."""
        catalog = self.catalog()
        try:
            return catalog.disk_bytes(name), catalog.cells(name)
        except CollectionNotFoundError:
            return None, None

    def services(self) -> tuple[Indexer, Searcher]:
        """The app's indexer and searcher, made once the model is ready (NotReadyError before)."""
        if self._services is None:
            encoder, batcher, _preparer = self.runtime.engine()
            model = EmbeddingModel(
                encoder.processor,
                functools.partial(batcher.embed, return_multivector=True),
                self.runtime.pool,
                encoder.info.hidden_size,
                tuple(encoder.info.matryoshka_dims),
            )
            settings, limits, render_pool = self.runtime.settings, self.runtime.limits, self.runtime.render_pool
            options = IndexOptions.from_settings(
                settings, limits, retry_after_s=self.runtime.retry_after_s, render_pool=render_pool
            )
            search_limits = SearchLimits.from_settings(settings, limits, render_pool)
            self._services = (Indexer(model, options), Searcher(model, search_limits))
        return self._services

    async def close(self) -> None:
        """Stop the background jobs (at shutdown; each is recorded as cancelled)."""
        await self.jobs.close()
        if self._job_store is not None:
            self._job_store.close()

    # ---- collections ---------------------------------------------------------------------------------------
    async def create(self, data: CreateCollectionRequest) -> CollectionObject:
        encoder, _batcher, _preparer = self.runtime.engine()
        info = encoder.info
        allowed = sorted({*info.matryoshka_dims, info.hidden_size})
        dim = info.hidden_size if data.dimensions is None else data.dimensions
        if dim not in allowed:
            raise InvalidDimensionError(f"dimensions must be one of {allowed}, got {dim}")
        codec = parse_codec(data.codec)
        unit_kind = data.unit_kind or ("chunk" if data.task == "code" else "page")
        check_task(data.task, unit_kind)
        config = CollectionConfig(
            dense_dim=dim,
            multivector_dim=info.multivector_dim,
            codec=codec,
            pool_factor=data.pool_factor,
            task=data.task,
            unit_kind=unit_kind,
            ocr=collection_ocr(data.ocr, unit_kind),
        )
        store = await asyncio.to_thread(self.catalog().create, data.name, config)
        facts = await asyncio.to_thread(self._facts, data.name)
        return collection_object(data.name, store.config, (0, 0), *facts)

    async def list_collections(self) -> CollectionList:
        def work() -> list[CollectionObject]:
            infos = self.catalog().list()
            return [collection_object(i.name, i.config, i.counts, *self._facts(i.name)) for i in infos]

        return CollectionList(data=await asyncio.to_thread(work))

    async def get(self, name: str) -> CollectionObject:
        store = await self.store(name)
        counts = await asyncio.to_thread(store.count)
        facts = await asyncio.to_thread(self._facts, name)
        return collection_object(name, store.config, counts, *facts)

    async def vacuum(self, name: str, *, codec: str | None = None) -> VacuumObject:
        """Reclaim the disk space of deleted and replaced documents (``Catalog.vacuum``), or with ``codec`` rebuild
        the collection in that codec keeping every document (``Catalog.recode``; 409 ``collection_busy`` while an
        indexing job of any process or another writer is at work on it)."""
        if codec is not None:
            checked_codec(codec)  # 422 before looking at jobs
            if running := [j.id for j in await self.jobs.list_all(name) if not j.finished]:
                raise CollectionBusyError(
                    f"collection {name!r} has indexing jobs queued or running ({', '.join(running[:5])}); wait "
                    f"for them to finish (GET /v1/collections/{name}/jobs), then retry the recode"
                )
        catalog = self.catalog()
        work = catalog.vacuum if codec is None else functools.partial(catalog.recode, codec=codec)
        result = await asyncio.to_thread(work, name)
        before, after = result.bytes_before, result.bytes_after
        reclaimed = None if before is None or after is None else before - after
        return VacuumObject(
            collection=name, bytes_before=before, bytes_after=after, bytes_reclaimed=reclaimed, note=result.note
        )

    async def train_cells(self, name: str, *, cells: int | None = None) -> CellsObject:
        """Give an embedded collection the ``pooled_ivf`` first stage's cells (``Catalog.train_cells``)."""
        k, filed = await asyncio.to_thread(self.catalog().train_cells, name, cells)
        return CellsObject(collection=name, cells=k, units_filed=filed)

    async def export_collection(self, name: str, path: Path) -> ExportSummary:
        """Write collection ``name`` to an export file at ``path`` (:mod:`colbert.transfer`; the file appears only
        when complete)."""
        return await asyncio.to_thread(export_collection, self.catalog(), name, path)

    async def import_collection(self, path: Path, *, name: str | None = None) -> ExportSummary:
        """Create a collection from an export file (named as exported unless ``name``); nothing is visible under
        the name until the import is complete (:mod:`colbert.transfer`)."""
        return await asyncio.to_thread(functools.partial(import_collection, self.catalog(), path, name=name))

    async def delete(self, name: str) -> DeletedObject:
        deleted = await asyncio.to_thread(self.catalog().delete, name)
        if not deleted:
            raise CollectionNotFoundError(f"no collection named {name!r}")
        return DeletedObject(id=name, object="collection")

    # ---- documents -----------------------------------------------------------------------------------------
    async def add_document(
        self, name: str, upload: DocumentUpload, *, wait: bool
    ) -> tuple[DocumentObject | JobObject, bool]:
        """The new document (``wait``) or its job; ``True`` second when nothing was indexed: the upload duplicates
        a stored document the policy returned instead (:mod:`service.collections.duplicates`), or it is unchanged
        (``upload.skip_unchanged``). Every kind takes this one path (:mod:`.writing`)."""
        store = await self.store(name)
        indexer, _searcher = self.services()
        settings = self.runtime.settings
        stored = await upload.stored_form(store, keep_original=settings.keep_originals)
        planned = await plan_document(
            self.runtime, indexer, store, name, upload.source, background=not wait, filename=upload.filename,
            original=stored.original,
        )  # fmt: skip
        existing = await admit(
            store,
            name,
            stored.document_id,
            planned.content_hash,
            replace=upload.replace,
            explicit_id=upload.document_id is not None and not upload.id_from_path,
            policy=settings.duplicate_policy if planned.follows_duplicate_policy else "allow",
            skip_unchanged=upload.skip_unchanged,
        )
        if existing is not None:
            return document_object(name, existing), True

        async def work(job: IndexJob | None) -> DocumentInfo:
            info = await planned.write(stored.document_id, stored.metadata, replace=upload.replace, progress=job)
            # the collection was not deleted or re-created by another process meanwhile
            await asyncio.to_thread(still_there, self.catalog(), name, store)
            return info

        if wait:
            return document_object(name, await work(None)), False
        return job_object(await self.jobs.submit(name, stored.document_id, work)), False

    async def list_documents(self, name: str, *, offset: int, limit: int) -> DocumentList:
        store = await self.store(name)
        infos = await asyncio.to_thread(functools.partial(store.list_documents, offset=offset, limit=limit))
        total, _pages = await asyncio.to_thread(store.count)
        return DocumentList(data=[document_object(name, i) for i in infos], offset=offset, limit=limit, total=total)

    async def get_document(self, name: str, document_id: str) -> DocumentObject:
        """The document with its page numbers (``page_numbers``: a page selection's numbers, not 1..pages)."""
        store = await self.store(name)

        def work() -> tuple[DocumentInfo | None, list[int] | None]:
            info = store.get_document(document_id)
            return info, None if info is None else store.unit_numbers(document_id)

        info, numbers = await asyncio.to_thread(work)
        if info is None or numbers is None:  # None: absent, or deleted between the two reads
            raise _no_document(name, document_id)
        doc = document_object(name, info)
        doc.page_numbers = numbers
        return doc

    async def original(
        self, name: str, document_id: str, *, if_none_match: str | None = None
    ) -> tuple[str, OriginalFile | None]:
        """The document's original file with its ETag (a hash of the bytes), or just the ETag (None second) when
        ``if_none_match`` names it (-> 304, the bytes are not read); 404 document_not_found, or
        original_not_kept naming the setting."""
        store = await self.store(name)
        info = await asyncio.to_thread(store.get_document, document_id)
        if info is None:
            raise _no_document(name, document_id)
        if info.file is None:
            state = "on" if self.runtime.settings.keep_originals else "off"
            raise NotFoundError(
                f"document {document_id!r} in collection {name!r} has no original file: originals are kept only "
                f"for uploads made while {env_name('keep_originals')}=true (it is {state} now); upload the file "
                "again with replace=true to keep it",
                code="original_not_kept",
            )
        etag = f'"{info.file.sha256[:32]}-file"'
        if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")}:
            return etag, None
        original = await asyncio.to_thread(store.get_original, document_id)
        if original is None:  # deleted, or replaced without one, since the read above
            raise _no_document(name, document_id)
        return f'"{hashlib.sha256(original.data).hexdigest()[:32]}-file"', original

    async def patch_document(self, name: str, document_id: str, data: PatchDocumentRequest) -> DocumentObject:
        """New metadata for a document (merge patch, or ``replace``); its units are not touched."""
        store = await self.store(name)

        def work() -> DocumentInfo | None:
            info = store.get_document(document_id)
            if info is None:
                return None
            metadata = data.metadata if data.replace else merge_patch(info.metadata, data.metadata)
            return store.update_metadata(document_id, metadata)

        updated = await asyncio.to_thread(work)
        if updated is None:
            raise _no_document(name, document_id)
        return document_object(name, updated)

    async def delete_document(self, name: str, document_id: str) -> DeletedObject:
        store = await self.store(name)
        if not await asyncio.to_thread(store.delete_document, document_id):
            raise _no_document(name, document_id)
        return DeletedObject(id=document_id, object="document")

    async def delete_by_filter(self, name: str, data: DeleteByFilterRequest) -> DeletionObject:
        """Delete (``dry_run``: list) the documents a metadata filter selects (:mod:`service.collections.deletion`)."""
        store = await self.store(name)
        return await delete_by_filter(store, name, data, self.runtime.settings.max_filter_keys)

    async def job(self, name: str, job_id: str) -> JobObject:
        job = await self.jobs.get(name, job_id)
        if job is None:
            raise NotFoundError(f"no indexing job {job_id!r} for collection {name!r}", code="job_not_found")
        return job_object(job)

    async def list_jobs(self, name: str, status: str | None = None) -> JobList:
        await self.store(name)  # 404 for an unknown collection
        jobs = await self.jobs.list_all(name)
        return JobList(data=[job_object(j) for j in jobs if status is None or j.status.value == status])

    # ---- search --------------------------------------------------------------------------------------------
    async def search(self, name: str, data: SearchRequest) -> SearchResponse:
        self.runtime.check_model(data.model)
        check_filter_size(data.filter, self.runtime.settings.max_filter_keys)
        store = await self.store(name)
        like = None if data.like is None else (data.like.document_id, data.like.page)
        query = SearchQuery(text=data.query, image=None if data.query_image is None else b"", like=like)
        _indexer, searcher = self.services()
        cells = await asyncio.to_thread(self.catalog().cells, name) if data.first_stage == "pooled_ivf" else None
        plan = searcher.limits.plan(query, store.config, data, cells)  # every option checked before any work
        if data.query_image is not None:
            limits = MediaLimits.from_settings(self.runtime.settings)
            image = await load_source(data.query_image, limits, what="query_image")
            query = SearchQuery(image=image)
        outcome = await searcher.search(store, query, plan)
        self.runtime.metrics.tokens.labels(kind="text").inc(outcome.tokens)
        results = [hit_object(m) for m in outcome.matches]
        return SearchResponse(
            model=self.runtime.model_name,
            collection=name,
            usage=Usage(total_tokens=outcome.tokens, prompt_tokens=outcome.tokens),
            results=results,
            warnings=list(outcome.warnings),
        )


def _no_document(collection: str, document_id: str) -> DocumentNotFoundError:  # 404 document_not_found
    return DocumentNotFoundError(f"no document {document_id!r} in collection {collection!r}")


def still_there(catalog: Catalog, name: str, store: Store) -> None:
    """``CollectionNotFoundError`` unless ``store`` is still the collection ``name``: another process (the CLI, a
    replica) may have deleted or re-created it while a document was being written into the handle held here, and
    the write then reached a collection nobody can see; the upload (or its job) must fail, not report success.
    (Qdrant: a handle notices a re-created collection only when one of its requests fails, so there a write through
    a handle held across a delete + create lands in the new collection; a plain delete fails the write itself.)"""
    try:
        current = catalog.get(name)
    except CollectionNotFoundError:
        current = None
    if current is not store:
        raise CollectionNotFoundError(
            f"collection {name!r} was deleted (or re-created) by another process while the document was being "
            "indexed; nothing of it is stored: create the collection and upload the document again"
        )
