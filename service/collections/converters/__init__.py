"""Bytes -> what a document's units are made of: one converter module per input kind, chosen here.

Every document takes one write path (``Collections.add_document``, :mod:`service.collections.manager`)::

    upload ──converter (picked by :func:`pick` from the declared type and the bytes)──▶ pages or chunks
           ──embedded with the collection's task (:mod:`service.collections.tasks`)──▶ units
           ──the one admission check (duplicates, taken id: :func:`service.collections.duplicates.admit`)
           ──▶ one ``add_document`` (:meth:`service.collections.staging.StagedDocument.commit`)

Kinds today:

- ``pdf`` (:mod:`.pdf`): pages rendered with their text layer; unit kind ``page``.
- ``image`` (:mod:`.image`): one page, no text layer; unit kind ``page``; the fallback for bytes no other page
  converter claims (its decoder names what the bytes are).
- ``text`` (:mod:`.text`): text and code, decoded and split into chunks by structure; unit kind ``chunk``
  (embedded with late chunking, :mod:`service.collections.texts`). Chosen by the declared type (a ``language``
  or a known file extension), not by sniffing.

How to add an input format that becomes pages (office files, e-books, web pages, scans):

1. Write ``converters/<kind>.py`` with a class implementing :class:`~.base.PageConverter` — ``kind`` (its
   name), ``sniff(head)`` (does the input start like this format?), ``count(data, limits)`` (the page count,
   cheap, before any work; raise a :class:`model.errors.InputError` subclass or a ``service.errors`` 4xx for a
   bad file), ``load(data, numbers, limits)`` (the selected 1-based pages as
   :class:`model.types.PageImage`, with a ``TextLayer`` when the format has text) — and a module-level
   ``CONVERTER`` instance.
2. Register it: add the module's ``CONVERTER`` to :data:`PAGE_CONVERTERS` below, before ``image`` (the
   fallback).
3. Test it through the HTTP route (``tests/service/collections/test_converters.py`` shows how).

Rendering, embedding, staging, limits on page counts, duplicates, 429 retries and the atomic write are shared:
a converter never touches the model or the store. A format that becomes *text* (HTML to Markdown, say) is a
function that turns its bytes into text before :func:`.text.convert`, chosen in :func:`pick`.
"""

from __future__ import annotations

from service.collections.converters import image, pdf
from service.collections.converters import text as text_converter
from service.collections.converters.base import PageConverter, PageLimits

__all__ = ["PAGE_CONVERTERS", "TEXT", "PageConverter", "PageLimits", "detect_kind", "page_converter", "pick"]

TEXT = "text"
# Page converters in the order they are tried on an input's first bytes; the image converter claims the rest.
PAGE_CONVERTERS: tuple[PageConverter, ...] = (pdf.CONVERTER, image.CONVERTER)


def detect_kind(data: bytes) -> str:
    """The page kind of ``data``: the first page converter whose ``sniff`` claims its first bytes.

    >>> detect_kind(b"%PDF-1.7 ..."), detect_kind(b"\\x89PNG....")
    ('pdf', 'image')
    """
    head = data[:4096]
    return next(c.kind for c in PAGE_CONVERTERS if c.sniff(head))


def pick(data: bytes, *, path: str | None = None, language: str | None = None) -> str:
    """The converter for an upload: ``text`` when it is declared a text document (a ``language``, or a path with
    a known text/code extension), else the page kind its bytes show (:func:`detect_kind`)."""
    return TEXT if text_converter.claims(path, language) else detect_kind(data)


def page_converter(kind: str) -> PageConverter:
    """The registered page converter of ``kind`` (``ValueError`` for an unknown one: a programming error)."""
    for converter in PAGE_CONVERTERS:
        if converter.kind == kind:
            return converter
    raise ValueError(f"no page converter {kind!r}; registered: {', '.join(c.kind for c in PAGE_CONVERTERS)}")
