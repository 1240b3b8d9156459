"""``python -m service index --text`` (implied by ``--task code``): text and code documents from folders.

    python -m service index repo/ --collection code --task code --tiny
    python -m service search "read the config file" --collection code --tiny

Folders are walked by :func:`service.collections.walk.walk_repository` (``.git`` never entered, ``.gitignore``
honoured, vendored/generated folders and files, binaries, unknown languages and files over
``JEV4_MAX_TEXT_BYTES`` skipped and counted); a file given by name is taken as it is. Each file becomes one
document whose id is its path relative to the folder given (unsafe characters replaced by ``_``).

Re-indexing is incremental: a file whose bytes (and the chunking settings) are unchanged is skipped by its
``content_hash``; a changed file replaces its document (all its chunks in one transaction); with ``--prune``,
documents of the collection whose ``path`` lies under an indexed folder but whose file is gone are deleted.
One progress bar counts chunks.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from colbert.store import Store
    from model.encoder import Encoder
    from model.types import TaskSpec
    from service.collections.texts import TextIndexer

__all__ = [
    "TextFile",
    "add_text_arguments",
    "collect_text_files",
    "holds_chunks",
    "index_texts",
    "new_collection_kind",
    "print_chunk_hit",
    "text_index_command",
]


def add_text_arguments(parser: argparse.ArgumentParser) -> None:
    """``index``'s flags for text and code documents."""
    parser.add_argument(
        "--text",
        action="store_true",
        help="index text and code files (repository rules: .gitignore, no binaries/vendored) instead of PDFs/images",
    )
    parser.add_argument(
        "--task",
        choices=("retrieval", "code"),
        help="task of a NEW collection (default retrieval; code implies --text)",
    )
    parser.add_argument("--prune", action="store_true", help="--text: delete documents whose file is gone")


def holds_chunks(repository: Any, name: str) -> bool:
    """Whether ``name`` exists and holds text chunks (then ``index`` indexes text without ``--text``)."""
    from colbert.errors import CollectionNotFoundError

    try:
        return bool(repository.open(name).config.unit_kind == "chunk")
    except CollectionNotFoundError:
        return False


def new_collection_kind(args: argparse.Namespace) -> dict[str, str]:
    """Task and unit kind of a collection ``index`` creates (``--text`` / ``--task code``: chunks)."""
    text = bool(getattr(args, "text", False) or getattr(args, "task", None) == "code")
    return {"task": getattr(args, "task", None) or "retrieval", "unit_kind": "chunk" if text else "page"}


@dataclass(frozen=True, slots=True)
class TextFile:
    path: Path
    document_id: str
    source: str  # relative path as shown and stored (``path`` of the document)


def collect_text_files(paths: list[Path], max_bytes: int) -> tuple[list[TextFile], Counter[str]]:
    """The text/code files under ``paths`` (walker rules) and the skip counts by reason."""
    from service.cli.files import unique_ids
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
    return [TextFile(p, ident, shown) for (p, shown), ident in zip(found, unique_ids(found), strict=True)], (
        report.skipped
    )


async def text_index_command(
    args: argparse.Namespace, settings: Any, encoder: Encoder, repository: Any, open_or_create: Any
) -> int:
    """``index --text``: exit 0 when every file was indexed or unchanged, 1 when some failed, 2 when none could
    start (a bad --dimensions, a collection of pages, a task that differs from the collection's)."""
    from service.cli.files import _Bar

    info = encoder.info
    if args.dimensions is not None and args.dimensions not in {*info.matryoshka_dims, info.hidden_size}:
        print(
            f"error: --dimensions must be one of {sorted({*info.matryoshka_dims, info.hidden_size})}", file=sys.stderr
        )
        return 2
    store = open_or_create(args, encoder, repository)
    if store.config.unit_kind != "chunk":
        print(
            f"error: collection {args.collection!r} holds pages; index text and code into another collection "
            "(pages and text chunks are not scored on one scale)",
            file=sys.stderr,
        )
        return 2
    task = store.config.task
    if args.task is not None and args.task != task:
        print(
            f"error: collection {args.collection!r} was created for task {task!r}, not {args.task!r}", file=sys.stderr
        )
        return 2
    files, skipped = collect_text_files(args.paths, settings.max_text_bytes)
    if skipped:
        print("skipped: " + ", ".join(f"{n} {why}" for why, n in sorted(skipped.items())), file=sys.stderr)
    bar = _Bar(disable=args.no_progress, unit="chunk")
    try:
        failed = await index_texts(args, settings, encoder, store, files, bar)
    finally:
        bar.bar.close()
    return 1 if failed else 0


async def index_texts(
    args: argparse.Namespace, settings: Any, encoder: Encoder, store: Store, files: list[TextFile], bar: Any
) -> int:
    """Index every file (see the module doc); returns the number that failed."""
    from concurrent.futures import ThreadPoolExecutor

    from model.types import PromptType
    from service.collections.late import LateChunker
    from service.collections.texts import TextIndexer, TextOptions
    from service.collections.vectors import collection_spec

    spec = collection_spec(store.config, PromptType.PASSAGE)
    with (
        ThreadPoolExecutor(1, thread_name_prefix="jev4-model") as model,
        ThreadPoolExecutor(settings.preprocess_threads, thread_name_prefix="jev4-prep") as pool,
    ):

        async def embed_late(late: Any) -> Any:
            import asyncio

            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(model, lambda: encoder.embed_late_chunks(late, return_multivector=True))

        options = TextOptions.from_settings(settings)
        chunker = LateChunker(encoder.processor, embed_late, window=options.window, overlap=options.overlap)
        indexer = TextIndexer(
            chunker, pool, options, hidden_size=encoder.info.hidden_size, matryoshka_dims=encoder.info.matryoshka_dims
        )
        counts: Counter[str] = Counter()
        for file in files:
            counts[await _index_one(args, indexer, store, spec, file, bar)] += 1
    if getattr(args, "prune", False):
        counts["deleted"] = _prune(store, args.paths, {f.source for f in files})
    summary = ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))
    bar.note(f"{args.collection!r}: {summary}")
    return counts["failed"]


async def _index_one(
    args: argparse.Namespace, indexer: TextIndexer, store: Store, spec: TaskSpec, file: TextFile, bar: Any
) -> str:
    from colbert.errors import ColbertError
    from model.errors import InputError
    from service.errors import ServiceError

    bar.bar.set_postfix_str(file.source[-40:])
    try:
        planned = await indexer.plan(store, args.collection, file.document_id, _source(file), spec, replace=True)
        result = await indexer.index(
            store, file.document_id, planned, spec, args.metadata, replace=True, skip_unchanged=True, progress=bar
        )
    except (InputError, ServiceError, ColbertError) as exc:
        if getattr(exc, "code", None) == "empty_input":  # an empty __init__.py: nothing to index, not a failure
            return "empty"
        bar.note(f"failed {file.source}: {exc}")
        return "failed"
    if result.skipped:
        return "unchanged"
    if "encoding_errors" in planned.metadata:
        bar.note(f"{file.source}: {planned.metadata['encoding_errors']} invalid UTF-8 sequences replaced by U+FFFD")
    return "indexed"


def _source(file: TextFile) -> Any:
    from service.collections.texts import TextSource

    return TextSource(file.path.read_bytes(), file.source)


def _prune(store: Store, roots: list[Path], present: set[str]) -> int:
    """Delete the documents whose ``path`` is not among the files found (folders given only)."""
    if not any(root.is_dir() for root in roots):
        return 0
    deleted, offset = 0, 0
    while True:
        batch = store.list_documents(offset=offset, limit=500)
        if not batch:
            return deleted
        for info in batch:
            path = info.metadata.get("path")
            if isinstance(path, str) and path not in present and store.delete_document(info.doc_id):
                deleted += 1
            else:
                offset += 1


def print_chunk_hit(rank: int, match: Any, unit: Any, *, as_json: bool) -> None:
    """One chunk hit (a :class:`~service.collections.search.PageMatch`): a table row (score, path:first-last,
    kind and name, the signals that found it) or a JSON object with the chunk's info, text and signals."""
    hit = match.hit
    meta = dict(unit.metadata) if unit is not None else {}
    lines = meta.get("lines") or ["?", "?"]
    if as_json:
        row = {"rank": rank, "document_id": hit.doc_id, "unit": hit.unit, "kind": hit.kind, "score": hit.score}
        row["signals"] = {k: {"score": v.score, "rank": v.rank} for k, v in hit.signals.items()}
        chunk = {**meta, "text": None if unit is None else unit.text}
        print(json.dumps({**row, "metadata": hit.metadata, "chunk": chunk}, ensure_ascii=False))
        return
    where = f"{meta.get('path', hit.doc_id)}:{lines[0]}-{lines[1]}"
    label = f"{meta.get('chunk_kind', 'chunk')} {meta.get('name') or ''}".strip()
    found = "+".join(k for k in ("text", "maxsim") if k in hit.signals) or "-"
    print(f"{rank:>3}  {hit.score:#10.4g}  {where}  {label}  [{found}]")
    if getattr(match, "include_text", False) and unit is not None and unit.text:
        print("     " + " ".join(unit.text.split())[:300])
