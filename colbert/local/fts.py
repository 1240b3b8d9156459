"""The embedded backend's full-text index: SQLite FTS5 over :mod:`colbert.text` tokens, ranked by BM25.

* One contentless FTS5 table, ``unit_fts(terms)``, rowid = the unit's id. The unit's text itself is stored
  with the unit; the FTS table holds only the inverted index of its tokens (written space-separated, so
  FTS5's own ``unicode61`` tokenizer, configured to treat letters, digits and marks as word characters,
  splits them back exactly). It is written in the same transaction as the unit's vectors.
* Contentless tables cannot read their rows back, so a unit is removed with FTS5's ``'delete'`` command and
  the same terms it was added with: they are recomputed from the stored text by the same tokeniser. So the
  rules the index was built by (:data:`colbert.text.TOKENIZER_VERSION`) are stored in the meta table
  (``tokenizer_version``); an index built by other rules is rebuilt when opened (:func:`fts_rebuild`, called by
  :mod:`colbert.local.migrate` in one transaction), and a handle never deletes under rules other than the stored
  ones (:class:`colbert.local.handle.LocalHandle` checks the version in every write transaction).
* Queries never reach FTS5's parser as written: only our tokens (letters/digits/marks) do, each quoted — one at a
  time where the store looks a term up (:mod:`colbert.local.bm25`), ORed in :func:`fts_search`, ``"error" OR "42"`` —
  so quotes, ``NEAR``, ``*``, ``-``, ``:`` and parentheses in a query are plain words.
* Scores: FTS5's ``bm25()`` (k1 = 1.2, b = 0.75, IDF ``ln((N - n + 0.5) / (n + 0.5))`` floored at 1e-6),
  negated so that higher is better. Searches do not run :func:`fts_search`: they compute the same ranking in
  memory over FTS5's postings (:mod:`colbert.local.bm25`, many times faster); :func:`fts_search` is FTS5's own
  ranking, the reference the tests hold that computation to.
* Floored terms are left out of the query (:class:`TermDocs`): a term found in at least half of the N indexed
  units gets FTS5's floor IDF of 1e-6, so it adds at most ~2.2e-6 to any score, yet scoring it walks its whole
  posting list (most of the index for a word like "the": 60–130 ms of a 30k-page query, bench/README.md). Such a
  term is dropped when the query has another term; the ranking changes only among units whose scores differ by
  less than that, and units that matched nothing but floored terms (scores ≤ ~1e-5) are no longer returned.
  A term's document count is read from an ``fts5vocab`` table (or its cached postings) and kept across writes
  only while the units added/removed since cannot change the decision, so the decision is exact.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from colbert.text import query_terms, tokens

__all__ = [
    "FTS_DDL",
    "VOCAB_DDL",
    "TermDocs",
    "fts_add",
    "fts_delete",
    "fts_rebuild",
    "fts_search",
    "informative",
    "match_expression",
]

FTS_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS unit_fts USING fts5(terms, content='', "
    "tokenize=\"unicode61 remove_diacritics 0 categories 'L* N* M* Co'\")"
)


# per connection (temp schema): each indexed term and the number of units holding it
VOCAB_DDL = "CREATE VIRTUAL TABLE IF NOT EXISTS temp.unit_fts_vocab USING fts5vocab(main, unit_fts, row)"

TermFilter = Callable[[Sequence[str]], list[str]]


def informative(terms: Sequence[str], floored: Callable[[str], bool]) -> list[str]:
    """The ``terms`` FTS5's BM25 gives a positive IDF: those not ``floored`` (held by at least half of the units:
    :meth:`TermDocs.filter`). All of them when none is informative.

    >>> docs = {"the": 980, "a": 990, "x7200b": 1, "disk": 120}
    >>> informative(["the", "x7200b", "disk"], lambda t: 2 * docs[t] >= 1000)
    ['x7200b', 'disk']
    >>> informative(["the", "a"], lambda t: 2 * docs[t] >= 1000)
    ['the', 'a']
    """
    keep = [t for t in terms if not floored(t)]
    return keep or list(terms)


@dataclass(frozen=True, slots=True)
class _Count:
    docs: int
    added: int  # the index's added / removed counters when ``docs`` was read
    removed: int


class TermDocs:
    """Document counts of query terms (one cache per store, shared by threads), kept across writes: a count
    read when the index had added ``a`` and removed ``r`` units is, after more writes, within ``[count - (r' - r),
    count + (a' - a)]``; when that range alone decides whether the term is floored, no lookup is needed (a
    floored word's lookup walks most of the index). Counts of another ``generation`` are dropped."""

    def __init__(self, max_terms: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._generation: Hashable = None
        self._counts: dict[str, _Count] = {}
        self._max_terms = max_terms
        self.lookups = 0  # fts5vocab lookups made (the rest were decided by a known count)

    def filter(
        self,
        conn: sqlite3.Connection,
        generation: Hashable,
        rows: int,
        cached: Callable[[str], int | None] | None = None,
        *,
        added: int = 0,
        removed: int = 0,
    ) -> TermFilter:
        """A term filter (:func:`informative`; ``rows`` may overcount the units: then fewer terms are dropped,
        never more) for ``conn``'s read transaction, which sees the index at ``generation`` after ``added`` /
        ``removed`` units; ``cached`` gives a term's exact count when something else already knows it (None:
        look it up)."""
        return lambda terms: informative(
            terms, lambda term: self._floored(conn, generation, rows, term, cached, added, removed)
        )

    def _floored(
        self,
        conn: sqlite3.Connection,
        generation: Hashable,
        rows: int,
        term: str,
        cached: Callable[[str], int | None] | None,
        added: int,
        removed: int,
    ) -> bool:
        with self._lock:
            if generation != self._generation or len(self._counts) > self._max_terms:
                self._generation, self._counts = generation, {}
            known = self._counts.get(term)
        if known is not None:
            low, high = known.docs - (removed - known.removed), known.docs + (added - known.added)
            if 2 * low >= rows or 2 * high < rows:  # decided by the bounds alone (exact when nothing changed)
                return 2 * low >= rows
        docs = cached(term) if cached is not None else None
        if docs is None:
            self.lookups += 1
            conn.execute(VOCAB_DDL)  # one equality lookup (an IN list is not an index seek on fts5vocab)
            row = conn.execute("SELECT doc FROM temp.unit_fts_vocab WHERE term = ?", (term,)).fetchone()
            docs = 0 if row is None else int(row[0])
        with self._lock:
            if generation == self._generation:
                self._counts[term] = _Count(docs, added, removed)
        return 2 * docs >= rows


def _terms(text: str | None) -> str:
    return " ".join(tokens(text)) if text else ""


def fts_add(conn: sqlite3.Connection, rows: list[tuple[int, str | None]]) -> None:
    """Index (unit id, text) rows; units without text (or without a single token) are not indexed."""
    data = [(uid, terms) for uid, text in rows if (terms := _terms(text))]
    conn.executemany("INSERT INTO unit_fts (rowid, terms) VALUES (?, ?)", data)


def fts_delete(conn: sqlite3.Connection, rows: list[tuple[int, str | None]]) -> None:
    """Remove (unit id, text as stored) rows from the index (the text must be what :func:`fts_add` got)."""
    data = [(uid, terms) for uid, text in rows if (terms := _terms(text))]
    conn.executemany("INSERT INTO unit_fts (unit_fts, rowid, terms) VALUES ('delete', ?, ?)", data)


def fts_rebuild(conn: sqlite3.Connection, batch: int = 1024) -> int:
    """Empty the index (FTS5's ``'delete-all'``, the way to clear a contentless table) and index every stored
    unit text again with the current tokeniser, ``batch`` units at a time; the number of units read. Run it
    inside the caller's transaction (the index is empty in between)."""
    conn.execute("INSERT INTO unit_fts (unit_fts) VALUES ('delete-all')")
    done, last = 0, -1
    while True:
        rows = conn.execute(
            "SELECT page_id, text FROM unit_text WHERE page_id > ? ORDER BY page_id LIMIT ?", (last, batch)
        ).fetchall()
        if not rows:
            return done
        fts_add(conn, rows)
        done, last = done + len(rows), rows[-1][0]


def match_expression(query: str, keep: TermFilter | None = None) -> str | None:
    """The FTS5 MATCH expression for a user query: its distinct tokens (those ``keep`` keeps), quoted, ORed
    (None: no tokens).

    >>> match_expression('error "NEAR(a b)" x* -y')
    '"error" OR "near" OR "a" OR "b" OR "x" OR "y"'
    """
    terms = query_terms(query)
    if terms and keep is not None:
        terms = keep(terms)
    return " OR ".join(f'"{t}"' for t in terms) if terms else None


def fts_search(
    conn: sqlite3.Connection,
    query: str,
    limit: int,
    allowed: tuple[str, list[Any]] | None = None,
    keep: TermFilter | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(unit ids (≤limit,), BM25 scores (≤limit,)) best first (ties: lower id first). ``allowed``: SQL and
    parameters selecting the unit ids a filter lets through (applied inside the BM25 query). ``keep``: which of
    the query's terms to search for (:meth:`TermDocs.filter`; None: all)."""
    expr = match_expression(query, keep)
    if expr is None:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    where, params = "unit_fts MATCH ?", [expr]
    if allowed is not None:
        where += f" AND rowid IN ({allowed[0]})"
        params += allowed[1]
    rows = conn.execute(
        f"SELECT rowid, -bm25(unit_fts) AS s FROM unit_fts WHERE {where} ORDER BY s DESC, rowid LIMIT ?",
        [*params, limit],
    ).fetchall()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    scores = np.fromiter((r[1] for r in rows), dtype=np.float32, count=len(rows))
    return ids, scores
