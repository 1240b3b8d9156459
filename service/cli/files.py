"""Files on disk as ``index`` takes them: which files a folder holds and the document id of each.

Page documents (:func:`collect_documents`): files as given (any suffix), plus the files under each folder
(walked recursively) that a page collection takes, the others counted by suffix and reason
(:mod:`service.collections.page_walk`). Text and code documents (:func:`collect_text_files`): the repository walk of
:func:`service.collections.walk.walk_repository` (``.git`` never entered, ``.gitignore`` honoured, vendored and
generated files, binaries, unknown languages and files over ``JEV4_MAX_TEXT_BYTES`` skipped and counted).

Each file is named by its path relative to the folder given (or its file name), characters outside
``A-Z a-z 0-9 . _ - : = + @`` replaced by ``_``, a leading ``d`` when it does not start with a letter or digit,
made unique with ``-2``, ``-3`` … when two folders hold the same relative path.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.collections.page_walk import PageWalkReport

__all__ = ["DocumentFile", "collect_documents", "collect_text_files", "unique_ids"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._:=+@-]")


@dataclass(frozen=True, slots=True)
class DocumentFile:
    path: Path
    document_id: str
    source: str  # the path as shown (relative to the folder given) and stored (``source`` / ``path``)


def _document_id(name: str) -> str:
    ident = _UNSAFE.sub("_", name)
    return ident if ident[:1].isalnum() else f"d{ident}"


def collect_documents(
    paths: Iterable[Path], report: PageWalkReport | None = None, *, max_bytes: int = 50 * 1024 * 1024
) -> list[DocumentFile]:
    """Files as given (any suffix) plus the files under each folder that a page collection takes
    (:func:`service.collections.page_walk.walk_pages`: PDFs, images, office files, e-books, web pages, Markdown
    and text; the others counted in ``report`` by suffix and reason), sorted, ids made unique."""
    from service.collections.page_walk import PageWalkReport, walk_pages

    report = PageWalkReport() if report is None else report
    found: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            found.extend(walk_pages(path, report, max_bytes=max_bytes))
        elif path.is_file():
            found.append((path, path.name))
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return _named(found)


def collect_text_files(paths: Iterable[Path], max_bytes: int) -> tuple[list[DocumentFile], Counter[str]]:
    """The text/code files under ``paths`` (the repository walk's rules) and the skip counts by reason."""
    from service.collections.walk import WalkReport, walk_repository

    report = WalkReport()
    found: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            found.extend((f.absolute, f.path) for f in walk_repository(path, max_bytes=max_bytes, report=report))
        elif path.is_file():
            found.append((path, path.name))
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return _named(found), report.skipped


def _named(found: Sequence[tuple[Path, str]]) -> list[DocumentFile]:
    return [DocumentFile(file, ident, shown) for (file, shown), ident in zip(found, unique_ids(found), strict=True)]


def unique_ids(found: Sequence[tuple[Path, str]]) -> list[str]:
    """A document id for each shown path (unsafe characters replaced), made unique with ``-2``, ``-3`` …"""
    out: list[str] = []
    used: set[str] = set()
    for _file, shown in found:
        base = _document_id(shown)[:240]
        ident, n = base, 1
        while ident in used:
            n += 1
            ident = f"{base}-{n}"
        used.add(ident)
        out.append(ident)
    return out
