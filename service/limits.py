"""The caps on what one request or document may hold, shared by the embedding routes, the collections, MCP
writes, the CLI and ``/health``: read once from :class:`~service.settings.Settings` (by the runtime, or by a CLI
command that has none) and passed down as this value, so each caller checks the same numbers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = ["InputLimits"]


@dataclass(frozen=True, slots=True)
class InputLimits:
    """Input caps (each named after its ``JEV4_*`` setting; see :class:`~service.settings.Settings`)."""

    max_items_per_request: int
    max_text_tokens: int
    max_text_bytes: int
    max_decoded_pixels: int
    image_max_pixels: int | None
    max_pdf_pages: int  # a request that waits for its answer
    max_job_pdf_pages: int  # a background job or the CLI, which stream pages in steps
    max_pdf_bytes: int
    pdf_dpi: int

    @classmethod
    def from_settings(cls, settings: Settings) -> InputLimits:
        return cls(
            max_items_per_request=settings.max_items_per_request,
            max_text_tokens=settings.max_text_tokens,
            max_text_bytes=settings.max_text_bytes,
            max_decoded_pixels=settings.max_decoded_pixels,
            image_max_pixels=settings.image_max_pixels,
            max_pdf_pages=settings.max_pdf_pages,
            max_job_pdf_pages=settings.max_job_pdf_pages,
            max_pdf_bytes=settings.max_pdf_bytes,
            pdf_dpi=settings.pdf_dpi,
        )
