"""``index`` of PDFs and images: each file is one upload job (``POST .../documents?wait=false``'s path), polled
for its page progress; see :mod:`service.cli.index` for the rules."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from typing import TYPE_CHECKING

from service.cli.files import DocumentFile, collect_documents
from service.cli.progress import Bar, IndexRun
from service.errors import ErrorInfo, error_info
from service.settings import env_name

if TYPE_CHECKING:
    from service.cli.door import Door
    from service.collections.uploads import DocumentUpload
    from service.limits import InputLimits
    from service.settings import Settings

__all__ = ["index_pages"]

# the job is asked again after _POLL_S, doubling up to _MAX_POLL_S while its page count stands still (with --url
# each poll is an HTTP request: a long page does not cost twenty requests a second)
_POLL_S, _MAX_POLL_S = 0.05, 0.5


async def index_pages(c: Door, args: argparse.Namespace, settings: Settings, limits: InputLimits, run: IndexRun) -> int:
    """Index every file under ``args.paths`` a page collection takes (the others counted by reason); 1 when
    some failed or were refused."""
    from service.collections.page_walk import PageWalkReport

    report = PageWalkReport()
    files = collect_documents(args.paths, report, max_bytes=limits.max_pdf_bytes)
    run.total = len(files)
    bar = Bar(disable=args.no_progress, unit="page")
    failed = present = 0
    try:
        for file in files:
            run.current = file.source
            bar.label(file.source)
            line = await _index_one(c, args, settings, file, bar)
            if line is not None:
                failed += line.startswith(("failed", "refused"))
                present += line.startswith("skipped")
                bar.note(line)
            run.done, run.current = run.done + 1, None
    finally:
        bar.close()
    indexed = len(files) - failed - present
    summary = report.summary(indexed, present=present, failed=failed)
    print(f"{summary} (collection {args.collection!r})", file=sys.stderr)
    return 1 if failed else 0


def _upload(settings: Settings, args: argparse.Namespace, file: DocumentFile) -> DocumentUpload:
    """The file as the upload route reads a multipart file of that name (:func:`file_source`)."""
    from service.collections.indexing import DocumentSource
    from service.collections.texts import TextSource
    from service.collections.upload_files import file_source
    from service.collections.uploads import DocumentUpload

    data = file.path.read_bytes()
    source = file_source(data, settings, what=file.source, path=file.path.name, pages=args.pages)
    kind = "text" if isinstance(source, TextSource) else source.kind  # text: laid out into pages by the write path
    if isinstance(source, DocumentSource) and kind == "image":  # --pages selects in documents; an image is one page
        source = dataclasses.replace(source, pages=None)
    metadata = {"source": file.source, "kind": kind, **(args.metadata or {})}
    return DocumentUpload(source, metadata, file.document_id, args.replace, file.path.name, id_from_path=True)


async def _index_one(c: Door, args: argparse.Namespace, settings: Settings, file: DocumentFile, bar: Bar) -> str | None:
    """Index one file; the line to print about it (None: indexed)."""
    from service.collections.schemas import DocumentObject

    try:
        answer, existing = await c.add_document(args.collection, _upload(settings, args, file), wait=False)
    except OSError as exc:
        return f"failed {file.source}: cannot read it: {exc}"
    except Exception as exc:  # an upload refused before its job started: the route's error, one line
        info = error_info(exc)
        if info is None:
            raise
        return _refused(file, info)
    if isinstance(answer, DocumentObject):  # the duplicate policy returned a stored document
        return _skipped_duplicate(file, answer.id) if existing else None
    error = await _follow(c, args.collection, answer.id, bar)
    return None if error is None else _refused(file, error)


async def _follow(c: Door, collection: str, job_id: str, bar: Bar) -> ErrorInfo | None:
    """Wait for the job, advancing the bar by its pages; its error (None: succeeded)."""
    total_seen = done_seen = 0
    delay = _POLL_S
    while True:
        job = await c.job(collection, job_id)
        delay = _POLL_S if job.pages_done != done_seen else min(2 * delay, _MAX_POLL_S)
        if job.pages_total is not None and not total_seen:
            total_seen = job.pages_total
            bar.grow(total_seen)
        bar.advance(job.pages_done - done_seen)
        done_seen = job.pages_done
        if job.status == "succeeded":
            return None
        if job.status == "failed":  # its error body (code, message, type) as the HTTP API answers it
            error = job.error or {}
            code, message = error.get("code", "job_failed"), error.get("message", "the indexing job failed")
            return ErrorInfo(500, error.get("type", "server_error"), code, message)  # status: not kept, not printed
        await asyncio.sleep(delay)


def _refused(file: DocumentFile, info: ErrorInfo) -> str:
    if info.code == "document_exists":
        return f"skipped {file.source}: document {file.document_id!r} exists (use --replace)"
    verb = "refused" if info.code == "duplicate_document" else "failed"
    return f"{verb} {file.source}: {info.message}"


def _skipped_duplicate(file: DocumentFile, existing: str) -> str:
    """The line for a file whose content is stored already (``JEV4_DUPLICATE_POLICY=return_existing``)."""
    if existing == file.document_id:
        return f"skipped {file.source}: document {file.document_id!r} exists, same content (use --replace)"
    setting = env_name("duplicate_policy")
    return f"skipped {file.source}: the same content is document {existing!r} ({setting}=return_existing)"
