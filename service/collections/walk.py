"""Which files of a folder (a repository) the CLI indexes as text/code documents.

Rules, in order (a skipped file is counted by reason, never silently lost):

1. ``.git``, ``.hg``, ``.svn`` folders are never entered.
2. Files and folders matched by a ``.gitignore`` (the root's and every nested one, each relative to its own
   folder, with git's rules via ``pathspec``) are skipped — ``ignored``.
3. Vendored or generated folders are skipped by name — ``vendored``: :data:`VENDORED_DIRS` (``node_modules``,
   ``vendor``, ``third_party``, ``dist``, ``build``, ``target``, virtual environments …) and any folder holding a
   ``pyvenv.cfg``. Generated files too: lock files, minified ``*.min.js`` / ``*.min.css``, source maps, and files
   whose first 5 lines say ``@generated`` or ``Code generated … DO NOT EDIT``.
4. Files whose extension names no known language are skipped — ``unknown_language``
   (see :func:`~service.collections.chunking.language_of`).
5. Files over ``max_bytes`` (``JEV4_MAX_TEXT_BYTES``) — ``too_large``; files with a NUL byte in their first
   8 KiB — ``binary``.

Paths are POSIX, relative to the root (they become document ids and the ``path`` of every hit).
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from service.collections.chunking import language_of

__all__ = ["VENDORED_DIRS", "RepoFile", "WalkReport", "walk_repository"]

VENDORED_DIRS = frozenset(
    {
        "node_modules",
        "bower_components",
        "vendor",
        "third_party",
        "third-party",
        "dist",
        "build",
        "target",
        "__pycache__",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "site-packages",
        ".eggs",
        ".next",
        ".gradle",
    }
)
_VCS_DIRS = frozenset({".git", ".hg", ".svn"})
_GENERATED_NAMES = frozenset(
    {"package-lock.json", "yarn.lock", "pnpm-lock.yaml", "cargo.lock", "poetry.lock", "uv.lock", "go.sum"}
)
_GENERATED_SUFFIXES = (".min.js", ".min.css", ".map", ".pb.go", "_pb2.py")
_HEAD_BYTES = 8192


@dataclass(frozen=True, slots=True)
class RepoFile:
    path: str  # relative, POSIX
    absolute: Path
    size: int


@dataclass(slots=True)
class WalkReport:
    """What was skipped, by reason (``ignored``, ``vendored``, ``unknown_language``, ``too_large``, ``binary``)."""

    skipped: collections.Counter[str] = field(default_factory=collections.Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, reason: str, path: str) -> None:
        self.skipped[reason] += 1
        self.examples.setdefault(reason, [])
        if len(self.examples[reason]) < 3:
            self.examples[reason].append(path)


def walk_repository(root: Path, *, max_bytes: int, report: WalkReport | None = None) -> Iterator[RepoFile]:
    """The files to index under ``root`` in sorted order (see the module doc); skips go to ``report``."""
    report = report if report is not None else WalkReport()
    root = root.resolve()
    specs: list[tuple[str, pathspec.GitIgnoreSpec]] = []  # (folder relative to root, its .gitignore)
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        rel_dir = "" if here == root else here.relative_to(root).as_posix()
        specs = [(d, s) for d, s in specs if rel_dir == d or rel_dir.startswith(d + "/") or d == ""]
        ignore_file = here / ".gitignore"
        if ignore_file.is_file():
            lines = ignore_file.read_text(encoding="utf-8", errors="replace").splitlines()
            specs.append((rel_dir, pathspec.GitIgnoreSpec.from_lines(lines)))
        kept = []
        for name in sorted(dirs):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if name in _VCS_DIRS:
                continue
            if _ignored(specs, rel + "/"):
                report.skip("ignored", rel + "/")
            elif name in VENDORED_DIRS or (here / name / "pyvenv.cfg").is_file():
                report.skip("vendored", rel + "/")
            else:
                kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if name in _VCS_DIRS:  # a worktree's .git file
                continue
            found = _check(here / name, rel, specs, max_bytes, report)
            if found is not None:
                yield found


def _check(
    path: Path, rel: str, specs: list[tuple[str, pathspec.GitIgnoreSpec]], max_bytes: int, report: WalkReport
) -> RepoFile | None:
    if _ignored(specs, rel):
        report.skip("ignored", rel)
        return None
    if path.is_symlink() or not path.is_file():
        report.skip("not_a_file", rel)
        return None
    lower = path.name.lower()
    if lower in _GENERATED_NAMES or lower.endswith(_GENERATED_SUFFIXES):
        report.skip("vendored", rel)
        return None
    if language_of(rel) is None:
        report.skip("unknown_language", rel)
        return None
    size = path.stat().st_size
    if size > max_bytes:
        report.skip("too_large", rel)
        return None
    with path.open("rb") as handle:
        head = handle.read(_HEAD_BYTES)
    if b"\x00" in head:
        report.skip("binary", rel)
        return None
    first_lines = b"\n".join(head.splitlines()[:5])
    if b"@generated" in first_lines or (b"Code generated" in first_lines and b"DO NOT EDIT" in first_lines):
        report.skip("vendored", rel)
        return None
    return RepoFile(rel, path, size)


def _ignored(specs: list[tuple[str, pathspec.GitIgnoreSpec]], rel: str) -> bool:
    for folder, spec in specs:
        inner = rel if folder == "" else rel[len(folder) + 1 :]
        if spec.match_file(inner):
            return True
    return False
