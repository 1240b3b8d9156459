"""The Qdrant backend's full-text side: :mod:`colbert.text` tokens as sparse vectors, IDF applied by Qdrant.

* Each unit's text becomes a sparse vector ``{term index: BM25 term weight}`` in the named sparse vector
  ``text`` of its point (so it is written, versioned and deleted with the unit's dense and multi-vectors).
  The collection declares it with ``modifier=IDF``: Qdrant keeps the document frequencies and multiplies by
  ``ln(1 + (N - n + 0.5) / (n + 0.5))`` at query time — :func:`colbert.bm25.idf`, the embedded backend's IDF —
  so ``score = sum over query terms of IDF(t) · w(t, d)``.
* ``w(t, d)`` is :func:`colbert.bm25.term_weight`, computed here at indexing; Qdrant knows no corpus length, so
  ``avgdl`` is a fixed constant (:data:`AVGDL`, tokens per unit of a typical page). The IDF and k1, b are the
  embedded backend's; its length norm uses the live average, so scores are equal where units are
  :data:`AVGDL` tokens long on average and rank alike otherwise.
* Term index: the first 4 bytes (little-endian) of the term's BLAKE2b digest, an unsigned 32-bit id. Distinct
  terms may collide (for a 1M-term vocabulary about 1 pair in 10^4 of all terms): a collision merges two terms'
  weights, never loses a unit.
* A query is the set of its distinct tokens, weight 1 each (query term frequency is ignored, as in FTS5's OR).
* The collection's metadata records the tokeniser's rules its vectors were computed by (``tokenizer_version``,
  :data:`colbert.text.TOKENIZER_VERSION`; absent: version 1, the only one released before the key existed).
  Opening a collection computed by older rules recomputes every point's sparse vector from the ``text`` its
  payload keeps (:func:`retokenize`, a scroll and one ``update_vectors``/``delete_vectors`` request per batch),
  then records the new version. Qdrant has no transaction spanning that: a search meanwhile sees some units
  under the old rules and some under the new (scores off, no unit lost), and a crash before the version is
  written leaves it to the next open, which recomputes everything again (idempotent). A collection computed by
  newer rules is refused (``IndexFormatError``). ``add_document`` checks the version first (one
  ``get_collection``), so a process still running older code cannot add old-rule vectors to an upgraded
  collection — except in a write racing the recompute itself; upgrade every process together.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from typing import Any, Final

from qdrant_client import QdrantClient
from qdrant_client import models as qm

from colbert import text as rules
from colbert.bm25 import term_weight
from colbert.errors import IndexFormatError
from colbert.text import query_terms, tokens

__all__ = [
    "AVGDL",
    "SPARSE_NAME",
    "TOKENIZER_KEY",
    "check_tokenizer",
    "document_vector",
    "query_vector",
    "retokenize",
    "stored_tokenizer",
    "term_index",
]

log = logging.getLogger(__name__)

SPARSE_NAME: Final = "text"
TOKENIZER_KEY: Final = "tokenizer_version"  # collection metadata: the rules the sparse vectors were computed by
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
    return _merge([(term_index(t), term_weight(tf, len(toks), AVGDL)) for t, tf in counts.items()])


def query_vector(query: str) -> qm.SparseVector | None:
    """The query's distinct tokens, weight 1 (None: no token)."""
    terms = query_terms(query)
    return _merge([(term_index(t), 1.0) for t in terms]) if terms else None


def stored_tokenizer(name: str, meta: dict[str, Any]) -> int:
    """The tokenizer version collection ``name``'s metadata records (absent: 1); ``IndexFormatError`` if damaged."""
    value = meta.get(TOKENIZER_KEY)
    if value is None:
        return 1
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise IndexFormatError(f"Qdrant collection {name!r}: damaged metadata ({TOKENIZER_KEY}={value!r})")
    return value


def check_tokenizer(client: QdrantClient, name: str) -> None:
    """``IndexFormatError`` unless the collection's sparse vectors were computed by this code's rules."""
    found = stored_tokenizer(name, dict(client.get_collection(name).config.metadata or {}))
    if found != rules.TOKENIZER_VERSION:
        raise IndexFormatError(
            f"Qdrant collection {name!r}: its sparse vectors were computed by tokenizer version {found}; this "
            f"process tokenises by version {rules.TOKENIZER_VERSION} and must be restarted with the same version "
            "of the software as the process that upgraded it"
        )


def retokenize(client: QdrantClient, name: str, max_request_bytes: int) -> None:
    """Bring collection ``name``'s sparse vectors to this code's tokeniser rules (module docstring): record the
    version of a collection without one (version 1), recompute them from the stored texts when they were computed
    by older rules, refuse newer rules."""
    meta = dict(client.get_collection(name).config.metadata or {})
    found, current = stored_tokenizer(name, meta), rules.TOKENIZER_VERSION
    if found > current:
        raise IndexFormatError(
            f"Qdrant collection {name!r}: its sparse vectors were computed by tokenizer version {found}, newer "
            f"than this code's {current}; open it with the newer version of the software"
        )
    if found == current:
        if TOKENIZER_KEY not in meta:
            client.update_collection(name, metadata={**meta, TOKENIZER_KEY: current})
        return
    started, points, offset = time.perf_counter(), 0, None
    while True:
        records, offset = client.scroll(name, limit=256, offset=offset, with_payload=["text"], with_vectors=False)
        updates: list[qm.PointVectors] = []
        emptied: list[Any] = []
        size = 0
        for rec in records:
            body = (rec.payload or {}).get("text")
            vector = document_vector(body) if isinstance(body, str) else None
            if vector is not None:
                updates.append(qm.PointVectors(id=rec.id, vector={SPARSE_NAME: vector}))
                size += 64 + 24 * len(vector.indices)
            elif body is not None:  # text that holds no token under the new rules
                emptied.append(rec.id)
            if size > max_request_bytes:
                client.update_vectors(name, updates, wait=True)
                updates, size = [], 0
        if updates:
            client.update_vectors(name, updates, wait=True)
        if emptied:
            client.delete_vectors(name, vectors=[SPARSE_NAME], points=emptied, wait=True)
        points += len(records)
        if offset is None:
            break
    client.update_collection(name, metadata={**meta, TOKENIZER_KEY: current})
    log.warning(
        "Qdrant collection %r: sparse vectors of %d points recomputed for tokenizer version %d (they were computed "
        "by version %d) in %.1f s",
        name,
        points,
        current,
        found,
        time.perf_counter() - started,
    )
