"""Render PDF pages to RGB images with pymupdf (the only module that imports it).

* Pages are numbered from 1. A selection is ``"1-3,7"``: comma-separated page numbers and inclusive ranges
  ``a-b`` (``a-`` runs to the last page); whitespace is ignored; a page selected twice, a reversed range or a
  page outside the document is a :class:`PageSelectionError`.
* Caps (all configurable): ``max_bytes`` on the file (:class:`PdfTooLargeError`), ``max_pages`` on the pages
  selected (:class:`TooManyPagesError`; with no selection, on the whole document), ``max_pixels_per_page`` on
  each rendered bitmap. A page that would exceed it at the requested DPI (a poster, a 5-metre drawing) is
  rendered at the **lower scale** that fits the cap instead of being refused: the embedding downsizes every
  page to ``max_pixels`` (0.6 MP by default) anyway, so only the memory is saved.
* Errors: not a PDF or unreadable → :class:`PdfError`; password needed → :class:`PdfEncryptedError`
  (a PDF encrypted with an empty user password opens normally); damaged so that MuPDF had to rebuild it
  (broken cross-reference table, truncated file) → :class:`PdfRepairedError`: never accepted silently, since
  a rebuilt document may have lost pages or content (re-save it with a PDF tool and send it again).
* MuPDF is quiet: its error/warning display is turned off and its warning store cleared after each use.
  Calls into MuPDF hold one module lock (MuPDF's context is not thread-safe).
* Text layer (``text_layer=True``): each page's words as PDF text operators place them (``page.get_text
  ("words", sort=True)``: reading order, top-left to bottom-right), with their boxes mapped into the pixels of
  the rendered image (the page's rotation, then the render scale actually used), so a box can be drawn over the
  page image the model saw. A page with no extractable word (a scan, a drawing) has ``text_layer=None``: no
  OCR is attempted.
* Memory: a page at 144 DPI (A4) is about 1190 × 1684 × 3 ≈ 6 MB; :func:`iter_pages` renders one page at a
  time when the caller does not need all of them at once.
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from PIL import Image

from model.errors import (
    PageSelectionError,
    PdfEncryptedError,
    PdfError,
    PdfRepairedError,
    PdfTooLargeError,
    TooManyPagesError,
)
from model.types import PageImage, TextLayer, Word

__all__ = [
    "DEFAULT_DPI",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PAGES",
    "DEFAULT_MAX_PIXELS_PER_PAGE",
    "MUPDF_LOCK",
    "PdfSource",
    "count_pages",
    "document_to_pdf",
    "iter_pages",
    "parse_page_selection",
    "render_pages",
    "text_layer",
]

DEFAULT_DPI: Final = 144
DEFAULT_MAX_PAGES: Final = 100
DEFAULT_MAX_BYTES: Final = 100 * 1024 * 1024
DEFAULT_MAX_PIXELS_PER_PAGE: Final = 25_000_000
_MAX_DPI: Final = 1200

PdfSource = bytes | bytearray | memoryview | str | os.PathLike[str]

_LOCK = threading.RLock()
MUPDF_LOCK: Final = _LOCK  # for other modules that call MuPDF (model.html): one lock for the whole process
_ITEM = re.compile(r"^(\d+)(?:(-)(\d*))?$")


def parse_page_selection(spec: str | Sequence[int] | None, num_pages: int) -> list[int]:
    """1-based page numbers selected by ``spec`` (``None`` or ``""``: every page), in the given order.

    >>> parse_page_selection("1-3, 7", 10)
    [1, 2, 3, 7]
    >>> parse_page_selection("9-", 10)
    [9, 10]
    """
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return list(range(1, num_pages + 1))
    pages = _parse_items(spec, num_pages) if isinstance(spec, str) else _check_ints(spec)
    if not pages:
        raise PageSelectionError("the page selection is empty: expected at least one page")
    seen: set[int] = set()
    for page in pages:
        if not 1 <= page <= num_pages:
            raise PageSelectionError(f"page {page} is outside the document: expected 1..{num_pages}")
        if page in seen:
            raise PageSelectionError(f"page {page} is selected more than once in {spec!r}")
        seen.add(page)
    return pages


def _parse_items(spec: str, num_pages: int) -> list[int]:
    pages: list[int] = []
    for raw in re.sub(r"\s+", "", spec).split(","):
        match = _ITEM.match(raw)
        if match is None:
            raise PageSelectionError(
                f"bad page selection {spec!r} at {raw!r}: expected numbers and ranges like '1-3,7' or '5-'"
            )
        first, dash, last = match.groups()
        start = int(first)
        if not dash:
            pages.append(start)
            continue
        if start < 1 or start > num_pages:
            raise PageSelectionError(f"page {start} is outside the document: expected 1..{num_pages}")
        stop = int(last) if last else num_pages
        if stop < start:
            raise PageSelectionError(f"bad page range {raw!r} in {spec!r}: the end is before the start")
        if stop > num_pages:
            raise PageSelectionError(f"page {stop} is outside the document: expected 1..{num_pages}")
        pages.extend(range(start, stop + 1))
    return pages


def _check_ints(pages: Sequence[int]) -> list[int]:
    result = []
    for page in pages:
        if isinstance(page, bool) or not isinstance(page, int):
            raise PageSelectionError(f"page numbers must be integers, got {page!r}")
        result.append(page)
    return result


# -- documents ---------------------------------------------------------------------------------------------


def count_pages(pdf: PdfSource, *, max_bytes: int = DEFAULT_MAX_BYTES) -> int:
    """Number of pages of ``pdf`` (bytes or a path)."""
    with _LOCK:
        document = _open(pdf, max_bytes)
        try:
            return _page_count(document)
        finally:
            _close(document)


def render_pages(
    pdf: PdfSource,
    *,
    dpi: float = DEFAULT_DPI,
    pages: str | Sequence[int] | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels_per_page: int = DEFAULT_MAX_PIXELS_PER_PAGE,
    text_layer: bool = False,
) -> list[PageImage]:
    """Render the selected pages of ``pdf`` at ``dpi`` into RGB images (see the module notes for the caps and
    the text layer)."""
    return list(
        iter_pages(
            pdf,
            dpi=dpi,
            pages=pages,
            max_pages=max_pages,
            max_bytes=max_bytes,
            max_pixels_per_page=max_pixels_per_page,
            text_layer=text_layer,
        )
    )


def iter_pages(
    pdf: PdfSource,
    *,
    dpi: float = DEFAULT_DPI,
    pages: str | Sequence[int] | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels_per_page: int = DEFAULT_MAX_PIXELS_PER_PAGE,
    text_layer: bool = False,
) -> Iterator[PageImage]:
    """Like :func:`render_pages`, one page at a time. The document is opened, checked and the selection
    validated now (errors are raised by this call); pages are rendered as the iterator is consumed."""
    if not 1 <= dpi <= _MAX_DPI:
        raise PdfError(f"dpi must be within 1..{_MAX_DPI}, got {dpi}")
    if max_pages < 1 or max_pixels_per_page < 1:
        raise PdfError(f"max_pages and max_pixels_per_page must be positive, got {max_pages}, {max_pixels_per_page}")
    with _LOCK:
        document = _open(pdf, max_bytes)
        try:
            selected = parse_page_selection(pages, _page_count(document))
            if len(selected) > max_pages:
                what = "selected" if pages is not None else "in the document (select some with pages='1-10')"
                raise TooManyPagesError(f"{len(selected)} pages {what}, more than the limit of {max_pages}")
        except BaseException:
            _close(document)
            raise
    return _render(document, selected, dpi / 72.0, max_pixels_per_page, text_layer)


def _render(document: Any, selected: list[int], scale: float, max_pixels: int, with_text: bool) -> Iterator[PageImage]:
    import pymupdf

    try:
        for number in selected:
            with _LOCK:
                try:
                    page = document[number - 1]
                except _mupdf_errors() as error:  # a broken page tree (cycles, bad /Count)
                    raise PdfError(f"page {number} cannot be loaded: {error}") from None
                page_scale = _fit_scale(page.rect.width, page.rect.height, scale, max_pixels, number)
                matrix = pymupdf.Matrix(page_scale, page_scale)
                try:
                    pixmap = page.get_pixmap(matrix=matrix, colorspace=pymupdf.csRGB, alpha=False)
                except _mupdf_errors() as error:
                    raise PdfError(f"page {number} cannot be rendered: {error}") from None
                finally:
                    pymupdf.TOOLS.reset_mupdf_warnings()
                image = Image.frombytes("RGB", (pixmap.width, pixmap.height), pixmap.samples)
                layer = text_layer(page, matrix, image.size) if with_text else None
            yield PageImage(page_number=number, image=image, text_layer=layer)
    finally:
        with _LOCK:
            _close(document)


def text_layer(page: Any, matrix: Any, size: tuple[int, int]) -> TextLayer | None:
    """The words of a pymupdf ``page`` with boxes in the pixels of its pixmap rendered with ``matrix`` (of
    ``size`` (width, height)); None when the page has no words. Caller holds ``_LOCK``."""
    import pymupdf

    try:
        raw = page.get_text("words", sort=True)  # [(x0, y0, x1, y1, word, block, line, word_no)] in points
    finally:
        pymupdf.TOOLS.reset_mupdf_warnings()
    if not raw:
        return None
    to_pixels = page.rotation_matrix * matrix  # unrotated page points -> rendered pixels
    width, height = size
    words: list[Word] = []
    lines: list[list[str]] = []
    last_line: tuple[int, int] | None = None
    for x0, y0, x1, y1, text, block, line, _ in raw:
        box = (pymupdf.Rect(x0, y0, x1, y1) * to_pixels).normalize()
        words.append(
            Word(
                text=text,
                x0=min(max(box.x0, 0.0), width),
                y0=min(max(box.y0, 0.0), height),
                x1=min(max(box.x1, 0.0), width),
                y1=min(max(box.y1, 0.0), height),
            )
        )
        if (block, line) != last_line:
            lines.append([])
            last_line = (block, line)
        lines[-1].append(text)
    return TextLayer(text="\n".join(" ".join(ws) for ws in lines), words=tuple(words))


def document_to_pdf(data: bytes, filetype: str, *, max_pages: int, what: str) -> bytes:
    """A document MuPDF lays out itself (``filetype`` "epub", "xps", "fb2", "mobi", "cbz", "svg") as PDF bytes,
    so it is counted, rendered and its text read exactly as a PDF. Read from memory only: nothing is extracted to
    disk and nothing it references outside itself is opened. Over ``max_pages`` pages -> TooManyPagesError
    before the conversion; ``what`` names the format in errors ("an EPUB e-book")."""
    import pymupdf

    with _LOCK:
        pymupdf.TOOLS.mupdf_display_errors(False)
        pymupdf.TOOLS.mupdf_display_warnings(False)
        try:
            document = pymupdf.open(stream=data, filetype=filetype)
        except _mupdf_errors() as error:
            raise PdfError(f"cannot open {what}: {error}") from None
        try:
            if document.needs_pass:
                raise PdfEncryptedError(f"{what} is encrypted and needs a password; decrypt it first")
            pages = _page_count(document)
            if pages < 1:
                raise PdfError(f"{what} has no pages")
            if pages > max_pages:
                raise TooManyPagesError(f"{what} of {pages} pages, more than the limit of {max_pages}")
            return bytes(document.convert_to_pdf())
        except _mupdf_errors() as error:
            raise PdfError(f"cannot convert {what}: {error}") from None
        finally:
            _close(document)
            pymupdf.TOOLS.reset_mupdf_warnings()


def _fit_scale(width: float, height: float, scale: float, max_pixels: int, number: int) -> float:
    """``scale``, lowered if needed so the rendered bitmap (sides rounded up, +1 for MuPDF's outward
    rounding) stays within ``max_pixels``."""
    if not (width > 0 and height > 0):
        raise PdfError(f"page {number} has no area: {width} x {height} points")

    def pixels(s: float) -> int:
        return (math.ceil(width * s) + 1) * (math.ceil(height * s) + 1)

    if pixels(scale) <= max_pixels:
        return scale
    fitted = math.sqrt(max_pixels / (width * height))
    while fitted > 0 and pixels(fitted) > max_pixels:
        fitted *= 0.99
    if fitted * min(width, height) < 1:
        raise PdfError(
            f"page {number} ({width:.0f} x {height:.0f} points) cannot be rendered within {max_pixels} pixels"
        )
    return fitted


def _mupdf_errors() -> tuple[type[Exception], ...]:
    """What pymupdf raises on bad documents: its RuntimeError subclasses and MuPDF's ``FzErrorBase`` family
    (which derives from Exception only: a page-tree cycle raises ``FzErrorFormat``)."""
    import pymupdf

    return (RuntimeError, pymupdf.mupdf.FzErrorBase)


def _page_count(document: Any) -> int:
    """The page count, or PdfError when the page tree is broken (a /Count of millions, a cycle)."""
    try:
        return int(document.page_count)
    except _mupdf_errors() as error:
        raise PdfError(f"corrupt PDF page tree: {error}") from None
    finally:
        import pymupdf

        pymupdf.TOOLS.reset_mupdf_warnings()


def _open(pdf: PdfSource, max_bytes: int) -> Any:
    """Open ``pdf`` as a PDF (hold ``_LOCK``), with every check that precedes rendering."""
    import pymupdf

    pymupdf.TOOLS.mupdf_display_errors(False)
    pymupdf.TOOLS.mupdf_display_warnings(False)
    data = _read(pdf, max_bytes)
    if b"%PDF-" not in data[:1024]:
        raise PdfError("not a PDF: no '%PDF-' header in the first 1024 bytes")
    try:
        document = pymupdf.open(stream=data, filetype="pdf")
    except _mupdf_errors() as error:  # pymupdf.FileDataError / EmptyFileError / mupdf.FzError*
        raise PdfError(f"corrupt PDF: {error}") from None
    finally:
        pymupdf.TOOLS.reset_mupdf_warnings()
    if not document.is_pdf:
        _close(document)
        raise PdfError("not a PDF document")
    if document.needs_pass:
        _close(document)
        raise PdfEncryptedError("the PDF is encrypted and needs a password; decrypt it first")
    if document.is_repaired:
        _close(document)
        raise PdfRepairedError(
            "the PDF is damaged (its cross-reference table had to be rebuilt, e.g. a truncated file); it is "
            "refused rather than indexed from a guess: re-save it with a PDF tool (qpdf, or print to PDF) and send it"
        )
    try:
        if _page_count(document) < 1:
            raise PdfError("the PDF has no pages")
    except PdfError:
        _close(document)
        raise
    return document


def _read(pdf: PdfSource, max_bytes: int) -> bytes:
    if isinstance(pdf, bytes | bytearray | memoryview):
        data = bytes(pdf)
    elif isinstance(pdf, str | os.PathLike):
        path = Path(pdf)
        if not path.is_file():
            raise PdfError(f"PDF file not found: {path}")
        size = path.stat().st_size
        if size > max_bytes:
            raise PdfTooLargeError(f"{path}: {size} bytes, more than the limit of {max_bytes}")
        data = path.read_bytes()
    else:
        raise PdfError(f"expected PDF bytes or a path, got {type(pdf).__name__}")
    if len(data) > max_bytes:
        raise PdfTooLargeError(f"PDF of {len(data)} bytes, more than the limit of {max_bytes}")
    if not data:
        raise PdfError("the PDF is empty (0 bytes)")
    return data


def _close(document: Any) -> None:
    document.close()
