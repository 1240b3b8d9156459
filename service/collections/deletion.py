"""Delete by filter: ``POST /v1/collections/{name}/delete`` and the CLI's ``documents delete --filter``.

Shaped like Qdrant's ``POST /collections/{name}/points/delete`` (``{"filter": ...}``) and Chroma's
``delete(where=...)``, with the filter language of search (``colbert.filters``). The route sits beside
``/search`` rather than at ``/documents/delete``: a static segment there would shadow the document whose id is
``delete`` (Litestar answers 405 for its GET, PATCH and DELETE).

Guards, because a typo in a clean-up script must not empty a collection:

* a filter with no condition is refused (422 ``invalid_filter``: it would match every document);
* a filter on a key that no document of the collection holds is refused (422 ``invalid_filter``,
  ``colbert.errors.UnknownFilterKeyError``): ``{"typo": {"$ne": 1}}`` and ``{"typo": {"$exists": false}}``
  would otherwise match, and delete, every document (MongoDB's reading of an absent key);
* ``dry_run: true`` deletes nothing and answers the ids that would go, so a caller can look first.

The deletion itself is one transaction in the store (``Store.delete_documents``): all or nothing.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

from msgspec import Meta, Struct

from service.errors import UnprocessableError
from service.settings import env_name

if TYPE_CHECKING:
    from colbert.store import Store

__all__ = ["DeleteByFilterRequest", "DeletionObject", "check_filter_size", "delete_by_filter"]

_FILTER = (
    "Conditions on top-level document metadata, ANDed, as in search: "
    '{"lang": "en", "year": {"$lt": 2020}, "tag": {"$in": ["a", "b"]}}. At least one; each key must be held by '
    "some document of the collection (else 422 invalid_filter: an absent key would match every document)."
)


class DeleteByFilterRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    """JSON body of ``POST /v1/collections/{name}/delete``."""

    filter: Annotated[dict[str, Any], Meta(min_length=1, description=_FILTER)]
    dry_run: Annotated[bool, Meta(description="Delete nothing; answer the ids that would be deleted")] = False


class DeletionObject(Struct, kw_only=True):
    """The documents a delete by filter removed (or, ``dry_run``, would remove)."""

    collection: str
    ids: Annotated[list[str], Meta(description="The ids of the documents matched, sorted")]
    count: int
    dry_run: bool
    object: str = "documents.deletion"


def check_filter_size(filter: dict[str, Any] | None, max_keys: int) -> None:
    """A search's or a delete's filter has at most ``max_keys`` keys (JEV4_MAX_FILTER_KEYS): checked before the
    store reads anything (422 ``invalid_filter``)."""
    if filter is not None and len(filter) > max_keys:
        raise UnprocessableError(
            f"filter has {len(filter)} keys, more than the limit of {max_keys} ({env_name('max_filter_keys')})",
            code="invalid_filter",
        )


async def delete_by_filter(store: Store, name: str, data: DeleteByFilterRequest, max_keys: int) -> DeletionObject:
    """Delete (or, ``dry_run``, list) the documents of ``store`` whose metadata passes ``data.filter``."""
    check_filter_size(data.filter, max_keys)
    ids = await asyncio.to_thread(store.delete_documents, data.filter, dry_run=data.dry_run)
    return DeletionObject(collection=name, ids=ids, count=len(ids), dry_run=data.dry_run)
