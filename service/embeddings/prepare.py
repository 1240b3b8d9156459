"""Turn parsed request items into model rows, off the event loop.

Downloads are awaited on the loop (they are I/O); decoding images, rendering PDF pages and tokenizing run in a
small thread pool (``preprocess_threads``) so neither the event loop nor the model worker is blocked, and the
pool's size bounds how much CPU preprocessing can take from the model thread. Rows keep input order; a PDF
expands in place into one row per page.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from model.errors import ImageTooLargeError, InputTooLongError, NotAnImageError, PdfTooLargeError, TooManyPagesError
from model.images import load_image
from service.embeddings.embed import ImageItem, InputItem, PdfItem, TextItem
from service.embeddings.media import MediaLimits, load_source, wrong_kind
from service.engine.render_pool import render_pages
from service.errors import PayloadTooLargeError, UnprocessableError, name_setting, naming

if TYPE_CHECKING:
    from model.processor import LateChunkInput, PreparedInput, Processor
    from model.types import TaskSpec
    from service.engine.render_pool import RenderPool
    from service.limits import InputLimits
    from service.metrics import Metrics
    from service.settings import Settings

__all__ = ["Preparer", "Row"]

T = TypeVar("T")

# What to send instead of bytes given as an image that are not one (see ``media.wrong_kind``).
_INSTEAD = {
    "pdf": 'send a PDF as {"pdf": <base64 | data URI | URL>} (one embedding per page; "pages" selects them)',
    "text": 'send text as {"text": "..."} or a plain string',
}


@dataclass(frozen=True, slots=True)
class Row:
    """One sequence for the model and where it came from."""

    prepared: PreparedInput
    input_index: int
    page: int | None = None  # 1-based page number for a PDF page


class Preparer:
    """Prepares the items of one request (see the module doc)."""

    def __init__(
        self,
        processor: Processor,
        settings: Settings,
        pool: Executor,
        metrics: Metrics | None = None,
        *,
        limits: InputLimits,
        render_pool: RenderPool | None = None,
    ) -> None:
        self.limits = limits  # the input caps (read once by the runtime)
        self.render_pool = render_pool  # PDF pages render in its workers (None: in the preprocessing thread)
        self.processor = processor
        self.settings = settings
        self.pool = pool
        self.metrics = metrics  # jev4_request_prepare_seconds: one observation per prepare call

    def _observe(self, start: float) -> None:
        if self.metrics is not None:
            self.metrics.request_prepare.observe(time.perf_counter() - start)

    def _limits(self, max_bytes_setting: str) -> MediaLimits:
        return MediaLimits.from_settings(self.settings, max_bytes_setting)

    async def _in_pool(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn)

    async def prepare(self, items: Sequence[InputItem], spec: TaskSpec, *, truncate: bool) -> list[Row]:
        """Items -> rows (texts tokenized together in one pool job; each image / PDF in its own)."""
        start = time.perf_counter()
        texts = [(i, it.text) for i, it in enumerate(items) if isinstance(it, TextItem)]
        jobs: list[asyncio.Future[list[Row]] | asyncio.Task[list[Row]]] = []
        if texts:
            jobs.append(asyncio.ensure_future(self._in_pool(lambda: self._texts(texts, spec, truncate))))
        for i, item in enumerate(items):
            if isinstance(item, ImageItem):
                jobs.append(asyncio.ensure_future(self._image(i, item, spec)))
            elif isinstance(item, PdfItem):
                jobs.append(asyncio.ensure_future(self._pdf(i, item, spec)))
        try:
            groups = await asyncio.gather(*jobs)
        except BaseException:
            for job in jobs:
                job.cancel()
            raise
        rows = sorted((row for group in groups for row in group), key=lambda r: (r.input_index, r.page or 0))
        pages = sum(1 for row in rows if row.page is not None)
        if pages > self.settings.max_pages_per_request:
            raise PayloadTooLargeError(
                f"the request renders {pages} PDF pages, more than the limit of "
                f"{self.settings.max_pages_per_request} per request (JEV4_MAX_PAGES_PER_REQUEST); "
                'select pages with "pages"',
                code="too_many_pages",
            )
        self._observe(start)
        return rows

    def _texts(self, texts: list[tuple[int, str]], spec: TaskSpec, truncate: bool) -> list[Row]:
        limit = self.limits.max_text_tokens
        try:
            prepared = self.processor.prepare_texts([t for _, t in texts], spec, max_length=limit, truncate=truncate)
        except InputTooLongError as exc:  # re-number: the processor counts texts only, callers count inputs
            error = InputTooLongError(texts[exc.index][0], exc.num_tokens, exc.limit)
            raise name_setting(error, "max_text_tokens") from None
        return [Row(p, i) for (i, _), p in zip(texts, prepared, strict=True)]

    async def _image(self, index: int, item: ImageItem, spec: TaskSpec) -> list[Row]:
        data = await load_source(item.source, self._limits("max_download_bytes"), what=f"input[{index}]")

        def work() -> list[Row]:
            try:
                with naming((ImageTooLargeError, "max_decoded_pixels")):
                    image = load_image(data, max_decoded_pixels=self.limits.max_decoded_pixels)
            except NotAnImageError as exc:
                raise wrong_kind(f"input[{index}].image", exc, _INSTEAD) from None
            prepared = self.processor.prepare_image(image, spec, max_pixels=self.limits.image_max_pixels)
            return [Row(prepared, index)]

        return await self._in_pool(work)

    async def _pdf(self, index: int, item: PdfItem, spec: TaskSpec) -> list[Row]:
        limits = self.limits
        data = await load_source(item.source, self._limits("max_pdf_bytes"), what=f"input[{index}]")

        def work() -> list[Row]:
            with naming((TooManyPagesError, "max_pdf_pages"), (PdfTooLargeError, "max_pdf_bytes")):
                pages = render_pages(
                    data,
                    pool=self.render_pool,
                    dpi=limits.pdf_dpi,
                    pages=item.pages,
                    max_pages=limits.max_pdf_pages,
                    max_bytes=limits.max_pdf_bytes,
                    max_pixels_per_page=limits.max_decoded_pixels,
                )
            return [
                Row(
                    self.processor.prepare_image(p.image, spec, max_pixels=limits.image_max_pixels),
                    index,
                    p.page_number,
                )
                for p in pages
            ]

        return await self._in_pool(work)

    async def prepare_late_chunks(
        self, items: Sequence[InputItem], spec: TaskSpec, *, truncate: bool
    ) -> LateChunkInput:
        """All items must be texts; they become one joined sequence with one span per item."""
        start = time.perf_counter()
        texts: list[str] = []
        for i, item in enumerate(items):
            if not isinstance(item, TextItem):
                kind = "an image" if isinstance(item, ImageItem) else "a PDF"
                raise UnprocessableError(
                    f"late_chunking joins texts into one sequence; input[{i}] is {kind}", code="invalid_input"
                )
            texts.append(item.text)
        limit = self.limits.max_text_tokens

        def work() -> LateChunkInput:
            with naming((InputTooLongError, "max_text_tokens")):
                return self.processor.prepare_late_chunks(texts, spec, max_length=limit, truncate=truncate)

        late = await self._in_pool(work)
        self._observe(start)
        return late
