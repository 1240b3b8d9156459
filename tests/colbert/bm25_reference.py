"""A plain-Python BM25 over an embedded index's stored texts: the reference the store's in-memory BM25
(colbert.local.bm25) and the Qdrant sparse path are held to. Written from the formula, not from the library:
Lucene's IDF ``ln(1 + (N - n + 0.5) / (n + 0.5))``, k1 = 1.2, b = 0.75, N = live units with at least one token,
avgdl = their tokens / N, a query's distinct words in order. FTS5 still gives the postings: which units its MATCH
finds must be exactly the units this reference scores above 0. Tokens by the rules in force (looked up on the
module, so a test that swaps them is followed)."""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from colbert import text as rules
from colbert.filters import parse_filter
from colbert.local.filter import filter_sql
from colbert.local.fts import fts_search

__all__ = ["reference_bm25", "scores_by_hand"]

K1, B = 1.2, 0.75


def scores_by_hand(texts: dict[Any, str | None], query: str) -> dict[Any, float]:
    """BM25 score of every text holding a query word (module docstring), float64, terms in the query's order."""
    counted = {key: Counter(rules.tokens(text)) for key, text in texts.items() if text and rules.tokens(text)}
    n_units = len(counted)
    if not n_units:
        return {}
    avgdl = sum(sum(c.values()) for c in counted.values()) / n_units
    scores: dict[Any, float] = {}
    for term in rules.query_terms(query):
        holding = [key for key, c in counted.items() if term in c]
        if not holding:
            continue
        idf = math.log1p((n_units - len(holding) + 0.5) / (len(holding) + 0.5))
        for key in holding:
            tf, size = float(counted[key][term]), float(sum(counted[key].values()))
            scores[key] = scores.get(key, 0.0) + idf * ((tf * (K1 + 1.0)) / (tf + K1 * (1 - B + B * size / avgdl)))
    return scores


def reference_bm25(db: Path, query: str, limit: int, flt: dict[str, Any] | None = None) -> list[tuple[str, int, float]]:
    """The top ``limit`` (doc id, unit, score) of ``query`` over the index at ``db`` (ties: lower unit id), the
    filter narrowing the result but not N or the IDF; asserts FTS5 matches exactly the units scored."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT p.id, p.doc_id, p.page, t.text FROM pages p JOIN unit_text t ON t.page_id = p.id")
        where: dict[int, tuple[str, int]] = {}
        texts: dict[int, str | None] = {}
        for uid, doc_id, page, text in rows:
            where[int(uid)], texts[int(uid)] = (doc_id, int(page)), text
        scores = scores_by_hand(texts, query)
        matched, _ = fts_search(conn, query, 1 << 30)
        assert sorted(int(i) for i in matched) == sorted(scores), f"FTS5's postings disagree for {query!r}"
        if flt is not None:
            sql, params = filter_sql(parse_filter(flt))
            allowed = {int(r[0]) for r in conn.execute(sql, params)}
            scores = {uid: s for uid, s in scores.items() if uid in allowed}
    finally:
        conn.close()
    best = sorted(scores, key=lambda uid: (-scores[uid], uid))[:limit]
    return [(*where[uid], scores[uid]) for uid in best]
