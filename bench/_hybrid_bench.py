"""Hybrid-search figures for :mod:`bench.search` (``--text-words N``): latency of ``text`` and ``hybrid`` next to
``visual`` on the same queries, and the text index's size.

* Latency: p50 / p99 ms of ``visual`` (dense first stage, C candidates), ``hybrid`` (BM25 top C/2 + dense, C units
  reranked; the default weighted fusion) and ``text`` (BM25 only) for the same queries, and hybrid's p50 over
  visual's, each with the query terms' posting lists cached in memory (:mod:`colbert.local.bm25`, the steady state
  of a read-mostly index) and cold (read from FTS5 on every query: a term's first search, or any search after
  a write added units). Visual and hybrid are timed in turns, query by query (order alternating), so a change
  in the machine's load hits both alike.
* Size: bytes of the FTS5 tables (``unit_fts*``, SQLite's ``dbstat``) per unit on disk; in memory, the units'
  ids, token counts and live mask (13 B/unit) plus the posting lists cached by the runs
  (``LocalStats.text_memory_bytes``, bounded by ``term_cache_bytes``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from colbert.local import LocalStore
from colbert.search import Query, SearchOptions

__all__ = ["fts_bytes", "hybrid_rows"]


def fts_bytes(db: Path) -> int:
    """Bytes of the full-text tables in the SQLite file ``db`` (checkpointed)."""
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name LIKE 'unit_fts%'").fetchone()
        return int(row[0])
    finally:
        conn.close()


def _latencies(run: Callable[[int], object], count: int) -> list[float]:
    for i in range(min(count, 3)):  # warm-up
        run(i)
    out = []
    for i in range(count):
        t0 = time.perf_counter()
        run(i)
        out.append(1000 * (time.perf_counter() - t0))
    return out


def _paired(a: Callable[[int], object], b: Callable[[int], object], count: int) -> tuple[list[float], list[float]]:
    """Latencies (ms) of ``a`` and ``b`` on each query, timed in turns (a first on even queries, b on odd)."""
    for i in range(min(count, 3)):  # warm-up
        a(i)
        b(i)
    out_a: list[float] = []
    out_b: list[float] = []
    for i in range(count):
        for run, out in ((a, out_a), (b, out_b)) if i % 2 == 0 else ((b, out_b), (a, out_a)):
            t0 = time.perf_counter()
            run(i)
            out.append(1000 * (time.perf_counter() - t0))
    return out_a, out_b


def hybrid_rows(
    store: LocalStore,
    queries: np.ndarray,
    dense_q: np.ndarray,
    texts: Sequence[str],
    k: int,
    candidates: Sequence[int],
    db: Path,
) -> list[list[object]]:
    """Rows (engine, pages, figure, value) for the bench table. ``store`` keeps posting lists in memory
    (``term_cache_bytes``, the default); a second handle on the same index without that cache gives the "cold"
    figures: every query's postings read from FTS5, as on a term's first search or after a write."""
    n = store.count()[1]
    rows: list[list[object]] = []
    count = len(texts)
    cold = LocalStore.open(db.parent, options=replace(store.options, term_cache_bytes=0))

    def pct(values: list[float], q: float) -> float:
        return float(np.percentile(np.asarray(values), q))

    def p50_p99(values: list[float]) -> str:
        return f"{pct(values, 50):.1f} / {pct(values, 99):.1f}"

    for i, text in enumerate(texts):  # the blobs every plan reranks read once (the OS page cache), on both sides;
        cold.search(Query(queries[i], dense_q[i], text), SearchOptions(k=k, candidates=max(candidates), mode="hybrid"))
        store.search(Query(text=text), SearchOptions(k=k, mode="text"))  # "cached": each query's terms searched once
    for name, handle in (("cold", cold), ("cached", store)):

        def text_run(i: int, h: LocalStore = handle) -> object:
            return h.search(Query(text=texts[i]), SearchOptions(k=k, mode="text"))

        lat = _latencies(text_run, count)
        rows.append(["ours", n, f"text (BM25), postings {name}: p50 / p99 ms", p50_p99(lat)])
    for c in candidates:
        for name, handle in (("cold", cold), ("cached", store)):

            def visual_run(i: int, c: int = c, h: LocalStore = handle) -> object:
                return h.search(Query(queries[i], dense_q[i]), SearchOptions(k=k, candidates=c))

            def hybrid_run(i: int, c: int = c, h: LocalStore = handle) -> object:
                return h.search(
                    Query(queries[i], dense_q[i], texts[i]), SearchOptions(k=k, candidates=c, mode="hybrid")
                )

            visual, hybrid = _paired(visual_run, hybrid_run, count)
            ratio = pct(hybrid, 50) / pct(visual, 50)
            rows.append(
                [
                    "ours",
                    n,
                    f"{c} candidates, postings {name}: visual vs hybrid p50 / p99 ms",
                    f"{p50_p99(visual)} vs {p50_p99(hybrid)} (hybrid p50 {100 * (ratio - 1):+.0f} %, {count} q)",
                ]
            )
    cold.close()
    stats = store.stats()
    rows.append(["ours", n, "text index disk bytes/page (FTS5)", fts_bytes(db) // max(n, 1)])
    memory = stats.text_memory_bytes // max(n, 1)
    rows.append(["ours", n, "text index memory bytes/page (ours, after the runs)", memory])
    return rows
