"""Index one document: a PDF or an image -> pages -> model rows -> vectors -> one atomic ``add_document``.

Pipeline (:meth:`Indexer.index`)::

    bytes ──count + select pages──▶ [page numbers]                      (pool thread; errors before any work)
          ──for each step of ``pages_per_step`` pages (the next step renders and prepares, and the last
            step's page images are written, while this step embeds: the model waits for neither):
                render (PDF) / decode (image) ──▶ prepare_image (retrieval.passage)        (pool thread)
                ──▶ embed(rows, return_multivector=True)                                  (the model worker)
                ──▶ UnitRecord(dense truncated to the collection's size, multivector, text (the PDF page's
                               text layer; word boxes in metadata "words", over the kept image),
                               metadata {image_span, image_grid, num_tokens},
                               image = the page as the model saw it, PNG)                   (pool thread)
                ──▶ staged in the repository's StagedDocument, progress.advance(pages)
          ──▶ StagedDocument.commit(): one add_document, vectors and images together (all pages or none)

Pages are numbered from 1 (PDF page numbers; an image is page 1). At most three steps of ``pages_per_step``
rendered pages are in memory at a time (one being encoded to PNG, one embedded, one prepared); the vectors and
PNGs of every page are held until the atomic add. The page PNG is the page resized to ``cols*28`` x ``rows*28``
pixels for its merged patch grid ``(rows, cols)``, so similarity maps fall on it exactly.

The same code runs behind the HTTP route (``embed`` = the batcher) and the CLI (``embed`` = the encoder in
a thread).
"""

from __future__ import annotations

import asyncio
import functools
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from colbert.store import UnitRecord
from model.errors import ImageTooLargeError, PdfTooLargeError, TooManyPagesError
from model.images import load_image
from model.pdf import parse_page_selection
from service.collections.highlight import WORDS_KEY, stored_words
from service.collections.vectors import PASSAGE, EmbeddingModel
from service.engine.render_pool import count_pages, render_pages
from service.errors import QueueFullError
from service.limits import naming
from service.settings import env_name

if TYPE_CHECKING:
    from PIL import Image

    from colbert.store import DocumentInfo, OriginalFile, Store
    from model.processor import PreparedInput
    from model.types import EmbeddingOutput, TextLayer
    from service.collections.repository import Repository, StagedDocument
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

Kind = Literal["pdf", "image"]
_PATCH = 28  # pixels per side of one merged patch (one image token)


def detect_kind(data: bytes) -> Kind:
    """``"pdf"`` when the bytes carry a PDF header (within the first 1024 bytes, as readers allow), else
    ``"image"`` (the image decoder then names what is wrong)."""
    return "pdf" if b"%PDF-" in data[:1024] else "image"


@dataclass(frozen=True, slots=True)
class DocumentSource:
    """What to index: the bytes, their kind and (PDF) the pages to take (``"1-3,7"``; None = all)."""

    data: bytes
    kind: Kind
    pages: str | None = None


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
        )


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

    def __init__(self, model: EmbeddingModel, repository: Repository, options: IndexOptions) -> None:
        self.model = model
        self.processor = model.processor
        self.repository = repository
        self.options = options

    def select_pages(self, source: DocumentSource, *, background: bool = False) -> list[int]:
        """The page numbers to index (blocking: opens the PDF). Errors name the limit or the bad selection.

        ``background``: for a job or the CLI (cap ``max_job_pages``), else for a request that waits (``max_pages``).
        """
        if source.kind == "image":
            if source.pages is not None:
                parse_page_selection(source.pages, 1)  # "1" is the only valid selection of an image
            return [1]
        with naming((PdfTooLargeError, "max_pdf_bytes")):
            total = count_pages(source.data, max_bytes=self.options.max_pdf_bytes)
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
        await asyncio.to_thread(self.repository.check_free, store, collection, document_id, replace=replace)
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
        numbers = pages
        if numbers is None:
            numbers = await self.plan(store, collection, document_id, source, replace=replace, background=background)
        if progress is not None:
            progress.start(len(numbers))
        staged = self.repository.stage(
            store, document_id, metadata, replace=replace, content_hash=content_hash, original=original
        )
        try:
            tokens = await self._embed_steps(source, numbers, staged, store.config.dense_dim, progress, wait_when_full)
            info = await asyncio.to_thread(staged.commit)
        except BaseException:
            staged.discard()
            raise
        return IndexResult(info, tokens)

    async def _embed_steps(
        self,
        source: DocumentSource,
        numbers: list[int],
        staged: StagedDocument,
        dim: int,
        progress: Progress | None,
        wait_when_full: bool,
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
                    ahead or self.model.start(functools.partial(self._prepare, source, chunk))
                )
                ahead = None
                if self.options.prepare_ahead and k + 1 < len(chunks):
                    ahead = self.model.start(functools.partial(self._prepare, source, chunks[k + 1]))
                outputs = await self._embed(rows, wait=wait_when_full or k > 0)
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

    def _prepare(self, source: DocumentSource, numbers: list[int]) -> _Prepared:
        """Render/decode the pages of one step and prepare their rows; also the page images to keep and the
        pages' text layers (over the kept images; None for an image upload or a page without text)."""
        o = self.options
        layers: list[TextLayer | None]
        if source.kind == "image":
            with naming((ImageTooLargeError, "max_decoded_pixels")):
                pages = [load_image(source.data, max_decoded_pixels=o.max_decoded_pixels)]
            layers = [None]
        else:
            rendered = render_pages(
                source.data,
                dpi=o.dpi,
                pages=numbers,
                max_pages=len(numbers),
                max_bytes=o.max_pdf_bytes,
                max_pixels_per_page=o.max_decoded_pixels,
                text_layer=True,
            )
            pages = [p.image for p in rendered]
            layers = [p.text_layer for p in rendered]
        rows = [self.processor.prepare_image(p, PASSAGE, max_pixels=o.image_max_pixels) for p in pages]
        pictures = [_as_seen(page, row) for page, row in zip(pages, rows, strict=True)]
        seen = [
            None if layer is None else layer.scaled(pic.width / page.width, pic.height / page.height)
            for layer, page, pic in zip(layers, pages, pictures, strict=True)
        ]
        return rows, pictures, seen

    async def _embed(self, rows: list[PreparedInput], *, wait: bool) -> list[EmbeddingOutput]:
        while True:
            try:
                return await self.model.embed(rows)
            except QueueFullError:
                if not wait:
                    raise
                await asyncio.sleep(self.options.retry_after_s)

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
            meta = _page_meta(row, out)
            if layer is not None:
                meta[WORDS_KEY] = stored_words(layer)  # word boxes for highlights (service.collections.highlight)
            text = None if layer is None else layer.text
            mv = out.multivector
            records.append(UnitRecord(number, dense[i], mv, kind="page", text=text, metadata=meta))
        return records


def _grid(row: PreparedInput) -> tuple[int, int]:
    """(rows, cols) of the merged patch grid of an image row."""
    assert row.image_grid_thw is not None
    _t, h, w = (int(v) for v in row.image_grid_thw[0].tolist())
    return h // 2, w // 2


def _page_meta(row: PreparedInput, out: EmbeddingOutput) -> dict[str, Any]:
    rows, cols = out.image_grid if out.image_grid is not None else _grid(row)
    span = out.image_span if out.image_span is not None else row.image_span
    meta: dict[str, Any] = {"image_grid": [rows, cols], "num_tokens": row.num_tokens}
    if span is not None:
        meta["image_span"] = [span[0], span[1]]
    return meta


def _as_seen(page: Image.Image, row: PreparedInput) -> Image.Image:
    """The page at the size the model embedded it (cols*28 x rows*28)."""
    from PIL import Image as PILImage

    rows, cols = _grid(row)
    size = (cols * _PATCH, rows * _PATCH)
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
