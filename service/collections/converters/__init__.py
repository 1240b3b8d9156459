"""Bytes -> what a document's units are made of: one converter module per input kind, chosen here.

Every document takes one write path (``Collections.add_document``, :mod:`service.collections.manager`)::

    upload ──converter (picked by :func:`pick` from the declared type and the bytes)──▶ pages or chunks
           ──embedded with the collection's task (:mod:`service.collections.tasks`)──▶ units
           ──the one admission check (duplicates, taken id: :func:`service.collections.duplicates.admit`)
           ──▶ one ``add_document`` (:func:`service.collections.writing.commit`)

Kinds today:

- ``pdf`` (:mod:`.pdf`): pages rendered with their text layer; unit kind ``page``.
- ``epub``, ``xps``, ``fb2``, ``mobi``, ``cbz``, ``svg`` (:mod:`.ebook`): laid out by MuPDF into a PDF, then as
  ``pdf``.
- ``docx``, ``xlsx``, ``pptx``, ``odt``, ``ods``, ``odp``, ``rtf``, ``doc``, ``xls``, ``ppt`` (:mod:`.office`):
  converted to PDF by LibreOffice when installed (else 415 naming ``scripts/setup.sh --office``), then as ``pdf``.
- ``html``, ``markdown``, ``plaintext`` (:mod:`.web`): laid out into a PDF by MuPDF's Story (nothing fetched);
  Markdown and text only in a collection of pages (:func:`service.collections.writing.as_page_source`).
- ``image`` (:mod:`.image`): one page, no text layer; unit kind ``page``; the fallback for bytes no other page
  converter claims (its decoder names what the bytes are).
- ``text`` (:mod:`.text`): text and code, decoded and split into chunks by structure; unit kind ``chunk``
  (embedded with late chunking, :mod:`service.collections.texts`). Chosen by the declared type (a ``language``
  or a known file extension), not by sniffing.

How to add an input format that becomes pages (office files, e-books, web pages, scans):

1. Write ``converters/<kind>.py`` with a class implementing :class:`~.base.PageConverter` — ``kind`` (its
   name), ``description`` (how errors name it), ``sniff(data, name)`` (is the input, or its
   declared file name, of this format?), ``count(data, limits)`` (the page count,
   cheap, before any work; raise a :class:`model.errors.InputError` subclass or a ``service.errors`` 4xx for a
   bad file), ``load(data, numbers, limits)`` (the selected 1-based pages as
   :class:`model.types.PageImage`, with a ``TextLayer`` when the format has text) — and a module-level
   ``CONVERTER`` instance.
2. Register it: add the module's ``CONVERTER`` to :data:`FORMATS` below, before ``image`` (the fallback).

A format that is best turned into a PDF first (e-books: :mod:`.ebook`; office files; web pages) implements
:class:`~.base.PdfProducer` instead (``to_pdf(data, limits)``, run once per document before ``count``): the PDF
converter does the rest (:func:`as_loadable`).
3. Test it through the HTTP route (``tests/service/collections/converters/`` shows how).

Rendering, embedding, staging, limits on page counts, duplicates, 429 retries and the atomic write are shared:
a converter never touches the model or the store. A format that becomes *text* (HTML to Markdown, say) is a
function that turns its bytes into text before :func:`.text.convert`, chosen in :func:`pick`.
"""

from __future__ import annotations

from service.collections.converters import ebook, image, office, pdf, web
from service.collections.converters import text as text_converter
from service.collections.converters.base import PageConverter, PageLimits, PdfProducer

__all__ = [
    "FORMATS",
    "TEXT",
    "PageConverter",
    "PageLimits",
    "PdfProducer",
    "as_loadable",
    "detect_kind",
    "format_of",
    "page_converter",
    "pick",
]

TEXT = "text"
# Page input formats in the order they are tried on an input; the image converter claims the rest.
FORMATS: tuple[PageConverter | PdfProducer, ...] = (
    pdf.CONVERTER,
    *office.CONVERTERS,
    *ebook.CONVERTERS,
    *web.CONVERTERS,
    image.CONVERTER,
)


def detect_kind(data: bytes, name: str | None = None) -> str:
    """The page kind of ``data`` (``name``: its declared file name, for formats the bytes alone cannot tell):
    the first registered format whose ``sniff`` claims it.

    >>> detect_kind(b"%PDF-1.7 ..."), detect_kind(b"\\x89PNG...."), detect_kind(b"<svg xmlns='...'/>")
    ('pdf', 'image', 'svg')
    """
    return next(c.kind for c in FORMATS if c.sniff(data, name))


def pick(data: bytes, *, path: str | None = None, language: str | None = None) -> str:
    """The converter for an upload: ``text`` when it is declared a text document (a ``language``, or a path with
    a known text/code extension), else the page kind its bytes (and file name) show (:func:`detect_kind`)."""
    return TEXT if text_converter.claims(path, language) else detect_kind(data, path)


def format_of(kind: str) -> PageConverter | PdfProducer:
    """The registered format ``kind`` (``ValueError`` for an unknown one: a programming error)."""
    for converter in FORMATS:
        if converter.kind == kind:
            return converter
    raise ValueError(f"no page format {kind!r}; registered: {', '.join(c.kind for c in FORMATS)}")


def as_loadable(kind: str, data: bytes, limits: PageLimits) -> tuple[PageConverter, bytes]:
    """The :class:`PageConverter` that counts and loads the input, and the bytes it reads: the input unchanged for
    a page format, else converted (once, blocking: call it in the pool) by its :class:`PdfProducer` into a PDF for
    the PDF converter."""
    converter = format_of(kind)
    if isinstance(converter, PageConverter):
        return converter, data
    return pdf.CONVERTER, converter.to_pdf(data, limits)


def page_converter(kind: str) -> PageConverter:
    """The page converter of ``kind`` (``ValueError`` for a format that must be converted first, or unknown)."""
    converter = format_of(kind)
    if not isinstance(converter, PageConverter):
        raise ValueError(f"{kind!r} is converted to PDF first (as_loadable), it has no page converter")
    return converter
