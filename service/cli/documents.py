"""``python -m service documents list | show | delete | get-file``: the document routes of
:class:`~service.collections.manager.Collections` on the settings' data directory and backend, no model needed::

    python -m service documents list --collection NAME       # GET    /v1/collections/{name}/documents
    python -m service documents show ID --collection NAME    # GET    /v1/collections/{name}/documents/{id}
    python -m service documents delete ID --collection NAME  # DELETE /v1/collections/{name}/documents/{id}
    python -m service documents delete --filter JSON --collection NAME [--dry-run] [--yes]
                                                             # POST   /v1/collections/{name}/delete (asks first)
    python -m service documents get-file ID --collection NAME -o PATH
                                                             # GET    /v1/collections/{name}/documents/{id}/file

Each also runs over a running server: ``--url`` (or ``JEV4_URL``), ``--api-key`` (or ``JEV4_API_KEY``); the same
output (:mod:`service.cli.remote`).

Documents are added by ``index`` (PDFs, images, text and code). Exit status as ``collections``. A delete by
filter lists what it would delete first (a dry run), asks (``--yes`` skips; without a terminal on stdin it refuses
and names ``--yes``), then deletes by the same filter in one transaction and prints the ids it deleted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.cli.output import counted, document_lines, show, size
from service.cli.remote import add_remote_flags
from service.cli.session import confirm, fail, json_object

if TYPE_CHECKING:
    from service.cli.door import Door

__all__ = ["ACTIONS", "add_documents_command"]

Action = Callable[["Door", argparse.Namespace], Awaitable[int]]


def add_documents_command(sub: Any, finish_manage: Callable[..., None]) -> None:
    """Add ``documents`` to the subcommands ``sub``; ``finish`` adds ``--json``, ``--collection``, settings and
    ``--url`` / ``--api-key``."""

    def finish(p: argparse.ArgumentParser, *, collection: bool) -> None:
        finish_manage(p, collection=collection)
        add_remote_flags(p)

    docs = sub.add_parser(
        "documents",
        help="list, show, delete documents or get their original files",
        description="The document routes of the API on the data directory and backend the settings name (no "
        "model needed), or of a running server (--url, JEV4_URL): list, show, delete, get-file. Documents are added "
        "by `index` (PDFs, images, text and code).",
    )
    docs_sub = docs.add_subparsers(dest="action", required=True)
    p = docs_sub.add_parser("list", help="documents with their pages and metadata")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--limit", type=int, default=100)
    finish(p, collection=True)
    p = docs_sub.add_parser("show", help="one document")
    p.add_argument("document_id")
    finish(p, collection=True)
    p = docs_sub.add_parser(
        "delete", help="delete one document by id, or (asks first) every document a metadata filter selects"
    )
    p.add_argument("document_id", nargs="?", help="the document to delete (or give --filter)")
    p.add_argument(
        "--filter",
        type=json_object,
        help='delete the documents whose metadata passes this filter (JSON, as in search: \'{"lang": "en"}\'); '
        "every key must be held by some document",
    )
    p.add_argument("--dry-run", action="store_true", help="with --filter: list the documents, delete nothing")
    p.add_argument("--yes", action="store_true", help="with --filter: do not ask (needed when stdin is not a terminal)")
    finish(p, collection=True)
    p = docs_sub.add_parser(
        "get-file", help="write a document's original file (kept when JEV4_KEEP_ORIGINALS was on at upload)"
    )
    p.add_argument("document_id")
    p.add_argument("-o", "--output", required=True, help="where to write it ('-': standard output)")
    finish(p, collection=True)


async def _list(c: Door, args: argparse.Namespace) -> int:
    listing = await c.list_documents(args.collection, offset=args.offset, limit=args.limit)
    for doc in listing.data:
        show(args, doc, "\n".join(document_lines(doc)))
    if not args.json:
        shown = f"{args.offset + 1}-{args.offset + len(listing.data)}" if listing.data else "none"
        print(f"{shown} of {counted(listing.total, 'document')} in {args.collection}", file=sys.stderr)
    return 0


async def _show(c: Door, args: argparse.Namespace) -> int:
    doc = await c.get_document(args.collection, args.document_id)
    show(args, doc, "\n".join(document_lines(doc)))
    return 0


async def _delete(c: Door, args: argparse.Namespace) -> int:
    if (args.document_id is None) == (args.filter is None):
        return fail("give a document id or --filter JSON (one of them)")
    if args.filter is not None:
        return await _delete_by_filter(c, args)
    if args.dry_run or args.yes:
        return fail("--dry-run and --yes go with --filter (deleting one document by id does not ask)")
    deleted = await c.delete_document(args.collection, args.document_id)
    show(args, deleted, f"deleted document {deleted.id} from {args.collection}")
    return 0


async def _delete_by_filter(c: Door, args: argparse.Namespace) -> int:
    from service.collections.deletion import DeleteByFilterRequest

    request = DeleteByFilterRequest(filter=args.filter, dry_run=True)
    matched = await c.delete_by_filter(args.collection, request)  # the filter checked (422s) before any question
    listed = ", ".join(matched.ids[:10]) + (f", … ({matched.count - 10} more)" if matched.count > 10 else "")
    if not matched.ids:
        show(args, matched, f"no document of {args.collection} matches the filter: nothing to delete")
        return 0
    if args.dry_run:
        show(args, matched, f"would delete {counted(matched.count, 'document')} from {args.collection}: {listed}")
        return 0
    question = f"delete {counted(matched.count, 'document')} from {args.collection!r} ({listed})?"
    if not await asyncio.to_thread(confirm, question, yes=args.yes):
        return 1
    deleted = await c.delete_by_filter(args.collection, DeleteByFilterRequest(filter=args.filter))
    ids = ", ".join(deleted.ids)
    show(args, deleted, f"deleted {counted(deleted.count, 'document')} from {args.collection}: {ids}")
    return 0


async def _get_file(c: Door, args: argparse.Namespace) -> int:
    _etag, original = await c.original(args.collection, args.document_id)
    assert original is not None  # no If-None-Match was given
    if args.output == "-":
        sys.stdout.buffer.write(original.data)
        sys.stdout.buffer.flush()
        return 0
    target = Path(args.output)
    tmp = target.with_name(f".{target.name}.part")
    try:  # written whole or not at all
        tmp.write_bytes(original.data)
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        return fail(f"cannot write {target}: {exc}", 1)
    name = "" if original.name is None else f" ({json.dumps(original.name, ensure_ascii=False)})"
    text = f"wrote {target}: {size(len(original.data))}, {original.media_type}{name}"
    summary = {"document_id": args.document_id, "file": str(target), "bytes": len(original.data)}
    summary |= {"media_type": original.media_type, "name": original.name}
    print(json.dumps(summary, ensure_ascii=False) if args.json else text)
    return 0


ACTIONS: dict[str, Action] = {"list": _list, "show": _show, "delete": _delete, "get-file": _get_file}
