"""E-books and fixed-layout documents MuPDF lays out itself (EPUB, XPS/OXPS, FB2, MOBI, CBZ, SVG) -> a PDF.

MuPDF converts them in memory (:func:`model.pdf.document_to_pdf`): nothing is unpacked to disk, so a ZIP member
named ``../../etc/passwd`` is only a name, and nothing outside the file is fetched. The PDF then takes the PDF
path (pages, text layer, word boxes). Told apart by their bytes (a ZIP's ``mimetype`` or member names, an XML
root, MOBI's header) and, where the bytes cannot tell (a CBZ is any ZIP of images), by the file name."""

from __future__ import annotations

import io
import re
import zipfile
from typing import TYPE_CHECKING

from model.errors import PdfTooLargeError
from model.pdf import document_to_pdf
from service.errors import naming

if TYPE_CHECKING:
    from collections.abc import Callable

    from service.collections.converters.base import PageLimits

__all__ = ["CONVERTERS", "EbookConverter", "zip_members"]

_ZIP = b"PK\x03\x04"
_IMAGE_SUFFIX = re.compile(r"\.(png|jpe?g|gif|bmp|webp|tiff?)$", re.IGNORECASE)


def zip_members(data: bytes) -> list[str] | None:
    """The member names of a ZIP archive (its central directory only: nothing is decompressed); None when
    ``data`` is not a readable ZIP."""
    if not data.startswith(_ZIP):
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return None


def _suffix(name: str | None) -> str:
    return "" if not name or "." not in name else name.rsplit(".", 1)[-1].lower()


def _is_epub(data: bytes, name: str | None) -> bool:
    return data.startswith(_ZIP) and data[30:58] == b"mimetypeapplication/epub+zip"


def _is_xps(data: bytes, name: str | None) -> bool:
    members = zip_members(data) or []
    return any(m.lower().endswith(".fdseq") for m in members) or (_suffix(name) in ("xps", "oxps") and bool(members))


def _is_cbz(data: bytes, name: str | None) -> bool:
    if _suffix(name) != "cbz":
        return False
    members = zip_members(data)
    return bool(members) and all(_IMAGE_SUFFIX.search(m) or m.endswith("/") for m in members or [])


def _xml_root(data: bytes) -> str:
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n")
    text = re.sub(rb"<\?xml[^>]*\?>|<!--.*?-->|<!DOCTYPE[^>]*>", b"", head, flags=re.DOTALL).lstrip()
    match = re.match(rb"<([A-Za-z_][\w.:-]*)", text)
    return match.group(1).decode("ascii").rsplit(":", 1)[-1] if match else ""


def _is_fb2(data: bytes, name: str | None) -> bool:
    return _xml_root(data) == "FictionBook"


def _is_svg(data: bytes, name: str | None) -> bool:
    return _xml_root(data) == "svg"


def _is_mobi(data: bytes, name: str | None) -> bool:
    return data[60:68] in (b"BOOKMOBI", b"TEXtREAd")


class EbookConverter:
    def __init__(self, kind: str, description: str, sniff: Callable[[bytes, str | None], bool]) -> None:
        self.kind = kind  # also MuPDF's filetype
        self.description = description
        self._sniff = sniff

    def sniff(self, data: bytes, name: str | None) -> bool:
        return self._sniff(data, name)

    def to_pdf(self, data: bytes, limits: PageLimits) -> bytes:
        if len(data) > limits.max_bytes:
            with naming((PdfTooLargeError, "max_pdf_bytes")):
                raise PdfTooLargeError(
                    f"{self.description} of {len(data)} bytes, more than the limit of {limits.max_bytes}"
                )
        return document_to_pdf(data, self.kind, max_pages=limits.max_converted_pages, what=self.description)


CONVERTERS: tuple[EbookConverter, ...] = (
    EbookConverter("epub", "an EPUB e-book", _is_epub),
    EbookConverter("xps", "an XPS document", _is_xps),
    EbookConverter("fb2", "an FB2 e-book", _is_fb2),
    EbookConverter("mobi", "a MOBI e-book", _is_mobi),
    EbookConverter("cbz", "a CBZ comic book", _is_cbz),
    EbookConverter("svg", "an SVG drawing", _is_svg),
)
