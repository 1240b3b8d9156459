"""The one write path of a document, from an upload to one stored document (``Collections.add_document``).

::

    DocumentUpload ──unit kind check (409 mixed_units)──▶ plan (the converter's cheap checks, no model: pages
        counted and selected, or text decoded and chunked) ──▶ content hash ──▶ admit (duplicates under
        JEV4_DUPLICATE_POLICY for pages, 409 for a taken id: :func:`~service.collections.duplicates.admit`)
        ──▶ embed with the collection's passage task and stage units ──▶ one add_document
        (:func:`~service.collections.staging.write_document`)

:func:`plan_document` returns a :class:`PlannedDocument` for either unit kind; the caller (the HTTP route's
``Collections``, later the CLI and MCP through it) admits it and runs :meth:`PlannedDocument.write` now (201) or in
a job (202). A new input format is a converter (:mod:`service.collections.converters`), not a change here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from model.types import PromptType
from service.collections.duplicates import content_hash
from service.collections.tasks import task_spec
from service.collections.texts import TextSource, text_indexer
from service.errors import ConflictError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from colbert.store import CollectionConfig, DocumentInfo, OriginalFile, Store
    from model.types import TaskSpec
    from service.collections.indexing import DocumentSource, Indexer, Progress
    from service.collections.texts import PlannedText, TextIndexer
    from service.engine.runtime import Runtime

__all__ = ["PlannedDocument", "as_page_source", "check_unit_kind", "plan_document", "unit_kind_of"]


class PlannedDocument(Protocol):
    """A document checked and converted as far as no model is needed; :meth:`write` embeds and stores it."""

    content_hash: str
    follows_duplicate_policy: bool  # page documents; a text document's hash serves skip-unchanged instead

    async def write(
        self,
        document_id: str,
        metadata: Mapping[str, Any] | None,
        *,
        replace: bool,
        progress: Progress | None,
        original: OriginalFile | None,
    ) -> DocumentInfo: ...


def unit_kind_of(source: DocumentSource | TextSource) -> str:
    """The kind of unit a source becomes: ``chunk`` (text and code) or ``page``."""
    return "chunk" if isinstance(source, TextSource) else "page"


def as_page_source(source: DocumentSource | TextSource, holds: str) -> DocumentSource | TextSource:
    """A Markdown or plain-text document sent to a collection that ``holds`` pages becomes a page document (laid
    out into pages, :mod:`service.collections.converters.web`); in a collection of chunks it stays text."""
    if holds != "page" or not isinstance(source, TextSource):
        return source
    from service.collections.chunking import language_of
    from service.collections.converters.web import PAGE_LANGUAGES
    from service.collections.indexing import DocumentSource

    kind = PAGE_LANGUAGES.get(source.language or language_of(source.path) or "")
    return source if kind is None else DocumentSource(source.data, kind)


async def plan_document(
    runtime: Runtime,
    indexer: Indexer,
    store: Store,
    collection: str,
    source: DocumentSource | TextSource,
    *,
    background: bool,
) -> PlannedDocument:
    """Plan one document (every 4xx about its content raised here, before any model work); ``background``: a
    job or the CLI (higher page cap; waits on a full model queue instead of answering 429)."""
    if isinstance(source, TextSource):
        texts = text_indexer(runtime, wait_when_full=background)
        spec = task_spec(store.config, PromptType.PASSAGE)
        planned = await texts.prepared(source, spec)
        return _PlannedChunks(runtime, texts, store, spec, planned, planned.content_hash)

    def convert_and_select() -> tuple[DocumentSource, list[int]]:
        loadable = indexer.loadable(source)  # an e-book or office file becomes a PDF here, once
        return loadable, indexer.select_pages(loadable, background=background)

    loadable, numbers = await indexer.model.start(convert_and_select)
    key = content_hash(source, numbers)  # of the upload as sent, not of its conversion
    return _PlannedPages(runtime, indexer, store, collection, loadable, numbers, key, background)


@dataclass(slots=True)
class _PlannedPages:
    runtime: Runtime
    indexer: Indexer
    store: Store
    collection: str
    source: DocumentSource
    pages: list[int]
    content_hash: str
    background: bool
    follows_duplicate_policy: bool = True

    async def write(
        self,
        document_id: str,
        metadata: Mapping[str, Any] | None,
        *,
        replace: bool,
        progress: Progress | None,
        original: OriginalFile | None,
    ) -> DocumentInfo:
        result = await self.indexer.index(
            self.store,
            self.collection,
            document_id,
            self.source,
            metadata,
            replace=replace,
            progress=progress,
            wait_when_full=self.background,
            pages=self.pages,
            content_hash=self.content_hash,
            original=original,
        )
        metrics = self.runtime.metrics
        metrics.tokens.labels(kind="image").inc(result.tokens)
        if self.source.kind == "pdf":
            metrics.pdf_pages.inc(result.document.num_units)
        else:
            metrics.images.inc()
        return result.document


@dataclass(slots=True)
class _PlannedChunks:
    runtime: Runtime
    texts: TextIndexer
    store: Store
    spec: TaskSpec
    planned: PlannedText
    content_hash: str
    follows_duplicate_policy: bool = False

    async def write(
        self,
        document_id: str,
        metadata: Mapping[str, Any] | None,
        *,
        replace: bool,
        progress: Progress | None,
        original: OriginalFile | None,
    ) -> DocumentInfo:
        result = await self.texts.index(
            self.store,
            document_id,
            self.planned,
            self.spec,
            metadata,
            replace=replace,
            progress=progress,
            original=original,
        )
        self.runtime.metrics.tokens.labels(kind="text").inc(result.tokens)
        return result.document


def check_unit_kind(collection: str, config: CollectionConfig, kind: str, what: str | None = None) -> None:
    """409 ``mixed_units`` unless the collection holds units of ``kind`` (``page`` or ``chunk``); ``what`` names
    the input (e.g. ``file 'tool.py'``) in the message."""
    holds = config.unit_kind
    if holds == kind:
        return
    if kind == "chunk":
        given = f"{what} is text (UTF-8), a text/code document, but " if what else ""
        raise ConflictError(
            f"{given}collection {collection!r} holds pages (PDFs and images); text and code documents go to a "
            'collection created with "unit_kind": "chunk" (or "task": "code"): pages and text chunks are not '
            "scored on one scale",
            code="mixed_units",
        )
    given = f"{what} is a page document (PDF or image), but " if what else ""
    raise ConflictError(
        f"{given}collection {collection!r} holds text chunks; PDFs and images go to a collection created with "
        '"unit_kind": "page": pages and text chunks are not scored on one scale',
        code="mixed_units",
    )
