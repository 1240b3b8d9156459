"""The one owner of collections and their documents, for the HTTP routes and the CLI alike.

Everything of a document — its metadata, every unit's vectors, text and page image, and its original file when
kept (``JEV4_KEEP_ORIGINALS``) — lives in the index backend (:mod:`colbert.store`), written by one
``add_document`` (one SQLite transaction, or one committed Qdrant version). So the repository's story is short:

* :meth:`Repository.stage` opens a :class:`StagedDocument`: units are added as they are embedded (held in
  memory, nothing is visible), then :meth:`StagedDocument.commit` stores the whole document at once (replacing
  an older one when asked) or :meth:`StagedDocument.discard` drops it. A crash before the commit leaves
  nothing behind; after it, the whole document.
* :func:`write_document` is the one way a document reaches the store: stage, let the caller fill the staged
  document (embedding as it goes), commit — or discard on any error or cancellation. Page and text documents,
  from the HTTP routes, jobs and the CLI, all come through it; :func:`check_free` is the one "id taken" check.
* Replace and delete are single backend operations; page images and unit text go with them.

Blocking: every method does I/O; async callers run them in a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from colbert.errors import CollectionNotFoundError, DocumentExistsError

if TYPE_CHECKING:
    from colbert.catalog import Catalog, CollectionInfo
    from colbert.store import CollectionConfig, DocumentInfo, OriginalFile, Store, UnitRecord

__all__ = ["Repository", "StagedDocument", "check_free", "write_document"]

T = TypeVar("T")


class StagedDocument:
    """A document being written: units accumulate here and reach the store together in :meth:`commit`."""

    def __init__(
        self,
        store: Store,
        document_id: str,
        metadata: Mapping[str, Any] | None,
        *,
        replace: bool,
        content_hash: str | None,
        original: OriginalFile | None = None,
    ) -> None:
        self.store = store
        self.original = original
        self.document_id = document_id
        self.metadata = metadata
        self.replace = replace
        self.content_hash = content_hash
        self.units: list[UnitRecord] = []

    def add(self, units: list[UnitRecord]) -> None:
        self.units.extend(units)

    def commit(self) -> DocumentInfo:
        """Store every staged unit as one document (all or nothing); ``DocumentExistsError`` unless replacing."""
        return self.store.add_document(
            self.document_id,
            self.units,
            self.metadata,
            replace=self.replace,
            content_hash=self.content_hash,
            original=self.original,
        )

    def discard(self) -> None:
        self.units.clear()


def check_free(store: Store, collection: str, document_id: str, *, replace: bool) -> None:
    """``DocumentExistsError`` (409) when the id is taken and ``replace`` is off; cheap, before any work."""
    if not replace and store.get_document(document_id) is not None:
        raise DocumentExistsError(
            f"document {document_id!r} already exists in collection {collection!r} (send replace=true)"
        )


async def write_document(
    staged: StagedDocument, fill: Callable[[StagedDocument], Awaitable[T]]
) -> tuple[DocumentInfo, T]:
    """``fill`` the staged document (it adds the units as they are embedded), then store it whole; on any error
    or cancellation nothing is stored. Returns the stored document and what ``fill`` returned."""
    try:
        filled = await fill(staged)
        info = await asyncio.to_thread(staged.commit)
    except BaseException:
        staged.discard()
        raise
    return info, filled


class Repository:
    """Collections and documents over one :class:`~colbert.catalog.Catalog` (see the module doc)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    # ---- collections -----------------------------------------------------------------------------------
    def create(self, name: str, config: CollectionConfig) -> Store:
        return self.catalog.create(name, config)

    def open(self, name: str) -> Store:
        return self.catalog.get(name)

    def open_or_create(self, name: str, config: CollectionConfig) -> tuple[Store, bool]:
        """The collection, created with ``config`` when missing; (store, created)."""
        try:
            return self.open(name), False
        except CollectionNotFoundError:
            return self.create(name, config), True

    def collections(self) -> list[CollectionInfo]:
        return self.catalog.list()

    def delete(self, name: str) -> bool:
        return self.catalog.delete(name)

    def disk_bytes(self, name: str) -> int | None:
        """The collection's bytes on disk, None when unknown (Qdrant) or when it vanished meanwhile."""
        try:
            return self.catalog.disk_bytes(name)
        except CollectionNotFoundError:
            return None

    # ---- documents -------------------------------------------------------------------------------------
    def stage(
        self,
        store: Store,
        document_id: str,
        metadata: Mapping[str, Any] | None = None,
        *,
        replace: bool = False,
        content_hash: str | None = None,
        original: OriginalFile | None = None,
    ) -> StagedDocument:
        return StagedDocument(
            store, document_id, metadata, replace=replace, content_hash=content_hash, original=original
        )

    def delete_document(self, store: Store, document_id: str) -> bool:
        """Remove the document with its vectors, text and page images; False if there was none."""
        return store.delete_document(document_id)

    def original(self, store: Store, document_id: str) -> OriginalFile | None:
        """The document's original file as uploaded (None: no such document, or none was kept)."""
        return store.get_original(document_id)

    def page_image(self, store: Store, document_id: str, page: int) -> bytes | None:
        """The PNG of one page as the model saw it (None: no such page, or it has no image)."""
        return store.get_image(document_id, page)
