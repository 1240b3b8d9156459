"""``index`` of text and code files (``--text``, ``--task code``, a collection of chunks): each file is one
upload (``POST .../documents``'s path) with ``replace`` and skip-unchanged, so a re-run only embeds what changed;
``--prune`` deletes the documents whose file is gone. See :mod:`service.cli.index` for the rules."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from service.cli.files import DocumentFile, collect_text_files
from service.cli.progress import Bar, IndexRun
from service.errors import error_info

if TYPE_CHECKING:
    from service.cli.door import Door
    from service.limits import InputLimits

__all__ = ["index_texts"]


async def index_texts(c: Door, args: argparse.Namespace, limits: InputLimits, run: IndexRun) -> int:
    """Index every text/code file under ``args.paths``; 1 when some failed."""
    files, skipped = collect_text_files(args.paths, limits.max_text_bytes)
    if skipped:
        print("skipped: " + ", ".join(f"{n} {why}" for why, n in sorted(skipped.items())), file=sys.stderr)
    run.total = len(files)
    bar = Bar(disable=args.no_progress, unit="file")
    bar.grow(len(files))
    counts: Counter[str] = Counter()
    try:
        for file in files:
            run.current = file.source
            bar.label(file.source)
            counts[await _index_one(c, args, file, bar)] += 1
            run.done, run.current = run.done + 1, None
            bar.advance(1)
        if args.prune:
            counts["deleted"] = await _prune(c, args.collection, args.paths, {f.source for f in files})
    finally:
        bar.close()
    print(f"{args.collection!r}: " + ", ".join(f"{n} {what}" for what, n in sorted(counts.items())), file=sys.stderr)
    return 1 if counts["failed"] else 0


async def _index_one(c: Door, args: argparse.Namespace, file: DocumentFile, bar: Bar) -> str:
    """Index one file: ``indexed``, ``unchanged``, ``empty`` (nothing to index, e.g. an empty ``__init__.py``) or
    ``failed`` (its line printed)."""
    from service.collections.texts import TextSource
    from service.collections.uploads import DocumentUpload

    try:
        source = TextSource(file.path.read_bytes(), file.source)
        upload = DocumentUpload(
            source,
            args.metadata or {},
            file.document_id,
            True,
            path=file.source,
            id_from_path=True,
            skip_unchanged=True,
        )
        document, unchanged = await c.add_document(args.collection, upload, wait=True)
    except OSError as exc:
        bar.note(f"failed {file.source}: cannot read it: {exc}")
        return "failed"
    except Exception as exc:  # the upload route's error, one line
        info = error_info(exc)
        if info is None:
            raise
        if info.code == "empty_input":
            return "empty"
        bar.note(f"failed {file.source}: {info.message}")
        return "failed"
    if unchanged:
        return "unchanged"
    replaced = getattr(document, "metadata", {}).get("encoding_errors")
    if replaced:
        bar.note(f"{file.source}: {replaced} invalid UTF-8 sequences replaced by U+FFFD")
    return "indexed"


async def _prune(c: Door, collection: str, roots: list[Path], present: set[str]) -> int:
    """Delete the documents whose ``path`` is not among the files found (when folders were given)."""
    if not any(root.is_dir() for root in roots):
        return 0
    gone: list[str] = []
    offset = 0
    while True:
        page = await c.list_documents(collection, offset=offset, limit=500)
        gone += [
            d.id for d in page.data if isinstance(d.metadata.get("path"), str) and d.metadata["path"] not in present
        ]
        offset += len(page.data)
        if not page.data or offset >= page.total:
            break
    for document_id in gone:
        await c.delete_document(collection, document_id)
    return len(gone)
