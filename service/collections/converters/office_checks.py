"""What an office file is refused for before LibreOffice starts (:mod:`.office`): checks on the ZIP container
that read its central directory and at most one small member, nothing else decompressed.

- **Unpacked size** (:data:`MAX_UNPACKED_BYTES`): the sizes the archive declares for its members, summed. A
  "zip bomb" — a sheet of hundreds of megabytes of repeated cells deflated into a few — is a 413 naming the size,
  not minutes of LibreOffice until its time limit. (A member whose real size exceeds its declared one is caught by
  LibreOffice's own ZIP reader; the conversion's time and memory limits stay the backstop.)
- **Declared pages**: a PPTX's slides (one ``ppt/slides/slideN.xml`` member each) and the page count a DOCX's
  writer recorded (``docProps/app.xml`` ``<Pages>``), against the converted-page cap (``JEV4_MAX_JOB_PDF_PAGES``):
  a 10,000-slide deck is a 413 before its conversion. A count the file does not declare (or understates) is
  caught after the conversion, when the PDF's pages are counted.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Final

from model.errors import TooManyPagesError
from service.errors import PayloadTooLargeError
from service.settings import env_name

__all__ = ["MAX_UNPACKED_BYTES", "check_before_conversion"]

MAX_UNPACKED_BYTES: Final = 256 * 1024 * 1024  # far beyond any document that lays out to the page cap
_SLIDE = re.compile(r"ppt/slides/slide\d+\.xml")
_PAGES = re.compile(rb"<(?:\w+:)?Pages>\s*(\d{1,9})\s*</(?:\w+:)?Pages>")
_APP_XML_CAP = 1024 * 1024  # bytes of docProps/app.xml read at most


def check_before_conversion(kind: str, data: bytes, description: str, max_pages: int) -> None:
    """413 for an office file whose container says it unpacks too large or has more pages than ``max_pages``
    (module doc); a file that is not a ZIP (RTF, legacy OLE formats) passes to LibreOffice unchecked here."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return
    with archive:
        members = archive.infolist()
        unpacked = sum(m.file_size for m in members)
        if unpacked > MAX_UNPACKED_BYTES:
            raise PayloadTooLargeError(
                f"{description} unpacks to {unpacked} bytes, more than the limit of {MAX_UNPACKED_BYTES} for an "
                f"office file ({len(data)} bytes packed); split it, or convert it to PDF yourself and send that"
            )
        declared = _declared_pages(kind, archive, members)
    if declared is not None and declared > max_pages:
        raise TooManyPagesError(
            f"{description} has {declared} {'slides' if kind == 'pptx' else 'pages'}, more than the limit of "
            f"{max_pages} pages a converted document may have ({env_name('max_job_pdf_pages')}); split it"
        )


def _declared_pages(kind: str, archive: zipfile.ZipFile, members: list[zipfile.ZipInfo]) -> int | None:
    if kind == "pptx":
        return sum(1 for m in members if _SLIDE.fullmatch(m.filename))
    if kind != "docx":
        return None
    app = next((m for m in members if m.filename == "docProps/app.xml"), None)
    if app is None or app.file_size > _APP_XML_CAP:
        return None
    with archive.open(app) as member:
        found = _PAGES.search(member.read(_APP_XML_CAP))
    return None if found is None else int(found.group(1))
