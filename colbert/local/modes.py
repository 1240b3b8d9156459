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
from typing import Any

import numpy as np

from colbert.filters import MetadataFilter
from colbert.hybrid import Fusion, Signal, fuse, signals_of
from colbert.local.dense import DenseSnapshot
from colbert.local.filter import filter_sql
from colbert.local.sketch import pool_query
from colbert.search import SearchOptions
from colbert.store import Hit

__all__ = [
    "Bm25",
    "FirstStage",
    "Ranked",
    "filtered_ids",
    "first_stage",
    "held_for",
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
    """How the visual candidates are chosen (see :meth:`colbert.local.LocalStore.search`; the values were checked
    by :class:`colbert.search.SearchOptions`)."""

    kind: str  # "dense" | "pooled" | "ivf" | "pooled_ivf" (colbert.local.inverted, served by LocalHandle._first_stage)
    candidates: int
    prefetch: int | None = None
    query_groups: int | None = None


def held_for(how: FirstStage | None, dense: bool) -> tuple[bool, bool]:
    """(dense rows, sketches): what of the held snapshot the first stage ``how`` reads (None: none runs). ``dense``:
    the query has a dense vector (a pooled ``prefetch`` then narrows by cosine first; pooled_ivf's ``prefetch`` is
    its reach over the cells). The inverted lists of ivf and pooled_ivf are held apart (colbert.local.inverted)."""
    if how is None:
        return False, False
    prefetched = how.kind == "pooled" and dense and how.prefetch is not None
    return how.kind == "dense" or prefetched, how.kind in ("pooled", "pooled_ivf")


def first_stage(
    snap: DenseSnapshot, q: np.ndarray, dense: np.ndarray | None, rows: np.ndarray | None, how: FirstStage
) -> tuple[np.ndarray, np.ndarray]:
    """(unit ids (≤c,), first-stage scores (≤c,)) best first: cosine (dense) or approximate MaxSim (pooled)."""
    if how.kind == "dense":
        assert dense is not None
        return snap.best(dense, how.candidates, rows)  # (≤c,) unit ids, their cosines
    if dense is not None and how.prefetch is not None:
        rows = snap.rows_of(np.sort(snap.top(dense, how.prefetch, rows)))  # (≤prefetch,) row indices
    first_q, weights = (q, None) if how.query_groups is None else pool_query(q, how.query_groups)
    return snap.best_pooled(first_q, how.candidates, rows, weights)  # (≤c,) unit ids, their sketch scores


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


def hits_of(conn: sqlite3.Connection, ranked: Ranked, options: SearchOptions) -> list[Hit]:
    """Ranked unit ids as hits with their document's metadata, and the unit's text and metadata when ``options``
    ask for them, in one query of the search's read transaction (units deleted meanwhile are left out)."""
    if not ranked:
        return []
    text = "t.text" if options.include_text else "NULL"
    unit_meta = "p.metadata" if options.include_unit_metadata else "NULL"
    join = "LEFT JOIN unit_text t ON t.page_id = p.id " if options.include_text else ""
    found = {
        r[0]: r[1:]
        for r in conn.execute(
            f"SELECT p.id, p.doc_id, p.page, d.metadata, p.kind, {text}, {unit_meta} FROM pages p "
            f"JOIN documents d ON d.doc_id = p.doc_id {join}WHERE p.id IN (SELECT value FROM json_each(?))",
            (json.dumps([i for i, _, _ in ranked]),),
        )
    }
    return [_hit(found[i], float(s), signals, options) for i, s, signals in ranked if i in found]


def _hit(row: tuple[Any, ...], score: float, signals: dict[str, Signal], options: SearchOptions) -> Hit:
    doc_id, unit, doc_meta, kind, text, unit_meta = row
    return Hit(
        doc_id,
        unit,
        score,
        json.loads(doc_meta),
        kind,
        signals,
        text=text,
        unit_metadata=json.loads(unit_meta) if options.include_unit_metadata else None,
    )
