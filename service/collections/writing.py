"""The one write path of a document, from an upload to one stored document (``Collections.add_document``).

::

    DocumentUpload ──unit kind check (409 mixed_units)──▶ plan (the converter's cheap checks, no model: pages
        counted and selected, or text decoded and chunked) ──▶ content hash ──▶ admit (duplicates under
        JEV4_DUPLICATE_POLICY for pages, 409 for a taken id: :func:`~service.collections.duplicates.admit`)
        ──▶ embed with the collection's passage task (the units held here, nothing visible) ──▶ one
        add_document (:func:`commit`: every unit or none; on any error or cancellation nothing is stored)

:func:`plan_document` returns a :class:`PlannedDocument` for either unit kind; the caller (``Collections``, which
the HTTP routes, the CLI and the MCP server call) admits it and runs :meth:`PlannedDocument.write` now (201) or in
a job (202). Everything of a document — its metadata, every unit's vectors, text and page image, and its original
file when kept (``JEV4_KEEP_ORIGINALS``) — reaches the index backend in that one ``add_document`` (one SQLite
transaction, or one committed Qdrant version): a crash before it leaves nothing behind; after it, the whole
document. A new input format is a converter (:mod:`service.collections.converters`), not a change here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from model.types import PromptType
from service.collections import page_images
from service.collections.duplicates import content_hash
from service.collections.tasks import check_unit_kind, task_spec, upload_ocr
from service.collections.texts import TextSource, text_indexer
from service.engine import memory

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence
    from typing import Any

    from colbert.store import CollectionConfig, DocumentInfo, OriginalFile, Store, UnitRecord
    from model.types import TaskSpec
    from service.collections.indexing import DocumentSource, Indexer, PageSource, Progress
    from service.collections.texts import PlannedText, TextIndexer
    from service.engine.runtime import Runtime

__all__ = [
    "NO_TEXT",
    "PageChoices",
    "PlannedDocument",
    "Written",
    "as_page_source",
    "commit",
    "page_warnings",
    "plan_document",
    "write_pages",
    "write_text",
]


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
    ) -> DocumentInfo: ...


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
    filename: str | None = None,
    original: OriginalFile | None = None,
) -> PlannedDocument:
    """Plan one document (every 4xx about its content raised here, before any model work): Markdown or text sent
    to a page collection laid out as pages (:func:`as_page_source`), its unit kind checked against the
    collection's (409 ``mixed_units``, naming ``filename`` or the text's path), how it is embedded and kept decided
    (:class:`PageChoices`), then converted as far as no model is needed. ``background``: a job or the CLI (higher
    page cap; waits on a full model queue instead of 429). ``original``: the file kept with the document (None:
    not kept)."""
    source = as_page_source(source, store.config.unit_kind)
    given = source.path if isinstance(source, TextSource) else filename
    kind = "chunk" if isinstance(source, TextSource) else "page"
    check_unit_kind(collection, store.config, kind, f"file {given!r}" if given else None)
    if isinstance(source, TextSource):
        spec = task_spec(store.config, PromptType.PASSAGE)
        texts = text_indexer(runtime, wait_when_full=background)
        planned = await texts.prepared(source, spec)
        return _PlannedChunks(runtime, texts, store, spec, planned, planned.content_hash, original)

    choices = PageChoices.of(store.config, source.ocr, indexer.options.ocr, original)
    # an e-book or office file becomes a PDF here, once
    loadable, numbers = await indexer.model.start(functools.partial(indexer.plan_pages, source, background=background))
    key = content_hash(source, numbers)  # of the upload as sent, not of its conversion
    return _PlannedPages(runtime, indexer, store, choices, loadable, numbers, key, background, original)


@dataclass(frozen=True, slots=True)
class PageChoices:
    """How a page document is embedded and kept, decided once when it is planned: the collection's passage task,
    the OCR mode (the upload's, else the collection's, else the server's: :func:`~.tasks.upload_ocr`) and whether
    its page images are stored (not when they are made again from the kept original: :mod:`.page_images`)."""

    spec: TaskSpec
    ocr: str
    store_images: bool

    @classmethod
    def of(
        cls, config: CollectionConfig, upload_ocr_mode: str | None, server_ocr: str, original: OriginalFile | None
    ) -> PageChoices:
        spec = task_spec(config, PromptType.PASSAGE)
        ocr = upload_ocr(upload_ocr_mode, config, server_ocr)
        return cls(spec, ocr, not page_images.renders_from_original(original))


@dataclass(frozen=True, slots=True)
class Written:
    document: DocumentInfo
    tokens: int  # sequence tokens the model ran over (as counted in ``usage``)


def commit(
    store: Store,
    document_id: str,
    units: list[UnitRecord],
    metadata: Mapping[str, Any] | None,
    *,
    replace: bool,
    content_hash: str | None,
    original: OriginalFile | None,
    warnings: Sequence[str] = (),
) -> DocumentInfo:
    """Store every unit as one document (all or nothing; blocking): the one call of ``Store.add_document`` below
    the front ends. ``DocumentExistsError`` when the id is taken and ``replace`` is off."""
    return store.add_document(
        document_id,
        units,
        metadata,
        replace=replace,
        content_hash=content_hash,
        original=original,
        warnings=warnings,
    )


async def _embed_then_commit(
    store: Store,
    document_id: str,
    units: list[UnitRecord],
    embedded: Awaitable[int],
    metadata: Mapping[str, Any] | None,
    *,
    replace: bool,
    content_hash: str | None,
    original: OriginalFile | None,
    warnings_of: Callable[[list[UnitRecord]], Sequence[str]] | None = None,
) -> Written:
    """Await ``embedded`` (it fills ``units`` and returns the tokens), then :func:`commit` with the warnings
    ``warnings_of`` finds in the units; on any error or cancellation the units are dropped and nothing is stored."""
    try:
        tokens = await embedded
        warnings = () if warnings_of is None else warnings_of(units)
        info = await asyncio.to_thread(
            functools.partial(
                commit,
                store,
                document_id,
                units,
                metadata,
                replace=replace,
                content_hash=content_hash,
                original=original,
                warnings=warnings,
            )
        )
    except BaseException:
        units.clear()
        raise
    return Written(info, tokens)


async def write_pages(
    indexer: Indexer,
    store: Store,
    document_id: str,
    source: PageSource,
    pages: list[int],
    metadata: Mapping[str, Any] | None = None,
    *,
    replace: bool = False,
    progress: Progress | None = None,
    wait_when_full: bool = False,
    content_hash: str | None = None,
    original: OriginalFile | None = None,
    choices: PageChoices | None = None,
) -> Written:
    """Embed ``pages`` of a loadable page ``source`` as ``choices`` say (planned; None: decided here from the
    collection, the source and ``original``) and store them as one document (``wait_when_full``: on a full model
    queue wait instead of answering 429)."""
    choices = choices or PageChoices.of(store.config, source.ocr, indexer.options.ocr, original)
    source = dataclasses.replace(source, ocr=choices.ocr)
    units: list[UnitRecord] = []
    embedded = indexer.embed_pages(
        source,
        pages,
        choices.spec,
        store.config.dense_dim,
        units,
        progress,
        wait_when_full=wait_when_full,
        store_images=choices.store_images,
    )
    return await _embed_then_commit(
        store,
        document_id,
        units,
        embedded,
        metadata,
        replace=replace,
        content_hash=content_hash,
        original=original,
        warnings_of=functools.partial(page_warnings, ocr=choices.ocr),
    )


NO_TEXT: Final = "no text found: visual search only"


def page_warnings(units: Sequence[UnitRecord], ocr: str) -> tuple[str, ...]:
    """The warnings a page document made of ``units``, indexed with OCR mode ``ocr``, is stored with (kept in its
    record: :class:`colbert.store.DocumentInfo`). One rule: when none of its pages has any text — no text layer,
    and OCR (when it ran) read no word — it can be found by visual search only; text and hybrid search never
    return it.

    >>> from colbert.store import UnitRecord
    >>> import numpy as np
    >>> blank = UnitRecord(1, np.ones(2), np.ones((1, 2)), text=None)
    >>> page_warnings([blank], "auto")
    ('no text found: visual search only (the pages have no text layer and OCR read no word on them)',)
    >>> page_warnings([UnitRecord(1, np.ones(2), np.ones((1, 2)), text="Invoice 42")], "never")
    ()
    """
    if any(u.text and u.text.strip() for u in units):
        return ()
    if ocr == "never":
        return (f"{NO_TEXT} (the pages have no text layer and OCR was off: upload with ocr=auto to read their text)",)
    return (f"{NO_TEXT} (the pages have no text layer and OCR read no word on them)",)


async def write_text(
    texts: TextIndexer,
    store: Store,
    document_id: str,
    planned: PlannedText,
    spec: TaskSpec,
    metadata: Mapping[str, Any] | None = None,
    *,
    replace: bool = False,
    progress: Progress | None = None,
    original: OriginalFile | None = None,
) -> Written:
    """Embed a planned text/code document (late chunking) and store its chunks as one document; its metadata is
    the caller's with the text's own keys (``path``, ``language``, …) over it."""
    units: list[UnitRecord] = []

    async def embedded() -> int:
        made, tokens = await texts.embed(planned, spec, store.config.dense_dim, progress)
        units.extend(made)
        return tokens

    meta = {**(metadata or {}), **planned.metadata}
    written = await _embed_then_commit(
        store,
        document_id,
        units,
        embedded(),
        meta,
        replace=replace,
        content_hash=planned.content_hash,
        original=original,
    )
    if len(planned.text) >= memory.LARGE_BYTES:  # vectors and batches of a large document are free now
        await asyncio.get_running_loop().run_in_executor(texts.pool, memory.trim)
    return written


@dataclass(slots=True)
class _PlannedPages:
    runtime: Runtime
    indexer: Indexer
    store: Store
    choices: PageChoices
    source: PageSource
    pages: list[int]
    content_hash: str
    background: bool
    original: OriginalFile | None
    follows_duplicate_policy: bool = True

    async def write(
        self,
        document_id: str,
        metadata: Mapping[str, Any] | None,
        *,
        replace: bool,
        progress: Progress | None,
    ) -> DocumentInfo:
        result = await write_pages(
            self.indexer,
            self.store,
            document_id,
            self.source,
            self.pages,
            metadata,
            replace=replace,
            progress=progress,
            wait_when_full=self.background,
            content_hash=self.content_hash,
            original=self.original,
            choices=self.choices,
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
    original: OriginalFile | None
    follows_duplicate_policy: bool = False

    async def write(
        self,
        document_id: str,
        metadata: Mapping[str, Any] | None,
        *,
        replace: bool,
        progress: Progress | None,
    ) -> DocumentInfo:
        result = await write_text(
            self.texts,
            self.store,
            document_id,
            self.planned,
            self.spec,
            metadata,
            replace=replace,
            progress=progress,
            original=self.original,
        )
        self.runtime.metrics.tokens.labels(kind="text").inc(result.tokens)
        return result.document
