"""BM25 of the embedded backend (:mod:`colbert.bm25`), computed in memory over FTS5's own postings.

Why: FTS5 stores the inverted index well (on disk, in the unit's transaction), but its ``bm25()`` is an auxiliary
function called once per matching row, which re-reads that row's position lists: ~0.5 µs per posting, so a
query with a word on 40 % of 100k pages spends ~20 ms in BM25 alone (bench/README.md, "Hybrid search"). Here
the same formula runs as a few numpy operations over cached posting lists (~10 ns per posting).

* :class:`TextUnits` — what FTS5 holds per unit: id, token count (FTS5's own ``unit_fts_docsize``) and whether
  it is live. Immutable once published; brought up to date with the dense snapshot, in the same read transaction
  (:meth:`colbert.local.handle.LocalHandle._synced`): new units are read by id range, deleted ones from the
  deletion log. Rows are never renumbered within one ``generation``.
* :class:`PostingCache` — term → (rows into :class:`TextUnits`, term frequency), read from FTS5 (an
  ``fts5vocab`` instance table) on first use and kept, least recently used first out, within ``max_bytes``. An
  entry holds the units below the ``n`` it was read at; for a view with more units, FTS5 finds the newer units
  holding the term (a rowid-range seek) and their stored text gives its count (up to :data:`_EXTEND_MAX` of
  them; more, and the whole list is read again; that count is right because the index was built by this code's
  tokeniser rules, which every sync checks: :mod:`colbert.local.handle`). Deletions are masked by ``alive``.
* :func:`bm25_top` — :mod:`colbert.bm25`'s formula (Lucene's IDF, always positive) with N = live units with
  text, avgdl = their tokens / N; score = Σ over the query's distinct terms in order of ``idf · w`` in float64
  (the order of FTS5's ``bm25()``, whose loop this follows; its IDF differs: see :mod:`colbert.bm25`); ties by
  lower id. ``tests/colbert/test_bm25.py`` checks the scores and the order against a plain Python BM25 over the
  stored texts.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from colbert.bm25 import K1, B, idf
from colbert.text import tokens

__all__ = ["PostingCache", "TextUnits", "bm25_top", "load_text_units"]

_REBUILD_DEAD = 1024  # dead rows tolerated before a rebuild, at least (and at least half of the rows)
_EXTEND_MAX = 64  # newer units holding a cached term that are added to its entry one by one, at most
_UNITS_KEPT = 256  # recent units whose term counts are kept for those additions
_INSTANCES_DDL = "CREATE VIRTUAL TABLE IF NOT EXISTS temp.unit_fts_instances USING fts5vocab(main, unit_fts, instance)"


def _varint(blob: bytes) -> int:
    """The first SQLite varint of ``blob`` (FTS5's docsize record: one per column; this table has one)."""
    value = 0
    for i, byte in enumerate(blob):
        if i == 8:
            return (value << 8) | byte
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            break
    return value


def load_text_units(conn: sqlite3.Connection, above: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids (m,) ascending, token counts (m,)) of the units FTS5 holds with id > ``above``."""
    rows = conn.execute("SELECT id, sz FROM unit_fts_docsize WHERE id > ? ORDER BY id", (above,)).fetchall()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    lengths = np.fromiter((_varint(r[1]) for r in rows), dtype=np.int32, count=len(rows))
    return ids, lengths


@dataclass(frozen=True)
class TextUnits:
    """The units FTS5 indexes (those with at least one token), as of one read transaction."""

    generation: int  # changes whenever rows are renumbered (a rebuild); PostingCache entries of another are stale
    ids: np.ndarray  # (n,) int64 ascending
    lengths: np.ndarray  # (n,) int32 tokens per unit (FTS5's docsize)
    alive: np.ndarray  # (n,) bool
    n_alive: int
    tokens_alive: int  # Σ lengths over live units (FTS5's total size)

    @property
    def n(self) -> int:
        return int(self.ids.shape[0])

    @classmethod
    def build(cls, generation: int, ids: np.ndarray, lengths: np.ndarray) -> TextUnits:
        return cls(generation, ids, lengths, np.ones(ids.size, dtype=bool), int(ids.size), int(lengths.sum()))

    def apply(self, ids: np.ndarray, lengths: np.ndarray, deleted: Iterable[int]) -> TextUnits:
        """A newer view: ``ids`` (above every id here) added, ``deleted`` ids (any, text or not) dropped. Rebuilt
        with only the live rows (a new generation) when more than half of the rows are dead."""
        alive = self.alive.copy()
        dead = np.fromiter(deleted, dtype=np.int64)
        if dead.size and self.n:
            pos = np.minimum(np.searchsorted(self.ids, dead), self.n - 1)
            alive[pos[self.ids[pos] == dead]] = False
        killed = self.lengths[self.alive & ~alive]
        n_alive, tokens = self.n_alive - killed.size, self.tokens_alive - int(killed.sum())
        all_ids, all_lengths = np.concatenate([self.ids, ids]), np.concatenate([self.lengths, lengths])
        alive = np.concatenate([alive, np.ones(ids.size, dtype=bool)])
        n_alive, tokens = n_alive + ids.size, tokens + int(lengths.sum())
        if all_ids.size - n_alive > max(_REBUILD_DEAD, all_ids.size // 2):
            return TextUnits.build(self.generation + 1, all_ids[alive], all_lengths[alive])
        return TextUnits(self.generation, all_ids, all_lengths, alive, n_alive, tokens)

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Row indices of the given unit ids that this view holds, live or not (others are dropped)."""
        if not self.n or not ids.size:
            return np.empty(0, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.ids, ids), self.n - 1)
        out: np.ndarray = pos[self.ids[pos] == ids]
        return out


@dataclass(frozen=True)
class _Postings:
    generation: int
    n: int  # units the entry covers: rows < n
    rows: np.ndarray  # (p,) int32 ascending
    tf: np.ndarray  # (p,) uint16 (saturating: a unit holds at most 65,535 of one term)

    @property
    def nbytes(self) -> int:
        return int(self.rows.nbytes + self.tf.nbytes)


class PostingCache:
    """Posting lists of query terms, read from FTS5 on first use; thread-safe, bounded by ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Postings] = OrderedDict()
        self._bytes = 0
        self.reads = 0  # whole posting lists read from FTS5 (a cache miss)
        self._units: OrderedDict[int, Counter[str]] = OrderedDict()  # recent units' term counts (_unit_terms)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._bytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._units.clear()
            self._bytes = 0

    def postings(self, conn: sqlite3.Connection, units: TextUnits, term: str) -> tuple[np.ndarray, np.ndarray]:
        """(rows (p,), term frequencies (p,)) of ``term`` among ``units``' rows, live or not. ``conn``'s read
        transaction must be the one ``units`` was synced in (it is read when the cache lacks the term)."""
        entry = self._current(conn, units, term)
        if entry is None:
            entry = self._read(conn, units, term)
            self.reads += 1
            self._store(term, entry)
        if entry.n == units.n:
            return entry.rows, entry.tf
        cut = int(np.searchsorted(entry.rows, units.n))  # an entry read by a newer search: drop its newer rows
        return entry.rows[:cut], entry.tf[:cut]

    def cached_docs(self, conn: sqlite3.Connection, units: TextUnits, term: str) -> int | None:
        """How many live units hold ``term`` (FTS5's document count), when its list is cached; None otherwise."""
        entry = self._current(conn, units, term)
        if entry is None:
            return None
        rows = entry.rows[: int(np.searchsorted(entry.rows, units.n))]
        return int(np.count_nonzero(units.alive[rows]))

    def _current(self, conn: sqlite3.Connection, units: TextUnits, term: str) -> _Postings | None:
        """The cached entry of ``term`` covering ``units`` (extended to its newer units if need be), or None."""
        with self._lock:
            entry = self._entries.get(term)
            if entry is None or entry.generation != units.generation:
                return None
            self._entries.move_to_end(term)
        if entry.n < units.n:
            extended = self._extended(conn, units, term, entry)
            if extended is None:
                return None
            self._store(term, extended)
            return extended
        return entry

    @staticmethod
    def _read(conn: sqlite3.Connection, units: TextUnits, term: str) -> _Postings:
        conn.execute(_INSTANCES_DDL)
        # one id per occurrence, ascending; joined in SQLite and parsed by numpy: 2-3x faster than a row each
        (joined,) = conn.execute("SELECT group_concat(doc, ' ') FROM temp.unit_fts_instances WHERE term = ?", (term,))
        docs = np.fromstring(joined[0] or "", dtype=np.int64, sep=" ")
        ids, counts = np.unique(docs, return_counts=True)
        rows = units.rows_of(ids)
        if rows.size != ids.size:  # the transaction sees units the view lacks: a caller bug, never a wrong score
            raise RuntimeError(f"term {term!r}: FTS5 holds {ids.size - rows.size} units the text view lacks")
        tf = np.minimum(counts, np.iinfo(np.uint16).max).astype(np.uint16)
        return _Postings(units.generation, units.n, rows.astype(np.int32), tf)

    def _extended(self, conn: sqlite3.Connection, units: TextUnits, term: str, entry: _Postings) -> _Postings | None:
        """``entry`` brought up to ``units.n``: FTS5 finds the newer units holding the term (a rowid-range seek),
        their stored text gives its count (each unit's text tokenised once: :meth:`_unit_terms`). None (read the
        whole list again) when there are many of them."""
        first = int(units.ids[entry.n])
        found = conn.execute(
            "SELECT rowid FROM unit_fts WHERE unit_fts MATCH ? AND rowid >= ? LIMIT ?",
            (f'"{term}"', first, _EXTEND_MAX + 1),
        ).fetchall()
        if len(found) > _EXTEND_MAX:
            return None
        ids = np.sort(np.fromiter((r[0] for r in found), dtype=np.int64, count=len(found)))
        terms = self._unit_terms(conn, ids)
        counts = np.fromiter((terms[int(i)][term] for i in ids), dtype=np.int64, count=ids.size)
        rows = units.rows_of(ids)
        if rows.size != ids.size or (counts == 0).any():  # not what FTS5 indexed: never guess, read it again
            return None
        tf = np.minimum(counts, np.iinfo(np.uint16).max).astype(np.uint16)
        rows = np.concatenate([entry.rows, rows.astype(np.int32)])
        return _Postings(entry.generation, units.n, rows, np.concatenate([entry.tf, tf]))

    def _unit_terms(self, conn: sqlite3.Connection, ids: np.ndarray) -> dict[int, Counter[str]]:
        """Term counts of the units ``ids`` from their stored text, the last :data:`_UNITS_KEPT` kept (a write's
        new units are asked for once per cached term of every query that follows it)."""
        with self._lock:
            known = {int(i): self._units[int(i)] for i in ids if int(i) in self._units}
        missing = [int(i) for i in ids if int(i) not in known]
        if missing:
            rows = conn.execute(
                "SELECT page_id, text FROM unit_text WHERE page_id IN (SELECT value FROM json_each(?))",
                (json.dumps(missing),),
            ).fetchall()
            fresh = {int(uid): Counter(tokens(text)) for uid, text in rows}
            known.update(fresh)
            with self._lock:
                self._units.update(fresh)
                while len(self._units) > _UNITS_KEPT:
                    self._units.popitem(last=False)
        return {i: known.get(i, Counter()) for i in (int(j) for j in ids)}

    def _store(self, term: str, entry: _Postings) -> None:
        if entry.nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(term, None)
            if old is not None:
                self._bytes -= old.nbytes
            if old is not None and (old.generation, old.n) > (entry.generation, entry.n):
                entry = old  # keep the newer of two concurrent reads
            self._entries[term] = entry
            self._bytes += entry.nbytes
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.nbytes


def bm25_top(
    conn: sqlite3.Connection,
    units: TextUnits,
    cache: PostingCache,
    terms: Sequence[str],
    limit: int,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(unit ids (≤limit,), BM25 scores (≤limit,)) of the live units holding any of ``terms``, best first, ties
    by lower id (module docstring). ``allowed``: the unit ids a filter lets through
    (ascending; None: all); it narrows the result, not N or the IDF (as FTS5 with ``rowid IN (…)``)."""
    if not terms or units.n_alive == 0 or limit < 1:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    n_rows = float(units.n_alive)
    avgdl = float(units.tokens_alive) / n_rows
    scores = np.zeros(units.n, dtype=np.float64)  # (n,) accumulated over terms, in the query's order
    for term in terms:
        rows, tf = cache.postings(conn, units, term)
        live = units.alive[rows]
        rows, tf = rows[live], tf[live]
        if not rows.size:
            continue
        weight = idf(n_rows, float(rows.size))  # > 0: every word of the query counts, however common
        freq = tf.astype(np.float64)
        size = units.lengths[rows].astype(np.float64)
        scores[rows] += weight * ((freq * (K1 + 1.0)) / (freq + K1 * (1 - B + B * size / avgdl)))
    found = np.flatnonzero(scores)  # (m,) ascending rows = ascending ids; every contribution is > 0
    if allowed is not None:
        found = found[np.isin(units.ids[found], allowed)]
    if found.size > limit:  # the best ``limit``; of units tied at the cut, the lower ids (as FTS5's ORDER BY)
        cut = np.partition(scores[found], found.size - limit)[found.size - limit]
        above, tied = found[scores[found] > cut], found[scores[found] == cut]
        found = np.concatenate([above, tied[: limit - above.size]])
    order = found[np.argsort(-scores[found], kind="stable")]
    return units.ids[order], scores[order].astype(np.float32)
