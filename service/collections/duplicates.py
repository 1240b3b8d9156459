"""Content hashes, and the one admission check of a new document: duplicates (``JEV4_DUPLICATE_POLICY``) and a
taken id (:func:`admit`, for page and text documents alike).

Every document is stored with a *content hash* starting ``sha256:``:

* a page document: ``sha256:<hex of the uploaded bytes>``, followed by ``:pages=<ranges>`` when the upload
  selected pages (the same file with another page selection is another document);
* a text/code document: ``sha256:<hex of the bytes, its language, the task and the chunking settings>``
  (:func:`text_content_hash`; what decides its chunks and vectors, so an unchanged file is skipped on re-indexing).
  Before this prefix was added, text hashes were stored as bare hex; :func:`same_content` compares both forms.

Text documents are not subject to the duplicate policy (their hash serves skip-unchanged re-indexing). Both
backends look a hash up through an index (embedded: ``documents_by_hash``; Qdrant: a keyword payload index on the
``__docs`` records), so the check costs one indexed read per upload.

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
import hashlib
from typing import TYPE_CHECKING

from colbert.errors import DocumentExistsError
from service.errors import DuplicateDocumentError
from service.settings import env_name

if TYPE_CHECKING:
    from colbert.store import DocumentInfo, Store
    from service.collections.indexing import DocumentSource

__all__ = [
    "admit",
    "check_free",
    "content_hash",
    "page_ranges",
    "same_content",
    "text_content_hash",
]


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
    digest = _PREFIX + hashlib.sha256(source.data).hexdigest()
    return digest if source.pages is None else f"{digest}:pages={page_ranges(pages)}"


_PREFIX = "sha256:"


def text_content_hash(data: bytes, language: str, task: str, fingerprint: str) -> str:
    """The content hash of a text/code document (module doc).

    >>> text_content_hash(b"x = 1", "python", "code.passage", "chunks:512")[:12]
    'sha256:1c867'
    """
    digest = hashlib.sha256(data)
    digest.update(f"\0{language}\0{task}\0{fingerprint}".encode())
    return _PREFIX + digest.hexdigest()


def same_content(stored: str | None, new: str) -> bool:
    """Whether a stored content hash names the same content as ``new``, reading a text document's hash stored
    before the ``sha256:`` prefix (bare hex) as the prefixed one.

    >>> same_content("ab12", "sha256:ab12"), same_content("sha256:ab12", "sha256:ab12"), same_content(None, "x")
    (True, True, False)
    """
    if stored is None:
        return False
    return stored == new or (not stored.startswith(_PREFIX) and _PREFIX + stored == new)


def check_free(store: Store, collection: str, document_id: str, *, replace: bool) -> None:
    """``DocumentExistsError`` (409) when the id is taken and ``replace`` is off; cheap, before any work
    (blocking: async callers run it in a thread)."""
    if not replace and store.get_document(document_id) is not None:
        raise DocumentExistsError(
            f"document {document_id!r} already exists in collection {collection!r} (send replace=true)"
        )


async def admit(
    store: Store,
    collection: str,
    document_id: str,
    key: str,
    *,
    replace: bool,
    explicit_id: bool,
    policy: str,
    skip_unchanged: bool = False,
) -> DocumentInfo | None:
    """The one check before a new document is embedded: under ``return_existing``, the stored document holding
    the same content (embed nothing); ``DuplicateDocumentError`` under ``refuse``; else ``DocumentExistsError``
    when ``document_id`` is taken and ``replace`` is off. An explicit id and a replace are never duplicates.

    ``skip_unchanged`` (a re-index run): the stored document ``document_id`` when it holds this content
    (:func:`same_content`), so nothing is embedded; the one skip-unchanged rule."""
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
        await asyncio.to_thread(check_free, store, collection, document_id, replace=replace)
    if existing is None and skip_unchanged:
        stored = await asyncio.to_thread(store.get_document, document_id)
        existing = stored if stored is not None and same_content(stored.content_hash, key) else None
    return existing
