"""The one way a document reaches the store: staged, filled as its units are embedded, committed whole.

Everything of a document — its metadata, every unit's vectors, text and page image, and its original file when
kept (``JEV4_KEEP_ORIGINALS``) — lives in the index backend (:mod:`colbert.store`), written by one
``add_document`` (one SQLite transaction, or one committed Qdrant version):

* a :class:`StagedDocument` collects units as they are embedded (held in memory, nothing is visible), then
  :meth:`StagedDocument.commit` stores the whole document at once (replacing an older one when asked) or
  :meth:`StagedDocument.discard` drops it. A crash before the commit leaves nothing behind; after it, the whole
  document. ``commit`` is the one call of ``Store.add_document`` below the front ends.
* :func:`write_document`: stage, let the caller fill the staged document (embedding as it goes), commit — or
  discard on any error or cancellation. Page and text documents, from the HTTP routes, jobs, the CLI and the MCP
  server, all come through it; :func:`check_free` is the one "id taken" check.

Blocking: ``commit`` and ``check_free`` do I/O; async callers run them in a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from colbert.errors import DocumentExistsError

if TYPE_CHECKING:
    from colbert.store import DocumentInfo, OriginalFile, Store, UnitRecord

__all__ = ["StagedDocument", "check_free", "write_document"]

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
        self.warnings: tuple[str, ...] = ()  # set by the filler once every unit is in (:mod:`.notices`)

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
            warnings=self.warnings,
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
