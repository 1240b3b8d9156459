"""Conversion cost per input format: seconds to turn one generated document into a PDF (the step before pages are
rendered like any PDF), and per resulting page. Small documents, each converted ``--repeat`` times; office formats
only where LibreOffice is installed.

    .venv/bin/python -m bench.formats --pages 20 --repeat 2
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable

import pymupdf

from service.collections.converters import format_of
from service.collections.converters.base import PageLimits, PdfProducer
from service.collections.converters.office import soffice
from tests.service.collections.converters.files import epub_bytes


def _docx(pages: int) -> bytes:
    import docx

    document = docx.Document()
    for i in range(pages):
        document.add_paragraph(f"Page {i + 1}. " + "Quarterly ledger entries and notes. " * 40)
        if i + 1 < pages:
            document.add_page_break()
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _pptx(pages: int) -> bytes:
    import pptx

    deck = pptx.Presentation()
    for i in range(pages):
        deck.slides.add_slide(deck.slide_layouts[5]).shapes.title.text = f"Slide {i + 1}: quarterly results"
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def _xlsx(pages: int) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    for row in range(1, 50 * pages + 1):
        book.active.append([row, f"item {row}", row * 1.5, "note"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _markdown(pages: int) -> bytes:
    return "\n\n".join(
        f"## Section {i}\n\n" + "Quarterly ledger entries and notes. " * 30 for i in range(pages)
    ).encode()


def _html(pages: int) -> bytes:
    body = "".join(f"<h2>Section {i}</h2><p>{'Quarterly ledger entries and notes. ' * 30}</p>" for i in range(pages))
    return f"<!DOCTYPE html><html><body>{body}</body></html>".encode()


def _epub(pages: int) -> bytes:
    return epub_bytes(["Quarterly ledger entries and notes. " * 40 for _ in range(pages)])


MAKERS: dict[str, Callable[[int], bytes]] = {
    "docx": _docx, "pptx": _pptx, "xlsx": _xlsx, "epub": _epub, "html": _html, "markdown": _markdown,
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20, help="about this many pages per document")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    limits = PageLimits()
    for kind, make in MAKERS.items():
        if kind in ("docx", "pptx", "xlsx") and soffice() is None:
            print(f"{kind}: skipped (LibreOffice absent)")
            continue
        converter = format_of(kind)
        assert isinstance(converter, PdfProducer)
        data = make(args.pages)
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            pdf = converter.to_pdf(data, limits)
            times.append(time.perf_counter() - start)
        pages = pymupdf.open(stream=pdf, filetype="pdf").page_count
        best = min(times)
        print(f"{kind}: {len(data)} bytes -> {pages} pages, {best:.2f} s per document, {best / pages:.3f} s per page")


if __name__ == "__main__":
    main()
