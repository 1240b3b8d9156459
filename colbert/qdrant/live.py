"""What a reader of a Qdrant collection may see (:mod:`colbert.qdrant`): only the points of a document's committed
version, and — when another replica deleted or re-created the collection under this handle — a typed
:class:`~colbert.errors.CollectionNotFoundError` instead of the client's own error.

Noticing costs nothing on the way that works: a handle checks whether its collection is still the one it opened
only after a Qdrant request failed (one ``collection_exists`` + one ``get_collection``). The check compares the
``instance`` id written into the collection's metadata at creation, so a namesake created after a delete is not
mistaken for the old collection. A handle found gone is marked :attr:`stale`, and the catalog drops it on its next
``get`` (:meth:`colbert.catalog.Catalog.get`). A collection re-created with the same name between two requests
that both succeed is served by the old handle with the configuration it opened (same layout; a different
configuration makes the request fail, which is then noticed).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar

from qdrant_client import QdrantClient
from qdrant_client import models as qm

from colbert.errors import ColbertError, CollectionNotFoundError
from colbert.hybrid import Signal
from colbert.qdrant.layout import NAMESPACE
from colbert.store import DocumentInfo, FileInfo, Hit

if TYPE_CHECKING:
    from colbert.search import SearchOptions

__all__ = [
    "Handle",
    "doc_ids",
    "doc_point",
    "hits",
    "info",
    "instance_of",
    "keep",
    "live",
    "live_versions",
    "match",
    "noticing",
]

P = ParamSpec("P")
R = TypeVar("R")


class Handle(Protocol):
    client: QdrantClient
    name: str
    instance: str | None
    stale: bool


H = TypeVar("H", bound=Handle)


def instance_of(client: QdrantClient, name: str) -> str | None:
    """The creation id in the collection's metadata (None: created before ids were written)."""
    meta = client.get_collection(name).config.metadata or {}
    found = meta.get("instance")
    return None if found is None else str(found)


def noticing(method: Callable[Concatenate[H, P], R]) -> Callable[Concatenate[H, P], R]:
    """Wrap a store method: a Qdrant error raised while the collection is gone (or replaced) becomes
    ``CollectionNotFoundError`` and marks the handle stale; any other error is raised unchanged."""

    def wrapper(self: H, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except ColbertError:
            raise
        except Exception as exc:
            why = _gone(self)
            if why is None:
                raise
            self.stale = True
            raise CollectionNotFoundError(f"collection {self.name!r} {why} by another process or replica") from exc

    functools.update_wrapper(wrapper, method)
    return wrapper


def _gone(handle: Handle) -> str | None:
    """Why the handle's collection is no longer the one it opened (None: it still is, or that cannot be told)."""
    try:
        if not handle.client.collection_exists(handle.name):
            return "was deleted"
        if instance_of(handle.client, handle.name) != handle.instance:
            return "was deleted and re-created"
    except Exception:  # noqa: BLE001 - the server itself is unreachable: the original error says more
        return None
    return None


def doc_ids(client: QdrantClient, docs: str, flt: qm.Filter | None, limit: int | None = None) -> list[str]:
    """The ids of the documents whose ``__docs`` record passes ``flt`` (at most ``limit`` of them)."""
    out: list[str] = []
    offset: Any = None
    while limit is None or len(out) < limit:
        page = 256 if limit is None else min(256, limit - len(out))
        records, offset = client.scroll(docs, scroll_filter=flt, limit=page, offset=offset, with_payload=["doc_id"])
        out += [str((r.payload or {})["doc_id"]) for r in records]
        if offset is None:
            break
    return out


def doc_point(doc_id: str) -> str:
    """The id of a document's record in ``<name>__docs``."""
    return str(uuid.uuid5(NAMESPACE, doc_id))


def match(key: str, value: str | int | bool) -> qm.FieldCondition:
    return qm.FieldCondition(key=key, match=qm.MatchValue(value=value))


def info(rec: dict[str, Any]) -> DocumentInfo:
    units = int(rec["num_units"])
    f = rec.get("file")
    file = None if not f else FileInfo(str(f["media_type"]), int(f["size"]), f.get("name"), str(f["sha256"]))
    return DocumentInfo(
        rec["doc_id"],
        units,
        dict(rec["metadata"]),
        float(rec["created_at"]),
        rec.get("content_hash"),
        file,
        tuple(rec.get("warnings") or ()),
    )


def live_versions(client: QdrantClient, docs: str, doc_ids: set[str]) -> dict[str, tuple[str, dict[str, Any]]]:
    """doc id -> (committed version, metadata) for those of ``doc_ids`` that have a record in ``docs``."""
    if not doc_ids:
        return {}
    found = client.retrieve(docs, [doc_point(d) for d in doc_ids], with_payload=True)
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for rec in found:
        p = rec.payload or {}
        out[p["doc_id"]] = (p["version"], p["metadata"])
    return out


def keep(client: QdrantClient, docs: str, points: list[qm.ScoredPoint]) -> list[qm.ScoredPoint]:
    """The points whose document version is the committed one."""
    versions = live_versions(client, docs, {str((p.payload or {})["doc_id"]) for p in points})
    out = []
    for p in points:
        pay = p.payload or {}
        state = versions.get(pay["doc_id"])
        if state is not None and state[0] == pay["version"]:
            out.append(p)
    return out


def live(
    client: QdrantClient,
    docs: str,
    query: Callable[[int], list[qm.ScoredPoint]],
    k: int,
    pool: int | None = None,
) -> list[qm.ScoredPoint]:
    """The first k live points of ``query(limit)``; asks for more while points of a write in flight (or of a
    crashed one) were skipped."""
    want = k
    while True:
        points = query(want)
        kept = keep(client, docs, points)
        if len(kept) >= k or len(points) < want or (pool is not None and want >= pool):
            return kept[:k]
        want = min(2 * want, pool) if pool is not None else 2 * want


def hits(
    client: QdrantClient,
    docs: str,
    ranked: Sequence[tuple[qm.ScoredPoint, float, Mapping[str, Signal]]],
    name: str,
    options: SearchOptions,
) -> list[Hit]:
    """The ranked points of committed versions as hits, with their document's metadata, and the unit's text and
    metadata when ``options`` ask for them (one ``retrieve`` of all the hits' points of collection ``name``: a
    point id names one version of one unit, so it holds that version's text)."""
    versions = live_versions(client, docs, {str((p.payload or {})["doc_id"]) for p, _, _ in ranked})
    alive = []
    for p, score, signals in ranked:
        pay = p.payload or {}
        state = versions.get(pay["doc_id"])
        if state is not None and state[0] == pay["version"]:
            alive.append((p, score, signals, state[1]))
    fields = [f for f, on in (("text", options.include_text), ("page_metadata", options.include_unit_metadata)) if on]
    extra: dict[str, dict[str, Any]] = {}
    if fields and alive:
        found = client.retrieve(name, [p.id for p, _, _, _ in alive], with_payload=fields)
        extra = {str(r.id): r.payload or {} for r in found}
    out = []
    for p, score, signals, doc_meta in alive:
        pay, more = p.payload or {}, extra.get(str(p.id), {})
        unit_meta = more.get("page_metadata") if options.include_unit_metadata else None
        kind = str(pay.get("kind", "page"))
        hit = Hit(pay["doc_id"], int(pay["page"]), score, dict(doc_meta), kind, dict(signals), more.get("text"))
        out.append(hit if unit_meta is None else replace(hit, unit_metadata=dict(unit_meta)))
    return out
