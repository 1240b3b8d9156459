"""The BM25 both backends rank text by: one set of constants, one IDF, one term weight.

``score(d) = Σ over the query's distinct terms t in d of idf(t) · w(t, d)`` with

* ``idf(t) = ln(1 + (N − n + 0.5) / (n + 0.5))`` — Lucene's BM25 IDF (and Qdrant's ``Modifier.IDF``): N units
  with text, n of them holding t. Always positive, so a word that half of a tiny collection holds still counts
  (the classic ``ln((N − n + 0.5) / (n + 0.5))``, which FTS5's ``bm25()`` uses, is ≤ 0 there: FTS5 floors it at
  1e-6, so on a 4-page collection every word on 2 pages or more counted for nothing);
* ``w(t, d) = tf · (k1 + 1) / (tf + k1 · (1 − b + b · |d| / avgdl))``, k1 = 1.2, b = 0.75, ``|d|`` the unit's
  tokens (:func:`colbert.text.tokens`).

The embedded backend computes it over FTS5's postings with the live ``avgdl`` (:mod:`colbert.local.bm25`); the
Qdrant backend stores ``w`` with a fixed ``avgdl`` and lets Qdrant apply this IDF (:mod:`colbert.qdrant.sparse`).

>>> round(idf(4, 2), 6), round(idf(4, 4), 6), round(idf(2, 1), 6)
(0.693147, 0.105361, 0.693147)
>>> round(term_weight(1, 10, 10.0), 6)
1.0
"""

from __future__ import annotations

import math
from typing import Final

__all__ = ["K1", "B", "idf", "term_weight"]

K1: Final = 1.2
B: Final = 0.75


def idf(n_units: float, n_holding: float) -> float:
    """Lucene's BM25 IDF of a term ``n_holding`` of ``n_units`` units hold (> 0 whenever n_holding <= n_units)."""
    return math.log1p((n_units - n_holding + 0.5) / (n_holding + 0.5))


def term_weight(tf: float, length: float, avgdl: float) -> float:
    """BM25's saturated, length-normalised term frequency (module docstring)."""
    return tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * length / avgdl))
