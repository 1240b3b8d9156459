"""``python -m service collections list | show | delete | vacuum | train-cells | export | import``: the collection
routes of :class:`~service.collections.manager.Collections` on the settings' data directory and backend, no model
needed::

    python -m service collections list                       # GET    /v1/collections
    python -m service collections show NAME                  # GET    /v1/collections/{name}
    python -m service collections delete NAME [--yes]        # DELETE /v1/collections/{name} (asks first)
    python -m service collections vacuum NAME [--recode C]   # POST   /v1/collections/{name}/vacuum
    python -m service collections train-cells NAME [--cells K]   # the pooled_ivf first stage's cells (embedded)
    python -m service collections export NAME FILE           # one file: vectors, texts, images, metadata
    python -m service collections import FILE [--name NEW]   # into this --collection-backend (migration)

Collections are created by ``index`` (or ``POST /v1/collections``). Errors print ``error: <the API's message>``;
exit status 0 on success, 1 when the collection does not exist or the request is refused, 2 when the command as
given cannot run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.cli.output import collection_line, counted, show, size
from service.cli.session import confirm, fail

if TYPE_CHECKING:
    from service.collections.manager import Collections

__all__ = ["ACTIONS", "add_collections_command"]

Action = Callable[["Collections", argparse.Namespace], Awaitable[int]]


def add_collections_command(sub: Any, finish: Callable[..., None]) -> None:
    """Add ``collections`` to the subcommands ``sub``; ``finish`` adds ``--json`` and the settings flags."""
    cols = sub.add_parser(
        "collections",
        help="list, show, delete, vacuum, train cells, export or import collections (no model needed)",
        description="The collection routes of the API on the data directory and backend the settings name (no "
        "model needed): list, show, delete (asks first; --yes skips), vacuum, train-cells (the pooled_ivf first "
        "stage's cells), export to one file, import from one (also to migrate between backends). Collections are "
        "created by `index` or POST /v1/collections.",
    )
    cols_sub = cols.add_subparsers(dest="action", required=True)
    finish(cols_sub.add_parser("list", help="every collection with its counts"))
    p = cols_sub.add_parser("show", help="one collection")
    p.add_argument("name")
    finish(p)
    p = cols_sub.add_parser("delete", help="delete a collection and everything in it (asks first; --yes skips)")
    p.add_argument("name")
    p.add_argument("--yes", action="store_true", help="do not ask (needed when stdin is not a terminal)")
    finish(p)
    p = cols_sub.add_parser("vacuum", help="reclaim the disk space of deleted and replaced documents")
    p.add_argument("name")
    p.add_argument(
        "--recode",
        metavar="CODEC",
        help="rebuild the collection with this multi-vector codec (float32, float16, int8, binary, residual2, "
        "residual1, residualpq2, residualpq1), keeping every document",
    )
    finish(p)
    p = cols_sub.add_parser(
        "train-cells", help="give an embedded collection the cells of the pooled_ivf first stage (once; resumable)"
    )
    p.add_argument("name")
    p.add_argument("--cells", type=int, default=None, metavar="K", help="cells to train (default: about √(8 × pages))")
    finish(p)
    p = cols_sub.add_parser("export", help="write a collection to one file (vectors, texts, images, metadata)")
    p.add_argument("name")
    p.add_argument("file", type=Path, help="the export file (.tar; .tar.gz to compress)")
    finish(p)
    p = cols_sub.add_parser(
        "import", help="make a collection from an export file (to migrate, import with the other backend's flags)"
    )
    p.add_argument("file", type=Path)
    p.add_argument("--name", help="the new collection's name (default: the exported one)")
    finish(p)


async def _list(c: Collections, args: argparse.Namespace) -> int:
    listing = await c.list_collections()
    for item in listing.data:
        show(args, item, collection_line(item))
    if not listing.data and not args.json:
        print(f"no collections in {c.catalog().data_dir}", file=sys.stderr)
    return 0


async def _show(c: Collections, args: argparse.Namespace) -> int:
    item = await c.get(args.name)
    show(args, item, collection_line(item))
    return 0


async def _delete(c: Collections, args: argparse.Namespace) -> int:
    item = await c.get(args.name)  # 404 before asking
    holds = f"{counted(item.documents, 'document')} ({counted(item.pages, 'page')})"
    question = f"delete collection {item.name!r} with its {holds}?"
    if not await asyncio.to_thread(confirm, question, yes=args.yes):
        return 1
    deleted = await c.delete(args.name)
    show(args, deleted, f"deleted collection {deleted.id}")
    return 0


async def _vacuum(c: Collections, args: argparse.Namespace) -> int:
    done = await c.vacuum(args.name, codec=args.recode)
    if done.bytes_before is None or done.bytes_after is None:
        text = f"{done.collection}: {done.note}"
    else:
        text = (
            f"{done.collection}: {size(done.bytes_before)} -> {size(done.bytes_after)} on disk "
            f"({size(done.bytes_reclaimed)} reclaimed; {done.note})"
        )
    show(args, done, text)
    return 0


async def _train_cells(c: Collections, args: argparse.Namespace) -> int:
    done = await c.train_cells(args.name, cells=args.cells)
    show(args, done, f"{done.collection}: {done.cells} cells, {counted(done.units_filed, 'unit')} filed now")
    return 0


async def _export(c: Collections, args: argparse.Namespace) -> int:
    try:
        done = await c.export_collection(args.name, args.file)
    except OSError as exc:
        return fail(f"cannot write {args.file}: {exc}", 1)
    held = f"{counted(done.documents, 'document')}, {counted(done.units, 'unit')}"
    text = f"exported {done.collection}: {held} to {args.file} "
    text += f"({size(args.file.stat().st_size)})"
    print(json.dumps(_summary(done, args.file)) if args.json else text)
    return 0


async def _import(c: Collections, args: argparse.Namespace) -> int:
    import tarfile

    try:
        done = await c.import_collection(args.file, name=args.name)
    except (OSError, tarfile.TarError, EOFError) as exc:
        return fail(f"cannot read {args.file} as a collection export: {exc}", 1)
    held = f"{counted(done.documents, 'document')}, {counted(done.units, 'unit')}"
    text = (
        f"imported {done.collection}: {held} from {args.file} "
        f"(exported from the {done.source_backend} backend; now on {c.catalog().backend.kind})"
    )
    print(json.dumps(_summary(done, args.file)) if args.json else text)
    return 0


def _summary(done: Any, file: Path) -> dict[str, Any]:
    return {
        "collection": done.collection,
        "documents": done.documents,
        "units": done.units,
        "file": str(file),
        "source_backend": done.source_backend,
    }


ACTIONS: dict[str, Action] = {
    "list": _list,
    "show": _show,
    "delete": _delete,
    "vacuum": _vacuum,
    "train-cells": _train_cells,
    "export": _export,
    "import": _import,
}
