"""What the ``search``, ``index`` and ``documents`` commands call: :class:`Door`, the part of
:class:`~service.collections.manager.Collections` they use, with its argument and result types (the HTTP API's
schemas).

Two objects have it: ``Collections`` itself (the command works on the data directory, loading the model when it
needs one; :func:`service.cli.session.open_collections`) and :class:`service.cli.remote.RemoteCollections` (the
same calls as requests to a running server, ``--url`` / ``JEV4_URL``). Because both answer with the same
schemas, a command prints the same lines and exits with the same status either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from colbert.store import OriginalFile
    from service.collections.deletion import DeleteByFilterRequest, DeletionObject
    from service.collections.schemas import (
        CollectionObject,
        CreateCollectionRequest,
        DeletedObject,
        DocumentList,
        DocumentObject,
        JobObject,
    )
    from service.collections.search_schemas import SearchRequest, SearchResponse
    from service.collections.uploads import DocumentUpload

__all__ = ["Door"]


class Door(Protocol):
    async def get(self, name: str) -> CollectionObject: ...

    async def create(self, data: CreateCollectionRequest) -> CollectionObject: ...

    async def add_document(
        self, name: str, upload: DocumentUpload, *, wait: bool
    ) -> tuple[DocumentObject | JobObject, bool]: ...

    async def job(self, name: str, job_id: str) -> JobObject: ...

    async def list_documents(self, name: str, *, offset: int, limit: int) -> DocumentList: ...

    async def get_document(self, name: str, document_id: str) -> DocumentObject: ...

    async def original(self, name: str, document_id: str) -> tuple[str, OriginalFile | None]: ...

    async def delete_document(self, name: str, document_id: str) -> DeletedObject: ...

    async def delete_by_filter(self, name: str, data: DeleteByFilterRequest) -> DeletionObject: ...

    async def search(self, name: str, data: SearchRequest) -> SearchResponse: ...
