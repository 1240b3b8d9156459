"""HTML -> PDF pages with MuPDF's ``Story`` layout engine (A4, 1.5 cm margins), so a web page, Markdown or plain
text uploaded to a page collection gets pages whose text layer is its own text.

Nothing is fetched: the story is built without an archive, so MuPDF resolves no image, stylesheet or font the
HTML references (remote or local) and runs no script (its HTML engine has none); missing images are left out."""

from __future__ import annotations

import io
from typing import Final

from model.errors import PdfError, TooManyPagesError
from model.pdf import MUPDF_LOCK

__all__ = ["html_to_pdf"]

_CSS: Final = "body { font-family: sans-serif; font-size: 11pt; line-height: 1.35; } pre { white-space: pre-wrap; }"
_MARGIN: Final = 42.5  # points (1.5 cm)


def html_to_pdf(html: str, *, max_pages: int, what: str) -> bytes:
    """Lay ``html`` out on A4 pages; over ``max_pages`` pages -> TooManyPagesError (stopped while laying out, so
    a huge page costs at most ``max_pages`` pages of work); ``what`` names the input in errors."""
    import pymupdf

    with MUPDF_LOCK:
        try:
            story = pymupdf.Story(html=html, user_css=_CSS)
        except (RuntimeError, pymupdf.mupdf.FzErrorBase) as error:
            raise PdfError(f"cannot read {what} as HTML: {error}") from None
        out = io.BytesIO()
        writer = pymupdf.DocumentWriter(out)
        page = pymupdf.paper_rect("a4")
        where = pymupdf.Rect(page.x0 + _MARGIN, page.y0 + _MARGIN, page.x1 - _MARGIN, page.y1 - _MARGIN)
        pages, more = 0, 1
        try:
            while more:
                pages += 1
                if pages > max_pages:
                    raise TooManyPagesError(f"{what} lays out to more than {max_pages} pages")
                device = writer.begin_page(page)
                more, _filled = story.place(where)
                story.draw(device)
                writer.end_page()
        finally:
            writer.close()
            pymupdf.TOOLS.reset_mupdf_warnings()
        return out.getvalue()
