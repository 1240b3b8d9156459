"""The search modes (:mod:`colbert.hybrid`) on Qdrant: one query per signal, fused on our side.

* ``text``: the sparse vector ``text`` (:mod:`colbert.qdrant.sparse`, IDF applied by Qdrant) with the filter.
* ``visual``: dense prefetch of ``candidates`` then MaxSim over ``mv`` (one query, the original path); the hits
  carry the ``maxsim`` signal only (Qdrant does not return the prefetch's scores). For int8/binary collections
  Qdrant's quantized copy picks which candidates are rescored on the originals (``MaxSimParams.narrowed``,
  :mod:`colbert.qdrant.codecs`); exhaustive search scores every point on the originals (``exact``).
* ``hybrid``: the sparse top ``ceil(candidates / 2)`` and the dense top ``candidates`` (each with the filter), the
  union cut to ``candidates`` as the embedded backend does, exact MaxSim over exactly those points (a
  ``has_id`` filter on the ``mv`` query), then :func:`colbert.hybrid.fuse`. Exhaustive: the MaxSim top
  ``candidates`` over every allowed point stands in for the dense list. Both MaxSim queries score the originals
  (``MaxSimParams.exact``).

Points of a document version that is not (or no longer) committed are dropped by the caller's liveness check.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from colbert.hybrid import Fusion, Signal, fuse
from colbert.qdrant.codecs import MaxSimParams
from colbert.qdrant.sparse import SPARSE_NAME, query_vector

__all__ = ["Keep", "hybrid_points", "text_points", "visual_points"]

Keep = Callable[[list[qm.ScoredPoint]], list[qm.ScoredPoint]]  # drops points of uncommitted versions
PAYLOAD = ["doc_id", "page", "version", "kind"]


def text_points(
    client: QdrantClient, name: str, query_text: str, flt: qm.Filter | None, limit: int
) -> list[qm.ScoredPoint]:
    vector = query_vector(query_text)
    if vector is None:
        return []
    res = client.query_points(
        name, query=vector, using=SPARSE_NAME, query_filter=flt, limit=limit, with_payload=PAYLOAD
    )
    return list(res.points)


def _dense_points(
    client: QdrantClient, name: str, dense: np.ndarray, flt: qm.Filter | None, limit: int
) -> list[qm.ScoredPoint]:
    res = client.query_points(
        name, query=dense.tolist(), using="dense", query_filter=flt, limit=limit, with_payload=PAYLOAD
    )
    return list(res.points)


def _maxsim_points(
    client: QdrantClient, name: str, q: np.ndarray, flt: qm.Filter | None, limit: int, params: MaxSimParams
) -> list[qm.ScoredPoint]:
    """Exact MaxSim over the originals of every point ``flt`` allows."""
    res = client.query_points(
        name,
        query=q.tolist(),
        using="mv",
        query_filter=flt,
        limit=limit,
        with_payload=PAYLOAD,
        search_params=params.exact,
    )
    return list(res.points)


def _with_ids(flt: qm.Filter | None, ids: list[str]) -> qm.Filter:
    has = qm.HasIdCondition(has_id=ids)  # type: ignore[arg-type]
    if flt is None:
        return qm.Filter(must=[has])
    return qm.Filter(must=[has, flt])


def hybrid_points(
    client: QdrantClient,
    name: str,
    q: np.ndarray,
    dense: np.ndarray | None,
    query_text: str,
    flt: qm.Filter | None,
    k: int,
    candidates: int,
    fusion: Fusion,
    keep: Keep,
    params: MaxSimParams,
) -> list[tuple[qm.ScoredPoint, float, dict[str, Signal]]]:
    """(point, fused score, signals) of the hybrid top-k (module docstring)."""
    text_list = keep(text_points(client, name, query_text, flt, math.ceil(candidates / 2)))
    if dense is None:
        visual_list = keep(_maxsim_points(client, name, q, flt, candidates, params))
    else:
        visual_list = keep(_dense_points(client, name, dense, flt, candidates))
    chosen: dict[str, qm.ScoredPoint] = {str(p.id): p for p in text_list}
    visual: dict[str, float] = {}
    for p in visual_list:
        if len(chosen) >= candidates:
            break
        visual[str(p.id)] = float(p.score)
        chosen.setdefault(str(p.id), p)
    if not chosen:
        return []
    exact = _maxsim_points(client, name, q, _with_ids(flt, list(chosen)), len(chosen), params)
    maxsim = {str(p.id): float(p.score) for p in exact}
    text = {str(p.id): float(p.score) for p in text_list if str(p.id) in maxsim}
    return [(chosen[i], s, sig) for i, s, sig in fuse(text, visual, maxsim, k, fusion)]


def visual_points(
    client: QdrantClient,
    name: str,
    q: np.ndarray,
    dense: np.ndarray | None,
    flt: qm.Filter | None,
    pool: int | None,
    limit: int,
    params: MaxSimParams,
) -> list[qm.ScoredPoint]:
    """MaxSim over ``mv`` of the ``pool`` points nearest ``dense`` (every point, exactly, when either is None)."""
    if dense is None or pool is None:
        return _maxsim_points(client, name, q, flt, limit, params)
    prefetch = qm.Prefetch(query=dense.tolist(), using="dense", limit=pool, filter=flt)
    res = client.query_points(
        name,
        prefetch=prefetch,
        query=q.tolist(),
        using="mv",
        limit=limit,
        with_payload=PAYLOAD,
        search_params=params.narrowed,
    )
    return list(res.points)
