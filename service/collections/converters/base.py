"""What every converter shares: the limits a page converter obeys and the protocols it implements.

A page input is either loaded as it is (:class:`PageConverter`: PDF, image) or first becomes a PDF once, in the
pool, before anything is counted (:class:`PdfProducer`: e-books, office files, web pages); the PDF is then
counted and rendered by the PDF converter, so every such format gets pages, text layer and word boxes the same
way."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from model.types import PageImage
    from service.engine.render_pool import RenderPool
    from service.limits import InputLimits

__all__ = ["Format", "PageConverter", "PageLimits", "PdfProducer"]


@dataclass(frozen=True, slots=True)
class PageLimits:
    """The caps a page converter checks before (or while) it decodes: bytes of the input, pixels of one decoded
    page, the resolution pages are rendered at, and the pages a converted document may have (checked before its
    conversion to PDF finishes where the format allows); and where PDF pages are rendered (the runtime's
    ``render_pool``, None: in the calling thread)."""

    dpi: int = 144
    max_bytes: int = 50 * 1024 * 1024
    max_decoded_pixels: int = 40_000_000
    max_converted_pages: int = 2000
    render_pool: RenderPool | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_limits(cls, limits: InputLimits, render_pool: RenderPool | None) -> PageLimits:
        """As indexing renders pages (and as a kept PDF's page is rendered again to show it), in ``render_pool``."""
        return cls(
            limits.pdf_dpi,
            limits.max_pdf_bytes,
            limits.max_decoded_pixels,
            limits.max_job_pdf_pages,
            render_pool=render_pool,
        )


class Format(Protocol):
    """A page input format: ``kind`` (its name: stored in the document source, shown in job progress and
    metrics), ``description`` (how error messages name it: "an EPUB e-book") and ``sniff``: whether ``data`` (the
    whole input; a converter reads only what it needs, e.g. the first bytes or a ZIP's member list) is of this
    format, ``name`` (the declared file name, may be None) deciding where the bytes cannot."""

    kind: str
    description: str

    def sniff(self, data: bytes, name: str | None) -> bool: ...


@runtime_checkable
class PageConverter(Format, Protocol):
    """Bytes of one kind -> page images (with their text layer when the format has one).

    ``count`` is cheap (no rendering: it runs before any work, so a bad file or page selection is refused early);
    ``load`` decodes the pages numbered ``numbers`` (1-based) — it runs in the preprocessing pool, a few pages at
    a time."""

    def count(self, data: bytes, limits: PageLimits) -> int: ...

    def load(self, data: bytes, numbers: list[int], limits: PageLimits) -> list[PageImage]: ...


@runtime_checkable
class PdfProducer(Format, Protocol):
    """Bytes of one kind -> one PDF (then handled by the PDF converter). ``to_pdf`` runs once per document in the
    preprocessing pool; it raises a :class:`model.errors.InputError` subclass or a ``service.errors`` 4xx for a
    bad or unconvertible file."""

    def to_pdf(self, data: bytes, limits: PageLimits) -> bytes: ...
