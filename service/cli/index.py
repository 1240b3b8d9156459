"""``python -m service index``: add files and folders to a collection, without a server or over one.

    python -m service index samples/ --collection samples --tiny
    python -m service index repo/ --collection code --task code --tiny
    python -m service index samples/ --collection samples --url http://127.0.0.1:8080

Each file goes through :meth:`Collections.add_document` (the upload route's code: its validation, duplicate
policy, limits and errors), on the model and data directory the settings name (flags, then ``JEV4_*``), so a
collection indexed here is served by ``serve`` on the same ``--data-dir`` and vice versa (also while it runs,
on the embedded backend; not with the Qdrant local mode, which locks its folder).

The collection is created when it does not exist, with ``POST /v1/collections``'s rules (``--dimensions``,
``--codec``, ``--pool-factor``, ``--task``); of an existing one those flags must match or be left out.
Documents (the default: PDFs, images, office files, e-books, web pages, Markdown and text; a folder's other files
are counted by suffix and reason, :mod:`service.collections.page_walk`, and the last line says e.g. ``12 indexed,
3 skipped: 2 × .exe (not a document), 1 × .docx (install LibreOffice: …)``) are pages: a document that exists is
skipped unless ``--replace``; a file whose
bytes a stored document holds follows ``--duplicate-policy`` / ``JEV4_DUPLICATE_POLICY``. Text and code
(``--text``, implied by ``--task code`` and by a collection of chunks) are re-indexed incrementally: an unchanged
file is skipped by its ``content_hash``, a changed one replaces its document; ``--prune`` deletes the documents
whose file is gone. Files and ids: :mod:`service.cli.files`.

With ``--url`` (or ``JEV4_URL``) each file is uploaded to that server instead (the same calls over HTTP,
:mod:`service.cli.remote`, which says what differs); no model is loaded here.

Exit status: 0 when every file was indexed or skipped, 1 when some failed or were refused, 2 when nothing could
start (a bad flag, no model), 130 on Ctrl-C (the line printed says what was cancelled and how to resume).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.cli.progress import IndexRun
from service.cli.remote import add_remote_flags
from service.cli.session import fail, json_object, run_door_command
from service.limits import InputLimits

if TYPE_CHECKING:
    from service.cli.door import Door
    from service.cli.remote import Server
    from service.collections.schemas import CollectionObject
    from service.settings import Settings

__all__ = ["add_index_arguments", "index_command"]


def add_index_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="+",
        type=Path,
        help="files or folders: documents (walked recursively: PDFs, images, office files, e-books, web pages, "
        "Markdown and text; what is skipped is counted with the reason), or with --text "
        "text and code files (a repository walk: .gitignore honoured, binaries and vendored files skipped)",
    )
    parser.add_argument("--collection", required=True, help="collection name (created when missing)")
    parser.add_argument("--dimensions", type=int, help="dense size of a NEW collection (default: full)")
    parser.add_argument(
        "--codec",
        help="float32 | float16 | int8 | binary | residual2 | residual1 | residualpq2 | residualpq1 "
        "(NEW collection; default int8)",
    )
    parser.add_argument("--pool-factor", type=int, help="token pooling of a NEW collection (default 1: none)")
    parser.add_argument(
        "--task",
        choices=("retrieval", "code"),
        help="task of a NEW collection (default retrieval; code implies --text)",
    )
    parser.add_argument("--text", action="store_true", help="index text and code files instead of PDFs/images")
    parser.add_argument("--pages", help='PDF pages to index in every file, e.g. "1-3"; default all')
    parser.add_argument("--metadata", type=json_object, help="JSON object merged into each document's metadata")
    parser.add_argument("--replace", action="store_true", help="pages: replace documents that already exist")
    parser.add_argument("--prune", action="store_true", help="text: delete documents whose file is gone")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_remote_flags(parser)


def index_command(args: argparse.Namespace, settings: Settings, server: Server | None = None) -> int:
    """Index ``args.paths`` into ``args.collection`` (see the module doc), on ``server`` when one is given."""
    missing = [p for p in args.paths if not p.exists()]
    if missing:
        return fail(f"no such file or folder: {missing[0]}")
    if args.codec is not None:  # asked before the model loads (a minute for the real one); the service's own check
        from service.collections.manager import parse_codec
        from service.errors import ServiceError, cli_exit_status, error_info

        try:
            parse_codec(args.codec)
        except ServiceError as exc:
            info = error_info(exc)
            assert info is not None
            return fail(info.message, cli_exit_status(info))
    run = IndexRun(args.collection)
    try:
        return run_door_command(settings, lambda c: _index(c, args, settings, run), model=True, server=server)
    except KeyboardInterrupt:
        print(run.cancelled(), file=sys.stderr)
        return 130


async def _index(c: Door, args: argparse.Namespace, settings: Settings, run: IndexRun) -> int:
    existing = await _existing(c, args.collection)
    text = args.text or args.task == "code"
    if existing is not None:
        mismatch = _mismatch(existing, args)
        if mismatch:
            return fail(mismatch)
        text = existing.unit_kind == "chunk"
        if args.text and not text:
            return fail(
                f"collection {args.collection!r} holds pages; index text and code into another collection (pages and "
                "text chunks are not scored on one scale)"
            )
    else:
        created = await c.create(_create_request(args, text))
        print(f"created collection {created.name}: {_config_line(created)}", file=sys.stderr)
    limits = InputLimits.from_settings(settings)  # the caps the files are checked against before upload
    if text:
        from service.cli.index_text import index_texts

        return await index_texts(c, args, limits, run)
    from service.cli.index_pages import index_pages

    return await index_pages(c, args, settings, limits, run)


async def _existing(c: Door, name: str) -> CollectionObject | None:
    """The collection, None when there is none (told by its error code, the same here and from a server)."""
    from service.errors import error_info

    try:
        return await c.get(name)
    except Exception as exc:
        info = error_info(exc)
        if info is None or info.code != "collection_not_found":
            raise
        return None


def _create_request(args: argparse.Namespace, text: bool) -> Any:
    """``POST /v1/collections``'s body from the flags, validated as the route validates it (msgspec)."""
    import msgspec

    from service.collections.schemas import CreateCollectionRequest
    from service.errors import UnprocessableError

    body: dict[str, Any] = {"name": args.collection, "task": args.task or "retrieval"}
    body["unit_kind"] = "chunk" if text else "page"
    given = {"dimensions": args.dimensions, "codec": args.codec, "pool_factor": args.pool_factor}
    body |= {k: v for k, v in given.items() if v is not None}
    try:
        return msgspec.convert(body, CreateCollectionRequest)
    except msgspec.ValidationError as exc:
        raise UnprocessableError(f"invalid collection settings: {exc}", code="validation_error") from None


def _mismatch(existing: CollectionObject, args: argparse.Namespace) -> str | None:
    """The flags of a NEW collection that an existing one contradicts (leave them out, or use another name)."""
    given = {
        "dimensions": (args.dimensions, existing.dimensions),
        "codec": (args.codec, existing.codec),
        "pool-factor": (args.pool_factor, existing.pool_factor),
        "task": (args.task, existing.task),
    }
    wrong = [
        f"--{flag} {mine} (it has {theirs})" for flag, (mine, theirs) in given.items() if mine not in (None, theirs)
    ]
    if not wrong:
        return None
    return (
        f"collection {existing.name!r} exists: {', '.join(wrong)}; these flags apply to a new collection: leave them "
        "out, or index into another --collection"
    )


def _config_line(c: CollectionObject) -> str:
    """A collection's settings for people: ``dimensions 2048, codec float16, pool factor 1, task retrieval, pages``."""
    holds = "pages" if c.unit_kind == "page" else "text chunks"
    ocr = "" if c.ocr is None else f", ocr {c.ocr}"
    return f"dimensions {c.dimensions}, codec {c.codec}, pool factor {c.pool_factor}, task {c.task}, holds {holds}{ocr}"
