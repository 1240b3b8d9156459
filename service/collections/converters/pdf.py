"""PDF -> pages: each selected page rendered at ``dpi`` with its text layer (words and their boxes).

Rendering goes through :func:`render` only, so moving it elsewhere (a process pool with a time budget per page)
is a change here and nowhere else."""

from __future__ import annotations

from typing import TYPE_CHECKING

from model.errors import PdfTooLargeError
from service.engine.render_pool import count_pages, render_pages
from service.errors import naming

if TYPE_CHECKING:
    from model.types import PageImage
    from service.collections.converters.base import PageLimits

__all__ = ["CONVERTER", "PdfConverter", "render"]


def render(data: bytes, numbers: list[int], limits: PageLimits) -> list[PageImage]:
    """The one call that renders PDF pages for indexing."""
    return render_pages(
        data,
        pool=limits.render_pool,
        dpi=limits.dpi,
        pages=numbers,
        max_pages=len(numbers),
        max_bytes=limits.max_bytes,
        max_pixels_per_page=limits.max_decoded_pixels,
        text_layer=True,
    )


class PdfConverter:
    kind = "pdf"
    description = "a PDF document"

    def sniff(self, data: bytes, name: str | None) -> bool:
        """A PDF header within the first 1024 bytes (as PDF readers allow)."""
        return b"%PDF-" in data[:1024]

    def count(self, data: bytes, limits: PageLimits) -> int:
        with naming((PdfTooLargeError, "max_pdf_bytes")):
            return count_pages(data, pool=limits.render_pool, max_bytes=limits.max_bytes)

    def load(self, data: bytes, numbers: list[int], limits: PageLimits) -> list[PageImage]:
        return render(data, numbers, limits)


CONVERTER = PdfConverter()
