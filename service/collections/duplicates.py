"""Duplicate uploads: the same bytes stored twice under different ids (``JEV4_DUPLICATE_POLICY``).

Every uploaded document is stored with a *content hash*: ``sha256:<hex of the uploaded bytes>``, followed by
``:pages=<ranges>`` when the upload selected pages (the same file with another page selection is another
document). Both backends look it up through an index (embedded: ``documents_by_hash``; Qdrant: a keyword
payload index on the ``__docs`` records), so the check costs one indexed read per upload.

An upload without an explicit ``document_id`` (its id comes from the file name, or is random) whose hash is
already stored is, by policy:

* ``return_existing`` (default): answered with the stored document (HTTP 200 instead of 201, header
  ``X-Duplicate-Of: <id>``; the CLI's ``index`` skips the file and says which document holds it). Nothing is
  embedded. This makes uploads idempotent: a retried upload, or the same file under another name, costs nothing
  and adds no duplicate hits to searches — what a user of a document store expects (the trap of issue 13:
  "uploading the same file twice makes two documents").
* ``refuse``: HTTP 409 ``duplicate_document`` naming the stored document and this setting (the CLI reports the
  file as failed).
* ``allow``: stored again, as a vector database would (Qdrant stores whatever points it is given).

An explicit ``document_id`` is always honoured (like a Qdrant point id: the caller says which document this is),
and a replace is never a duplicate.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.errors import DuplicateDocumentError
from service.settings import env_name

if TYPE_CHECKING:
    from colbert.store import DocumentInfo, Store
    from service.collections.indexing import DocumentSource, Indexer

__all__ = ["UploadPlan", "content_hash", "page_ranges", "plan_upload"]


@dataclass(frozen=True, slots=True)
class UploadPlan:
    pages: list[int]  # the page numbers to index
    content_hash: str  # to store with the document
    existing: DocumentInfo | None  # return_existing: the stored document holding these bytes (index nothing)


def page_ranges(numbers: list[int]) -> str:
    """Sorted page numbers as ranges.

    >>> page_ranges([1, 2, 3, 7, 9, 10])
    '1-3,7,9-10'
    """
    runs: list[list[int]] = []
    for n in sorted(set(numbers)):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def content_hash(source: DocumentSource, pages: list[int]) -> str:
    """The content hash stored with a document made of ``pages`` of ``source`` (module doc).

    >>> from service.collections.indexing import DocumentSource
    >>> content_hash(DocumentSource(b"abc", "image"), [1])[:20]
    'sha256:ba7816bf8f01c'
    >>> content_hash(DocumentSource(b"abc", "pdf", "3,1-2"), [1, 2, 3]).endswith(":pages=1-3")
    True
    """
    digest = "sha256:" + hashlib.sha256(source.data).hexdigest()
    return digest if source.pages is None else f"{digest}:pages={page_ranges(pages)}"


async def plan_upload(
    indexer: Indexer,
    store: Store,
    collection: str,
    document_id: str,
    source: DocumentSource,
    *,
    replace: bool,
    explicit_id: bool,
    policy: str,
    background: bool,
) -> UploadPlan:
    """The pages to index and the content hash, after the checks that need no model, in this order: the pages
    (PDF opens, selection and count valid), duplicates (policy), then the id is free unless ``replace``.

    Raises the 4xx errors (``DuplicateDocumentError`` under ``refuse``, ``DocumentExistsError`` for a taken id)."""
    numbers = await indexer.model.start(functools.partial(indexer.select_pages, source, background=background))
    key = content_hash(source, numbers)
    existing = None
    if not replace and not explicit_id and policy != "allow":
        existing = await asyncio.to_thread(store.find_by_hash, key)
        if existing is not None and policy == "refuse":
            raise DuplicateDocumentError(
                f"the same content is already stored as document {existing.doc_id!r} in collection "
                f"{collection!r}; use that document, send replace=true with its id, or set "
                f"{env_name('duplicate_policy')}=allow to store copies",
                existing_id=existing.doc_id,
            )
    if existing is None:
        await asyncio.to_thread(indexer.repository.check_free, store, collection, document_id, replace=replace)
    return UploadPlan(numbers, key, existing)
