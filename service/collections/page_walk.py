"""Which files of a folder the CLI indexes into a collection of pages, and why it skips the others.

Every file under the folders given is read (``.git``, ``.hg``, ``.svn`` never entered) and classified by the
converter registry (:func:`service.collections.converters.pick`, the upload route's choice): PDFs, images,
office files, e-books, web pages, and Markdown / plain text (laid out into pages) are indexed. A skipped file is
counted by its suffix and a reason that says what to do, never silently lost:

- ``not a document`` — bytes no converter takes (a program, an archive, audio, a database);
- ``install LibreOffice: bash scripts/setup.sh --office`` — an office file on a machine without LibreOffice;
- ``code: index it into a text collection with --text`` — a source file (pages and chunks are not scored on one
  scale);
- ``data or configuration, not prose`` — text that is not prose (JSON, YAML, TOML, CSV, logs): only
  Markdown, ``.txt`` and ``.rst`` files of a folder become pages;
- ``empty``, ``over JEV4_MAX_PDF_BYTES`` — nothing to index, or more bytes than an upload may have.

Files given by name are always tried (the upload then names what is wrong with them).

>>> report = PageWalkReport()
>>> report.skip(Path("a.exe"), NOT_A_DOCUMENT); report.skip(Path("b.exe"), NOT_A_DOCUMENT)
>>> report.skip(Path("c.docx"), NO_OFFICE); report.summary(12)
'12 indexed, 3 skipped: 2 × .exe (not a document), 1 × .docx (install LibreOffice: bash scripts/setup.sh --office)'
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from model.errors import NotAnImageError
from model.images import identify_image
from service.collections.chunking import language_of
from service.collections.converters import TEXT, office, pick
from service.collections.converters.web import PAGE_LANGUAGES

__all__ = ["CODE", "DATA", "NOT_A_DOCUMENT", "NO_OFFICE", "PageWalkReport", "skip_reason", "walk_pages"]

NOT_A_DOCUMENT: Final = "not a document"
NO_OFFICE: Final = "install LibreOffice: bash scripts/setup.sh --office"
CODE: Final = "code: index it into a text collection with --text"
DATA: Final = "data or configuration, not prose: name the file to index it as pages"
_PROSE_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".text", ".rst"})  # text files a folder's pages are
_VCS_DIRS = frozenset({".git", ".hg", ".svn"})
_OFFICE_KINDS = frozenset(c.kind for c in office.CONVERTERS)


@dataclass(slots=True)
class PageWalkReport:
    """Skipped files counted by (suffix, reason), in the order first seen."""

    skipped: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)

    def skip(self, path: Path, reason: str) -> None:
        self.skipped[(path.suffix.lower() or path.name, reason)] += 1

    def summary(self, indexed: int, *, present: int = 0, failed: int = 0) -> str:
        """``12 indexed, 3 skipped: 2 × .exe (not a document), …`` (most frequent first); ``present``: files
        stored already, ``failed``: files refused or failed (each named on a line of its own)."""
        counts = [f"{indexed} indexed"]
        if present:
            counts.append(f"{present} already stored")
        if failed:
            counts.append(f"{failed} failed or refused")
        counts.append(f"{sum(self.skipped.values())} skipped")
        line = ", ".join(counts)
        if not self.skipped:
            return line
        parts = [f"{n} × {suffix} ({reason})" for (suffix, reason), n in self.skipped.most_common()]
        return f"{line}: {', '.join(parts)}"


def skip_reason(data: bytes, name: str, *, max_bytes: int) -> str | None:
    """Why a page collection cannot take the file ``name`` holding ``data`` (None: it can; module doc)."""
    if not data:
        return "empty"
    if len(data) > max_bytes:
        return "over JEV4_MAX_PDF_BYTES"
    kind = pick(data, path=name)
    if kind == TEXT:
        if language_of(name) not in PAGE_LANGUAGES:
            return CODE
        return None if Path(name).suffix.lower() in _PROSE_SUFFIXES else DATA
    if kind in _OFFICE_KINDS and office.soffice() is None:
        return NO_OFFICE
    if kind != "image":
        return None
    try:
        identify_image(data, name)
    except NotAnImageError:
        return NOT_A_DOCUMENT
    return None


def walk_pages(folder: Path, report: PageWalkReport, *, max_bytes: int) -> Iterable[tuple[Path, str]]:
    """The files under ``folder`` a page collection takes, as (file, path relative to ``folder``), sorted; the
    others are counted in ``report``. Each file is read once here to classify it (a file over ``max_bytes`` only
    stat'ed)."""
    for file in sorted(folder.rglob("*")):
        relative = file.relative_to(folder)
        if not file.is_file() or _VCS_DIRS.intersection(relative.parts[:-1]):
            continue
        if file.stat().st_size > max_bytes:
            report.skip(file, "over JEV4_MAX_PDF_BYTES")
            continue
        reason = skip_reason(file.read_bytes(), file.name, max_bytes=max_bytes)
        if reason is None:
            yield file, relative.as_posix()
        else:
            report.skip(file, reason)
