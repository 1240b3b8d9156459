"""Embed one page document (a PDF, an image: any page converter's kind) -> pages -> model rows -> vectors ->
units, which the write path stores in one atomic ``add_document`` (:mod:`service.collections.writing`).

Pipeline (:meth:`Indexer.plan_pages`, then :meth:`Indexer.embed_pages`; the kind-specific steps are the page
converter's, :mod:`.converters`)::

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
                               image = the page as the model saw it, WebP; none when the
                               original PDF is kept: :mod:`.page_images`)                 (pool thread)
                ──▶ appended to the caller's units, progress.advance(pages)
          ──▶ (the write path) one add_document, vectors and images together (all pages or none)

Pages are numbered from 1 (PDF page numbers; an image is page 1). At most three steps of ``pages_per_step``
rendered pages are in memory at a time (one being encoded, one embedded, one prepared); the vectors and
images of every page are held until the atomic add. The page image is the page resized to its
:class:`~model.layout.PageLayout`'s ``image_size`` (``cols*28`` x ``rows*28`` pixels for the merged patch grid
``(rows, cols)``), so similarity maps fall on it exactly (a page rendered again from the kept PDF is resized
to the same size).

The same code runs behind the HTTP route (``embed`` = the batcher) and the CLI (``embed`` = the encoder in
a thread).
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from colbert.store import UnitRecord
from model.errors import TooManyPagesError
from model.layout import PageLayout
from model.ocr import apply_ocr
from model.pdf import parse_page_selection
from service.collections import page_images
from service.collections.converters import PageConverter, PageLimits, as_loadable, detect_kind
from service.collections.embedder import EmbeddingModel, QueueRetry
from service.collections.units import PageUnitInfo
from service.settings import env_name

if TYPE_CHECKING:
    from PIL import Image

    from model.processor import PreparedInput
    from model.types import EmbeddingOutput, TaskSpec, TextLayer
    from service.engine.render_pool import RenderPool
    from service.limits import InputLimits
    from service.settings import Settings

    _Prepared = tuple[list[PreparedInput], list[Any], list[TextLayer | None]]  # rows, kept images, text layers

__all__ = [
    "DocumentSource",
    "IndexOptions",
    "Indexer",
    "PageSource",
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
class PageSource:
    """A page document ready to count and load (:meth:`Indexer.plan_pages`): its page converter, found once, and
    the bytes it reads (an e-book, office file or web page already converted to a PDF), with the upload's page
    selection and OCR mode."""

    converter: PageConverter
    data: bytes
    pages: str | None = None
    ocr: str | None = None

    @property
    def kind(self) -> str:
        return self.converter.kind


@dataclass(frozen=True, slots=True)
class IndexOptions:
    """Limits and knobs of indexing (from :class:`~service.settings.Settings`). ``page_limits``: the converters'
    caps and where PDF pages render (the runtime's pool; None: in the calling thread), made once by
    :meth:`PageLimits.from_limits`."""

    page_limits: PageLimits = field(default_factory=PageLimits)
    max_pages: int = 64  # a request that waits for its answer (JEV4_MAX_PDF_PAGES)
    max_job_pages: int = 2000  # a background job or the CLI, which stream pages in steps (JEV4_MAX_JOB_PDF_PAGES)
    image_max_pixels: int | None = None
    pages_per_step: int = 4
    retry_after_s: float = 1.0
    ocr: str = "auto"  # the OCR mode of an upload that names none (JEV4_OCR)
    prepare_ahead: bool = True  # pool work beside the model (next step's render, last step's images); False: in turn

    @classmethod
    def from_settings(
        cls, settings: Settings, limits: InputLimits, *, retry_after_s: float, render_pool: RenderPool | None = None
    ) -> IndexOptions:
        """``limits`` and ``retry_after_s`` (a full model queue's) are the runtime's, read once from ``settings``."""
        return cls(
            page_limits=PageLimits.from_limits(limits, render_pool),
            max_pages=limits.max_pdf_pages,
            max_job_pages=limits.max_job_pdf_pages,
            image_max_pixels=limits.image_max_pixels,
            pages_per_step=settings.pdf_pages_per_step,
            retry_after_s=max(retry_after_s, 0.05),
            ocr=settings.ocr,
        )


class Progress(Protocol):
    """Receives the page count once known, then each step's pages as they are embedded."""

    def start(self, pages_total: int) -> None: ...

    def advance(self, pages: int) -> None: ...


class Indexer:
    """Turns documents into stored pages (see the module doc). One instance per app (or CLI run) serves every
    document of every collection."""

    def __init__(self, model: EmbeddingModel, options: IndexOptions) -> None:
        self.model = model
        self.processor = model.processor
        self.options = options

    def plan_pages(self, source: DocumentSource, *, background: bool = False) -> tuple[PageSource, list[int]]:
        """``source`` as pages that load directly and the page numbers to index (blocking: an e-book, office file
        or web page is converted to a PDF here, once; the PDF is opened and counted). Errors name the limit or the
        bad selection.

        ``background``: for a job or the CLI (cap ``max_job_pages``), else for a request that waits (``max_pages``).
        """
        converter, data = as_loadable(source.kind, source.data, self.options.page_limits)
        loadable = PageSource(converter, data, source.pages, source.ocr)
        total = converter.count(data, self.options.page_limits)
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
        return loadable, selected

    async def embed_pages(
        self,
        source: PageSource,
        numbers: list[int],
        spec: TaskSpec,
        dim: int,
        units: list[UnitRecord],
        progress: Progress | None = None,
        *,
        wait_when_full: bool = False,
        store_images: bool = True,
    ) -> int:
        """Render, embed and append to ``units`` the pages ``numbers`` of ``source`` (both from :meth:`plan_pages`),
        in steps of ``pages_per_step``; the tokens embedded. The caller stores ``units`` in one write
        (:mod:`service.collections.writing`).

        ``wait_when_full``: on a full model queue, wait and retry instead of raising QueueFullError (429);
        steps after the first always wait, since the work is already under way. ``store_images``: False when
        the document's original PDF is kept (its pages render again from it: :mod:`.page_images`).
        """
        if progress is not None:
            progress.start(len(numbers))
        retry = QueueRetry(wait_when_full, self.options.retry_after_s)
        return await self._embed_steps(source, numbers, units, spec, dim, progress, retry, store_images)

    async def _embed_steps(
        self,
        source: PageSource,
        numbers: list[int],
        units: list[UnitRecord],
        spec: TaskSpec,
        dim: int,
        progress: Progress | None,
        retry: QueueRetry,
        store_images: bool,
    ) -> int:
        """Render, embed and append ``numbers`` to ``units`` in steps of ``pages_per_step``; the tokens embedded. On
        an error nothing is left running that could append after the caller's discard."""
        step = self.options.pages_per_step
        chunks = [numbers[i : i + step] for i in range(0, len(numbers), step)]
        # Pool work runs beside the model: the next step's pages render and prepare while this step embeds, and a
        # step's page images are encoded while the next one embeds (at most one step behind: three steps' pages in
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
                writing = self.model.start(functools.partial(_with_images, units, records, pictures, store_images))
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

    def _prepare(self, source: PageSource, numbers: list[int], spec: TaskSpec) -> _Prepared:
        """Load the pages of one step (the converter: render a PDF, decode an image) and prepare their rows; also
        the page images to keep and the pages' text layers (over the kept images; None without text)."""
        o = self.options
        loaded = source.converter.load(source.data, numbers, o.page_limits)
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
    return PageUnitInfo.of_page(layout, row.num_tokens, span, layer).to_metadata()


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


def _with_images(units: list[UnitRecord], records: list[UnitRecord], pictures: list[Any], store_images: bool) -> None:
    """Each record with its page image (as the model saw it, WebP) appended to ``units`` (a pool thread); without
    images when ``store_images`` is False (the document keeps its original PDF, from which a page renders again:
    :mod:`.page_images`)."""
    if not store_images:
        units.extend(records)
        return
    units.extend(
        [
            UnitRecord(
                r.unit,
                r.dense,
                r.multivector,
                kind=r.kind,
                text=r.text,
                metadata=r.metadata,
                image=page_images.encode_stored(p),
            )
            for r, p in zip(records, pictures, strict=True)
        ]
    )
