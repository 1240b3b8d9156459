"""``python -m service collections | documents``: manage collections from the command line, like the API.

Each subcommand runs the same code as its HTTP route (:class:`service.collections.manager.Collections`) on the
same data directory (``--data-dir``, ``JEV4_DATA_DIR``) and backend, without loading the model, and prints
human text (``--json``: one JSON object per line instead)::

    python -m service collections list                       # GET    /v1/collections
    python -m service collections show NAME                  # GET    /v1/collections/{name}
    python -m service collections delete NAME                # DELETE /v1/collections/{name}
    python -m service collections vacuum NAME                # POST   /v1/collections/{name}/vacuum
    python -m service collections export NAME FILE           # one file: vectors, texts, images, metadata
    python -m service collections import FILE [--name NEW]   # into this --collection-backend (migration)
    python -m service documents list --collection NAME       # GET    /v1/collections/{name}/documents
    python -m service documents show ID --collection NAME    # GET    /v1/collections/{name}/documents/{id}
    python -m service documents delete ID --collection NAME  # DELETE /v1/collections/{name}/documents/{id}
    python -m service documents get-file ID --collection NAME -o PATH
                                                             # GET    /v1/collections/{name}/documents/{id}/file
    python -m service jobs list --collection NAME            # GET    /v1/collections/{name}/jobs

Indexing jobs are listed by a running server (it merges its own, live ones with those every process recorded in
the job store), so ``jobs`` asks that server over HTTP
(``--url``, default ``http://JEV4_HOST:JEV4_PORT``; the first of ``JEV4_API_KEYS`` as the Bearer key).

Errors print ``error: <the message the API would send>`` on stderr; exit status 0 on success, 1 when the
thing named does not exist or the request is refused, 2 when nothing could start.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from service.collections.manager import Collections
    from service.collections.schemas import CollectionObject, DocumentObject

__all__ = ["add_manage_commands", "manage_command"]

Action = Callable[["Collections", argparse.Namespace], Awaitable[int]]


def add_manage_commands(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``collections`` and ``documents`` to the subcommands ``sub``; ``common`` adds the settings flags."""
    cols = sub.add_parser("collections", help="list, show or delete collections (no model needed)")
    cols_sub = cols.add_subparsers(dest="action", required=True)
    for action, helptext in (("list", "every collection with its counts"), ("show", "one collection")):
        p = cols_sub.add_parser(action, help=helptext)
        if action == "show":
            p.add_argument("name")
        _finish(p, common)
    p = cols_sub.add_parser("delete", help="delete a collection and everything in it")
    p.add_argument("name")
    _finish(p, common)
    p = cols_sub.add_parser("vacuum", help="reclaim the disk space of deleted and replaced documents")
    p.add_argument("name")
    _finish(p, common)
    p = cols_sub.add_parser("export", help="write a collection to one file (vectors, texts, images, metadata)")
    p.add_argument("name")
    p.add_argument("file", type=Path, help="the export file (.tar; .tar.gz to compress)")
    _finish(p, common)
    p = cols_sub.add_parser(
        "import", help="make a collection from an export file (to migrate, import with the other backend's flags)"
    )
    p.add_argument("file", type=Path)
    p.add_argument("--name", help="the new collection's name (default: the exported one)")
    _finish(p, common)

    docs = sub.add_parser("documents", help="list, show or delete the documents of a collection")
    docs_sub = docs.add_subparsers(dest="action", required=True)
    p = docs_sub.add_parser("list", help="documents with their pages and metadata")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--limit", type=int, default=100)
    _finish(p, common, collection=True)
    for action, helptext in (("show", "one document"), ("delete", "delete one document")):
        p = docs_sub.add_parser(action, help=helptext)
        p.add_argument("document_id")
        _finish(p, common, collection=True)
    p = docs_sub.add_parser(
        "get-file", help="write a document's original file (kept when JEV4_KEEP_ORIGINALS was on at upload)"
    )
    p.add_argument("document_id")
    p.add_argument("-o", "--output", required=True, help="where to write it ('-': standard output)")
    _finish(p, common, collection=True)


def add_jobs_command(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``jobs list`` (asks a running server, see the module doc)."""
    jobs = sub.add_parser("jobs", help="indexing jobs of a running server (they live in its memory)")
    jobs_sub = jobs.add_subparsers(dest="action", required=True)
    p = jobs_sub.add_parser("list", help="the collection's jobs, newest first")
    p.add_argument("--status", choices=["queued", "running", "succeeded", "failed"])
    p.add_argument("--url", help="the server (default http://HOST:PORT from the settings)")
    _finish(p, common, collection=True)


def _finish(parser: argparse.ArgumentParser, common: Callable[[argparse.ArgumentParser], None], **opts: bool) -> None:
    if opts.get("collection"):
        parser.add_argument("--collection", required=True, help="collection name")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    common(parser)


def manage_command(args: argparse.Namespace) -> int:
    """Run ``collections ...`` / ``documents ...`` (see the module doc)."""
    from service.__main__ import settings_from_args
    from service.settings import SettingsError

    try:
        settings = settings_from_args(args)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "jobs":
        return _jobs(settings, args)
    action = _ACTIONS[(args.command, args.action)]
    return asyncio.run(_run(settings, args, action))


def _jobs(settings: Any, args: argparse.Namespace) -> int:
    import httpx

    url = (args.url or f"http://{settings.host}:{settings.port}").rstrip("/")
    headers = {"Authorization": f"Bearer {settings.api_keys[0]}"} if settings.api_keys else {}
    params = {"status": args.status} if args.status else {}
    try:
        response = httpx.get(f"{url}/v1/collections/{args.collection}/jobs", params=params, headers=headers)
    except httpx.TransportError as exc:
        print(f"error: no server answers at {url} ({exc}); jobs live in a running server's memory", file=sys.stderr)
        return 2
    if response.status_code != 200:
        print(f"error: {response.json().get('error', {}).get('message', response.text)}", file=sys.stderr)
        return 1
    for job in response.json()["data"]:
        total = "?" if job["pages_total"] is None else job["pages_total"]
        text = f"{job['id']}  {job['status']}  {job['document_id']}  {job['pages_done']}/{total} pages  "
        text += f"created {_when(job['created_at'])}"
        if job.get("error"):
            text += f"\n    {job['error']['code']}: {job['error']['message']}"
        print(json.dumps(job, ensure_ascii=False) if args.json else text)
    return 0


async def _run(settings: Any, args: argparse.Namespace, action: Action) -> int:
    from service.collections.manager import Collections
    from service.engine.runtime import Runtime, open_catalog
    from service.errors import error_info
    from service.metrics import Metrics

    catalog = await asyncio.to_thread(open_catalog, settings)
    runtime = Runtime(settings, Metrics(), catalog=catalog)
    try:
        return await action(Collections(runtime), args)
    except Exception as exc:  # the outermost layer of the CLI: the API's message, never a traceback
        info = error_info(exc)
        if info is None:
            raise
        print(f"error: {info.message}", file=sys.stderr)
        return 1
    finally:
        runtime.pool.shutdown(wait=False)
        await asyncio.to_thread(catalog.close)


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _show(args: argparse.Namespace, obj: msgspec.Struct, text: str) -> None:
    """``obj`` as one JSON line with ``--json``, else ``text``."""
    print(msgspec.json.encode(obj).decode() if args.json else text)


def _size(n: int | None) -> str:
    """Bytes for people.

    >>> _size(None), _size(999), _size(123_456_789)
    ('size on disk not known here', '999 B', '117.7 MiB')
    """
    if n is None:
        return "size on disk not known here"
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def _collection_line(c: CollectionObject) -> str:
    on_disk = "" if c.disk_bytes is None else f", {_size(c.disk_bytes)} on disk"
    return (
        f"{c.name}  {c.documents} documents, {c.pages} pages{on_disk}  "
        f"(dimensions {c.dimensions}, codec {c.codec}, pool factor {c.pool_factor})"
    )


def _document_lines(d: DocumentObject) -> list[str]:
    meta = json.dumps(d.metadata, ensure_ascii=False, sort_keys=True) if d.metadata else "no metadata"
    lines = [f"{d.id}  {d.pages} page{'s' if d.pages != 1 else ''}  added {_when(d.created_at)}", f"    {meta}"]
    if d.file is not None:
        name = "" if d.file.name is None else f" {json.dumps(d.file.name, ensure_ascii=False)}"
        lines.append(f"    original file{name}: {d.file.media_type}, {_size(d.file.bytes)}")
    return lines


async def _collections_list(c: Collections, args: argparse.Namespace) -> int:
    listing = await c.list_collections()
    for item in listing.data:
        _show(args, item, _collection_line(item))
    if not listing.data and not args.json:
        print(f"no collections in {c.runtime.settings.data_dir}", file=sys.stderr)
    return 0


async def _collections_show(c: Collections, args: argparse.Namespace) -> int:
    item = await c.get(args.name)
    _show(args, item, _collection_line(item))
    return 0


async def _collections_delete(c: Collections, args: argparse.Namespace) -> int:
    deleted = await c.delete(args.name)
    _show(args, deleted, f"deleted collection {deleted.id}")
    return 0


async def _collections_vacuum(c: Collections, args: argparse.Namespace) -> int:
    done = await c.vacuum(args.name)
    if done.bytes_before is None or done.bytes_after is None:
        text = f"{done.collection}: {done.note}"
    else:
        text = (
            f"{done.collection}: {_size(done.bytes_before)} -> {_size(done.bytes_after)} on disk "
            f"({_size(done.bytes_reclaimed)} reclaimed; {done.note})"
        )
    _show(args, done, text)
    return 0


async def _collections_export(c: Collections, args: argparse.Namespace) -> int:
    from colbert.transfer import export_collection

    try:
        done = await asyncio.to_thread(export_collection, c.catalog(), args.name, args.file)
    except OSError as exc:
        print(f"error: cannot write {args.file}: {exc}", file=sys.stderr)
        return 1
    size = _size(args.file.stat().st_size)
    text = f"exported {done.collection}: {done.documents} documents, {done.units} units to {args.file} ({size})"
    print(json.dumps(_summary(done, args.file)) if args.json else text)
    return 0


async def _collections_import(c: Collections, args: argparse.Namespace) -> int:
    import tarfile

    from colbert.transfer import import_collection

    try:
        done = await asyncio.to_thread(import_collection, c.catalog(), args.file, name=args.name)
    except (OSError, tarfile.TarError, EOFError) as exc:
        print(f"error: cannot read {args.file} as a collection export: {exc}", file=sys.stderr)
        return 1
    text = (
        f"imported {done.collection}: {done.documents} documents, {done.units} units from {args.file} "
        f"(exported from the {done.source_backend} backend; now on {c.runtime.settings.collection_backend})"
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


async def _documents_list(c: Collections, args: argparse.Namespace) -> int:
    listing = await c.list_documents(args.collection, offset=args.offset, limit=args.limit)
    for doc in listing.data:
        _show(args, doc, "\n".join(_document_lines(doc)))
    if not args.json:
        shown = f"{args.offset + 1}-{args.offset + len(listing.data)}" if listing.data else "none"
        print(f"{shown} of {listing.total} documents in {args.collection}", file=sys.stderr)
    return 0


async def _documents_show(c: Collections, args: argparse.Namespace) -> int:
    doc = await c.get_document(args.collection, args.document_id)
    _show(args, doc, "\n".join(_document_lines(doc)))
    return 0


async def _documents_delete(c: Collections, args: argparse.Namespace) -> int:
    deleted = await c.delete_document(args.collection, args.document_id)
    _show(args, deleted, f"deleted document {deleted.id} from {args.collection}")
    return 0


async def _documents_get_file(c: Collections, args: argparse.Namespace) -> int:
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
        print(f"error: cannot write {target}: {exc}", file=sys.stderr)
        return 1
    name = "" if original.name is None else f" ({json.dumps(original.name, ensure_ascii=False)})"
    text = f"wrote {target}: {_size(len(original.data))}, {original.media_type}{name}"
    summary = {"document_id": args.document_id, "file": str(target), "bytes": len(original.data)}
    summary |= {"media_type": original.media_type, "name": original.name}
    print(json.dumps(summary, ensure_ascii=False) if args.json else text)
    return 0


_ACTIONS: dict[tuple[str, str], Action] = {
    ("collections", "list"): _collections_list,
    ("collections", "show"): _collections_show,
    ("collections", "delete"): _collections_delete,
    ("collections", "vacuum"): _collections_vacuum,
    ("collections", "export"): _collections_export,
    ("collections", "import"): _collections_import,
    ("documents", "list"): _documents_list,
    ("documents", "show"): _documents_show,
    ("documents", "delete"): _documents_delete,
    ("documents", "get-file"): _documents_get_file,
}
