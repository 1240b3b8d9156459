"""The Qdrant backend's full-text side: :mod:`colbert.text` tokens as sparse vectors, IDF applied by Qdrant.

* Each unit's text becomes a sparse vector ``{term index: BM25 term weight}`` in the named sparse vector
  ``text`` of its point (so it is written, versioned and deleted with the unit's dense and multi-vectors).
  The collection declares it with ``modifier=IDF``: Qdrant keeps the document frequencies and multiplies by
  ``ln(1 + (N - n + 0.5) / (n + 0.5))`` at query time, so ``score = sum over query terms of IDF(t) · w(t, d)``.
* ``w(t, d) = tf · (k1 + 1) / (tf + k1 · (1 - b + b · |d| / avgdl))`` with ``k1 = 1.2``, ``b = 0.75``, computed here
  at indexing; Qdrant knows no corpus length, so ``avgdl`` is a fixed constant (:data:`AVGDL`, tokens per unit of
  a typical page). This is BM25 with a fixed length norm; the embedded backend's FTS5 uses the live average, so
  the two rank alike but their scores are not equal.
* Term index: the first 4 bytes (little-endian) of the term's BLAKE2b digest, an unsigned 32-bit id. Distinct
  terms may collide (for a 1M-term vocabulary about 1 pair in 10^4 of all terms): a collision merges two terms'
  weights, never loses a unit.
* A query is the set of its distinct tokens, weight 1 each (query term frequency is ignored, as in FTS5's OR).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Final

from qdrant_client import models as qm

from colbert.text import query_terms, tokens

__all__ = ["AVGDL", "K1", "SPARSE_NAME", "B", "document_vector", "query_vector", "term_index"]

SPARSE_NAME: Final = "text"
K1: Final = 1.2
B: Final = 0.75
AVGDL: Final = 256.0


def term_index(term: str) -> int:
    """The sparse dimension of ``term`` (stable across processes and versions of Python)."""
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "little")


def _merge(pairs: list[tuple[int, float]]) -> qm.SparseVector:
    merged: dict[int, float] = {}
    for i, w in pairs:
        merged[i] = merged.get(i, 0.0) + w
    keys = sorted(merged)
    return qm.SparseVector(indices=keys, values=[merged[i] for i in keys])


def document_vector(text: str | None) -> qm.SparseVector | None:
    """BM25 term weights of a unit's text (None: no text, or no token in it)."""
    toks = tokens(text) if text else []
    if not toks:
        return None
    counts = Counter(toks)
    norm = K1 * (1 - B + B * len(toks) / AVGDL)
    return _merge([(term_index(t), tf * (K1 + 1) / (tf + norm)) for t, tf in counts.items()])


def query_vector(query: str) -> qm.SparseVector | None:
    """The query's distinct tokens, weight 1 (None: no token)."""
    terms = query_terms(query)
    return _merge([(term_index(t), 1.0) for t in terms]) if terms else None
