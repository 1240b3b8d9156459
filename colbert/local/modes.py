"""The search modes of the embedded backend (:mod:`colbert.hybrid`), over one read transaction.

* first stage → ``(unit ids (c,), scores (c,))`` best first: dense cosine, or pooled sketches (optionally over a
  dense prefetch, optionally with the query pooled);
* full text → BM25 over FTS5's postings (:mod:`colbert.local.bm25`), only units the filter lets through;
* hybrid → the BM25 top ``ceil(candidates / 2)``, then the visual first stage's best units not already taken until
  ``candidates`` units are chosen (so hybrid reranks as many units as visual does: the extra cost is one BM25
  query, not a longer MaxSim rerank), exact MaxSim over all of them, and :func:`colbert.hybrid.fuse`.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from colbert.errors import InvalidQueryError
from colbert.filters import MetadataFilter
from colbert.hybrid import Fusion, Signal, fuse, signals_of
from colbert.local.dense import DenseSnapshot
from colbert.local.filter import filter_sql
from colbert.local.sketch import pool_query, sketch_scores
from colbert.store import Hit

__all__ = [
    "Bm25",
    "FirstStage",
    "Ranked",
    "filtered_ids",
    "first_stage",
    "hits_of",
    "hybrid_rank",
    "text_rank",
    "visual_rank",
]

Rerank = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]  # (unit ids, k) -> exact MaxSim top-k
ScoreAll = Callable[[int], tuple[np.ndarray, np.ndarray]]  # k -> exact MaxSim top-k over every allowed unit
Bm25 = Callable[[int], tuple[np.ndarray, np.ndarray]]  # n -> BM25 top-n (unit ids, scores) of the query, filtered
Ranked = list[tuple[int, float, dict[str, Signal]]]


@dataclass(frozen=True)
class FirstStage:
    """How the visual candidates are chosen (see :meth:`colbert.local.LocalStore.search`)."""

    kind: str  # "dense" | "pooled"
    candidates: int
    prefetch: int | None = None
    query_groups: int | None = None

    @classmethod
    def checked(cls, kind: str, candidates: int, prefetch: int | None, query_groups: int | None) -> FirstStage:
        """The first stage a search asks for, its arguments validated (:class:`InvalidQueryError`)."""
        if kind not in ("dense", "pooled"):
            raise InvalidQueryError(f"first_stage must be 'dense' or 'pooled', got {kind!r}")
        if prefetch is not None and (
            isinstance(prefetch, bool) or not isinstance(prefetch, int) or not candidates <= prefetch
        ):
            raise InvalidQueryError(f"prefetch must be None or an int >= candidates ({candidates}), got {prefetch!r}")
        if query_groups is not None and (
            isinstance(query_groups, bool) or not isinstance(query_groups, int) or query_groups < 1
        ):
            raise InvalidQueryError(f"query_groups must be None or an int >= 1, got {query_groups!r}")
        return cls(kind, candidates, prefetch, query_groups)


def first_stage(
    snap: DenseSnapshot, q: np.ndarray, dense: np.ndarray | None, rows: np.ndarray | None, how: FirstStage
) -> tuple[np.ndarray, np.ndarray]:
    """(unit ids (≤c,), first-stage scores (≤c,)) best first: cosine (dense) or approximate MaxSim (pooled)."""
    if how.kind == "dense":
        assert dense is not None
        chosen = snap.top(dense, how.candidates, rows)  # (≤c,) unit ids
        return chosen, snap.matrix[snap.rows_of(chosen)] @ dense  # (≤c,) cosines
    if dense is not None and how.prefetch is not None:
        rows = snap.rows_of(np.sort(snap.top(dense, how.prefetch, rows)))  # (≤prefetch,) row indices
    first_q, weights = (q, None) if how.query_groups is None else pool_query(q, how.query_groups)
    chosen = snap.top_pooled(first_q, how.candidates, rows, weights)  # (≤c,) unit ids
    scores = sketch_scores(snap.sketch[snap.rows_of(chosen)], snap.sketch_k, first_q, weights)  # (≤c,)
    return chosen, np.asarray(scores, dtype=np.float32)


def _as_map(ids: np.ndarray, scores: np.ndarray) -> dict[int, float]:
    return {int(i): float(s) for i, s in zip(ids.tolist(), scores.tolist(), strict=True)}


def text_rank(bm25: Bm25, k: int) -> Ranked:
    """The BM25 top-k as ranked hits."""
    text = _as_map(*bm25(k))
    signals = signals_of(text=text)
    return [(i, s, signals[i]) for i, s in text.items()]


def visual_rank(maxsim: tuple[np.ndarray, np.ndarray], visual: tuple[np.ndarray, np.ndarray] | None) -> Ranked:
    """The MaxSim top-k as ranked hits; the visual first stage's score and rank where there was one."""
    exact = _as_map(*maxsim)
    signals = signals_of(visual=_as_map(*visual) if visual is not None else {}, maxsim=exact)
    return [(i, s, signals[i]) for i, s in exact.items()]


def hybrid_rank(
    bm25: Bm25,
    k: int,
    candidates: int,
    visual: tuple[np.ndarray, np.ndarray] | None,
    rerank: Rerank,
    score_all: ScoreAll,
    fusion: Fusion,
) -> Ranked:
    """BM25 + visual candidates, exact MaxSim over their union, fused (module docstring). ``visual`` None: the
    search is exhaustive, MaxSim is computed for every allowed unit (``score_all``)."""
    text = _as_map(*bm25(math.ceil(candidates / 2)))
    if visual is None:
        maxsim = _as_map(*score_all(10**9))
        return fuse(text, {}, maxsim, k, fusion)
    chosen = list(text)
    taken = set(chosen)
    visual_map: dict[int, float] = {}
    for i, s in zip(visual[0].tolist(), visual[1].tolist(), strict=True):
        if len(chosen) >= candidates:
            break
        visual_map[int(i)] = float(s)
        if int(i) not in taken:
            chosen.append(int(i))
            taken.add(int(i))
    union = np.asarray(chosen, dtype=np.int64)
    maxsim = _as_map(*rerank(union, max(1, union.size))) if union.size else {}
    return fuse({i: s for i, s in text.items() if i in maxsim}, visual_map, maxsim, k, fusion)


def filtered_ids(conn: sqlite3.Connection, flt: MetadataFilter) -> np.ndarray:
    """The unit ids whose document passes ``flt``, ascending."""
    sql, params = filter_sql(flt)
    return np.fromiter((r[0] for r in conn.execute(sql, params)), dtype=np.int64)  # ascending page ids


def hits_of(conn: sqlite3.Connection, ranked: Ranked) -> list[Hit]:
    """Ranked unit ids as hits with their document's metadata (units deleted meanwhile are left out)."""
    if not ranked:
        return []
    found = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT p.id, p.doc_id, p.page, d.metadata, p.kind FROM pages p "
            "JOIN documents d ON d.doc_id = p.doc_id WHERE p.id IN (SELECT value FROM json_each(?))",
            (json.dumps([i for i, _, _ in ranked]),),
        )
    }
    return [
        Hit(found[i][0], found[i][1], float(s), json.loads(found[i][2]), found[i][3], signals)
        for i, s, signals in ranked
        if i in found
    ]
