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
* Searches read FTS5's postings only (an ``fts5vocab`` instance table, :mod:`colbert.local.bm25`) and rank them
  by :mod:`colbert.bm25` in memory. FTS5's own ``bm25()`` is not used: its IDF ``ln((N - n + 0.5) / (n + 0.5))``
  is floored at 1e-6 for a word that half of the units hold, which on a small collection drops most words of a
  query. :func:`fts_search` (FTS5's MATCH, ranked by its ``bm25()``) is kept for the tests: which units FTS5
  matches for a query is what the in-memory ranking must cover.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import numpy as np

from colbert.text import query_terms, tokens

__all__ = [
    "FTS_DDL",
    "fts_add",
    "fts_delete",
    "fts_rebuild",
    "fts_search",
    "match_expression",
]

FTS_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS unit_fts USING fts5(terms, content='', "
    "tokenize=\"unicode61 remove_diacritics 0 categories 'L* N* M* Co'\")"
)


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


def match_expression(query: str) -> str | None:
    """The FTS5 MATCH expression for a user query: its distinct tokens, quoted, ORed (None: no tokens).

    >>> match_expression('error "NEAR(a b)" x* -y')
    '"error" OR "near" OR "a" OR "b" OR "x" OR "y"'
    """
    terms = query_terms(query)
    return " OR ".join(f'"{t}"' for t in terms) if terms else None


def fts_search(
    conn: sqlite3.Connection,
    query: str,
    limit: int,
    allowed: tuple[str, list[Any]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(unit ids (≤limit,), FTS5 ``bm25()`` scores (≤limit,)) best first (ties: lower id first). ``allowed``: SQL
    and parameters selecting the unit ids a filter lets through (applied inside the query)."""
    expr = match_expression(query)
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
