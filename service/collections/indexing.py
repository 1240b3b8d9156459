"""Index one page document (a PDF, an image: any page converter's kind) -> pages -> model rows -> vectors -> one
atomic ``add_document``.

Pipeline (:meth:`Indexer.index`; the kind-specific steps are the page converter's, :mod:`.converters`)::

    bytes ──count (converter) + select pages──▶ [page numbers]          (pool thread; errors before any work)
          ──for each step of ``pages_per_step`` pages (the next step renders and prepares, and the last
            step's page images are written, while this step embeds: the model waits for neither):
                load (converter: render a PDF, decode an image) ──▶ OCR where the page's text layer is missing
                or sparse (``ocr`` mode, :mod:`model.ocr`) ──▶ prepare_image (the collection's passage
                task, :func:`~service.collections.tasks.task_spec`)                       (pool thread)
                ──▶ embed(rows, return_multivector=True)                                  (the model worker)
                ──▶ UnitRecord(dense truncated to the collection's size, multivector, text (the PDF page's
                               text layer; word boxes in metadata "words", over the kept image),
                               metadata {image_span, image_grid, num_tokens},
                               image = the page as the model saw it, PNG)                   (pool thread)
                ──▶ staged in the repository's StagedDocument, progress.advance(pages)
          ──▶ repository.write_document: one add_document, vectors and images together (all pages or none)

Pages are numbered from 1 (PDF page numbers; an image is page 1). At most three steps of ``pages_per_step``
rendered pages are in memory at a time (one being encoded to PNG, one embedded, one prepared); the vectors and
PNGs of every page are held until the atomic add. The page PNG is the page resized to its
:class:`~model.layout.PageLayout`'s ``image_size`` (``cols*28`` x ``rows*28`` pixels for the merged patch grid
``(rows, cols)``), so similarity maps fall on it exactly.

The same code runs behind the HTTP route (``embed`` = the batcher) and the CLI (``embed`` = the encoder in
a thread).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from colbert.store import UnitRecord
from model.errors import TooManyPagesError
from model.layout import PageLayout
from model.ocr import apply_ocr
from model.pdf import parse_page_selection
from model.types import PromptType
from service.collections.converters import PageLimits, as_loadable, converted_first, detect_kind, page_converter
from service.collections.embedder import EmbeddingModel, QueueRetry
from service.collections.highlight import stored_words
from service.collections.notices import page_warnings
from service.collections.ocr_default import upload_ocr
from service.collections.staging import StagedDocument, check_free, write_document
from service.collections.tasks import task_spec
from service.collections.units import PageUnitInfo
from service.settings import env_name

if TYPE_CHECKING:
    from PIL import Image

    from colbert.store import DocumentInfo, OriginalFile, Store
    from model.processor import PreparedInput
    from model.types import EmbeddingOutput, TaskSpec, TextLayer
    from service.settings import Settings

    _Prepared = tuple[list[PreparedInput], list[Any], list[TextLayer | None]]  # rows, kept images, text layers

__all__ = [
    "DocumentSource",
    "IndexOptions",
    "IndexResult",
    "Indexer",
    "Progress",
    "detect_kind",
]


@dataclass(frozen=True, slots=True)
class DocumentSource:
    """What to index: the bytes, their kind and (PDF) the pages to take (``"1-3,7"``; None = all)."""

    data: bytes
    kind: str  # a registered page format's kind ("pdf", "image", "epub": service.collections.converters)
    pages: str | None = None
    ocr: str | None = None  # which pages are OCRed (model.ocr.OCR_MODES); None: the server's (JEV4_OCR)


@dataclass(frozen=True, slots=True)
class IndexOptions:
    """Limits and knobs of indexing (from :class:`~service.settings.Settings`)."""

    dpi: int = 144
    max_pages: int = 64  # a request that waits for its answer (JEV4_MAX_PDF_PAGES)
    max_job_pages: int = 2000  # a background job or the CLI, which stream pages in steps (JEV4_MAX_JOB_PDF_PAGES)
    max_pdf_bytes: int = 50 * 1024 * 1024
    max_decoded_pixels: int = 40_000_000
    image_max_pixels: int | None = None
    pages_per_step: int = 4
    retry_after_s: float = 1.0
    ocr: str = "auto"  # the OCR mode of an upload that names none (JEV4_OCR)
    prepare_ahead: bool = True  # pool work beside the model (next step's render, last step's images); False: in turn

    @classmethod
    def from_settings(cls, settings: Settings) -> IndexOptions:
        return cls(
            dpi=settings.pdf_dpi,
            max_pages=settings.max_pdf_pages,
            max_job_pages=settings.max_job_pdf_pages,
            max_pdf_bytes=settings.max_pdf_bytes,
            max_decoded_pixels=settings.max_decoded_pixels,
            image_max_pixels=settings.image_max_pixels,
            pages_per_step=settings.pdf_pages_per_step,
            retry_after_s=max(settings.retry_after_s, 0.05),
            ocr=settings.ocr,
        )

    @property
    def page_limits(self) -> PageLimits:
        return PageLimits(self.dpi, self.max_pdf_bytes, self.max_decoded_pixels, self.max_job_pages)


class Progress(Protocol):
    """Receives the page count once known, then each step's pages as they are embedded."""

    def start(self, pages_total: int) -> None: ...

    def advance(self, pages: int) -> None: ...


@dataclass(frozen=True, slots=True)
class IndexResult:
    document: DocumentInfo
    tokens: int  # sequence tokens the model ran over (as counted in ``usage``)


class Indexer:
    """Turns documents into stored pages (see the module doc). One instance per app (or CLI run) serves every
    document of every collection."""

    def __init__(self, model: EmbeddingModel, options: IndexOptions) -> None:
        self.model = model
        self.processor = model.processor
        self.options = options

    def loadable(self, source: DocumentSource) -> DocumentSource:
        """``source`` as a kind whose pages load directly (blocking): an e-book (office file, web page) converted
        to a PDF once, here; a PDF or an image unchanged."""
        kind, data = as_loadable(source.kind, source.data, self.options.page_limits)
        return source if kind == source.kind else DocumentSource(data, kind, source.pages, source.ocr)

    def select_pages(self, source: DocumentSource, *, background: bool = False) -> list[int]:
        """The page numbers to index (blocking: opens the PDF; converts ``source`` when it is not
        :meth:`loadable` yet). Errors name the limit or the bad selection.

        ``background``: for a job or the CLI (cap ``max_job_pages``), else for a request that waits (``max_pages``).
        """
        source = self.loadable(source)
        total = page_converter(source.kind).count(source.data, self.options.page_limits)
        selected = parse_page_selection(source.pages, total)
        cap, setting = (
            (self.options.max_job_pages, "max_job_pdf_pages")
            if background
            else (
                self.options.max_pages,
                "max_pdf_pages",
            )
        )
        if len(selected) > cap:
            hint = "" if source.pages else "; select some with pages, e.g. '1-10'"
            if not background:
                hint += f", or upload with wait=false (a background job takes up to {env_name('max_job_pdf_pages')})"
            raise TooManyPagesError(
                f"{len(selected)} pages selected, more than the limit of {cap} ({env_name(setting)}){hint}"
            )
        return selected

    async def plan(
        self,
        store: Store,
        collection: str,
        document_id: str,
        source: DocumentSource,
        *,
        replace: bool,
        background: bool = False,
    ) -> list[int]:
        """The page numbers to index, after the checks that need no model: the PDF opens, the selection and
        the page count are valid, and the id is free (unless ``replace``). Cheap; raises the 4xx errors."""
        numbers = await self.model.start(lambda: self.select_pages(source, background=background))
        await asyncio.to_thread(check_free, store, collection, document_id, replace=replace)
        return numbers

    async def index(
        self,
        store: Store,
        collection: str,
        document_id: str,
        source: DocumentSource,
        metadata: Mapping[str, Any] | None = None,
        *,
        replace: bool = False,
        progress: Progress | None = None,
        wait_when_full: bool = False,
        pages: list[int] | None = None,
        content_hash: str | None = None,
        background: bool = False,
        original: OriginalFile | None = None,
    ) -> IndexResult:
        """Index one document; ``pages`` from :meth:`plan` (planned here when None), so bad pages or a taken
        id are refused before anything is embedded.

        ``wait_when_full``: on a full model queue, wait and retry instead of raising QueueFullError (429);
        steps after the first always wait, since the work is already under way.
        """
        if converted_first(source.kind):  # planned by a caller that kept the upload as sent (the CLI)
            source = await self.model.start(functools.partial(self.loadable, source))
        source = dataclasses.replace(source, ocr=upload_ocr(source.ocr, store.config, self.options.ocr))
        numbers = pages
        if numbers is None:
            numbers = await self.plan(store, collection, document_id, source, replace=replace, background=background)
        if progress is not None:
            progress.start(len(numbers))
        staged = StagedDocument(
            store, document_id, metadata, replace=replace, content_hash=content_hash, original=original
        )
        spec = task_spec(store.config, PromptType.PASSAGE)
        retry = QueueRetry(wait_when_full, self.options.retry_after_s)

        async def fill(staged: StagedDocument) -> int:
            tokens = await self._embed_steps(source, numbers, staged, spec, store.config.dense_dim, progress, retry)
            staged.warnings = page_warnings(staged.units, source.ocr or self.options.ocr)  # ocr: set above
            return tokens

        info, tokens = await write_document(staged, fill)
        return IndexResult(info, tokens)

    async def _embed_steps(
        self,
        source: DocumentSource,
        numbers: list[int],
        staged: StagedDocument,
        spec: TaskSpec,
        dim: int,
        progress: Progress | None,
        retry: QueueRetry,
    ) -> int:
        """Render, embed and stage ``numbers`` in steps of ``pages_per_step``; the tokens embedded. On an error
        nothing is left running that could stage after the caller's discard."""
        step = self.options.pages_per_step
        chunks = [numbers[i : i + step] for i in range(0, len(numbers), step)]
        # Pool work runs beside the model: the next step's pages render and prepare while this step embeds, and a
        # step's page images are encoded (PNG) while the next one embeds (at most one step behind: three steps' pages in
        # memory at most). The model waits for neither.
        ahead: asyncio.Future[_Prepared] | None = None
        writing: asyncio.Future[None] | None = None
        try:
            tokens = 0
            for k, chunk in enumerate(chunks):
                rows, pictures, layers = await (
                    ahead or self.model.start(functools.partial(self._prepare, source, chunk, spec))
                )
                ahead = None
                if self.options.prepare_ahead and k + 1 < len(chunks):
                    ahead = self.model.start(functools.partial(self._prepare, source, chunks[k + 1], spec))
                outputs = await retry.call(functools.partial(self.model.embed, rows))
                records = self._records(chunk, rows, outputs, dim, layers)
                tokens += sum(row.num_tokens for row in rows)
                if writing is not None:
                    await writing
                writing = self.model.start(functools.partial(_stage_with_images, staged, records, pictures))
                if not self.options.prepare_ahead:
                    await writing  # in turn: one step at a time, nothing beside the model
                if progress is not None:
                    progress.advance(len(chunk))
            if writing is not None:
                await writing
        except BaseException:
            if ahead is not None:
                _drop(ahead)
            if writing is not None:  # let an encode in flight end first, so that nothing is staged after the discard
                await asyncio.gather(writing, return_exceptions=True)
            raise
        return tokens

    def _prepare(self, source: DocumentSource, numbers: list[int], spec: TaskSpec) -> _Prepared:
        """Load the pages of one step (the converter: render a PDF, decode an image) and prepare their rows; also
        the page images to keep and the pages' text layers (over the kept images; None without text)."""
        o = self.options
        loaded = page_converter(source.kind).load(source.data, numbers, o.page_limits)
        pages = [p.image for p in loaded]
        layers = [
            apply_ocr(p.image, p.text_layer, source.ocr or self.options.ocr) for p in loaded
        ]  # in this job, on this pool thread
        rows = [self.processor.prepare_image(p, spec, max_pixels=o.image_max_pixels) for p in pages]
        pictures = [_as_seen(page, row) for page, row in zip(pages, rows, strict=True)]
        seen = [
            None if layer is None else layer.scaled(pic.width / page.width, pic.height / page.height)
            for layer, page, pic in zip(layers, pages, pictures, strict=True)
        ]
        return rows, pictures, seen

    def _records(
        self,
        numbers: list[int],
        rows: list[PreparedInput],
        outputs: list[EmbeddingOutput],
        dim: int,
        layers: list[TextLayer | None],
    ) -> list[UnitRecord]:
        dense = np.stack([out.dense for out in outputs])  # (P, hidden)
        dense = self.model.dense_for(dense, dim)  # (P, dim)
        records = []
        for i, (number, row, out, layer) in enumerate(zip(numbers, rows, outputs, layers, strict=True)):
            if out.multivector is None:
                raise RuntimeError("the encoder returned no multi-vector although one was requested")
            meta = _page_meta(row, out, layer)
            text = None if layer is None else layer.text
            mv = out.multivector
            records.append(UnitRecord(number, dense[i], mv, kind="page", text=text, metadata=meta))
        return records


def _layout(row: PreparedInput) -> PageLayout:
    """The merged patch grid of an image row."""
    assert row.image_grid_thw is not None
    return PageLayout.from_grid_thw(row.image_grid_thw[0].tolist())


def _page_meta(row: PreparedInput, out: EmbeddingOutput, layer: TextLayer | None) -> dict[str, Any]:
    """The page's stored unit metadata; word boxes (for highlights) when it has a text layer."""
    layout = PageLayout(*out.image_grid) if out.image_grid is not None else _layout(row)
    span = out.image_span if out.image_span is not None else row.image_span
    if layer is None:
        return PageUnitInfo(layout, row.num_tokens, span).to_metadata()
    words = stored_words(layer)
    return PageUnitInfo(layout, row.num_tokens, span, words, layer.source, layer.confidence).to_metadata()


def _as_seen(page: Image.Image, row: PreparedInput) -> Image.Image:
    """The page at the size the model embedded it (its layout's ``image_size``)."""
    from PIL import Image as PILImage

    size = _layout(row).image_size
    return page if page.size == size else page.resize(size, PILImage.Resampling.BICUBIC)


def _drop(future: asyncio.Future[Any]) -> None:
    """Give up on a step prepared ahead (indexing failed): cancel it, or take its outcome so that nothing logs it as
    never retrieved. A render already running in the pool finishes there and is discarded."""
    if not future.cancel() and not future.cancelled():
        future.exception()


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=6)
    return out.getvalue()


def _stage_with_images(staged: StagedDocument, records: list[UnitRecord], pictures: list[Any]) -> None:
    """Each record with its page image (PNG, as the model saw it) into the staged document (a pool thread)."""
    staged.add(
        [
            UnitRecord(r.unit, r.dense, r.multivector, kind=r.kind, text=r.text, metadata=r.metadata, image=_png(p))
            for r, p in zip(records, pictures, strict=True)
        ]
    )
