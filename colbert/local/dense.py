"""The in-memory first stage of the embedded index: every page's dense vector as stored by the collection's dense
codec, and (format version 2) every page's pooled sketch (:mod:`colbert.local.sketch`, ``k`` centroids) as int8.

Exact cosine top-K by one pass over the held rows: over 100k pages × 128 dims that is 12.8M multiply-adds
(~2–5 ms on two cores), and it cannot miss a neighbour the way an approximate graph can, so no HNSW is needed
at the sizes one machine serves (at 2048 dims and 1M pages it would be ~2 GB as int8 and ~0.5 s; that is the point
to put an HNSW in front, or to move to the Qdrant backend).

What a page costs in memory (d = dense_dim, k × D the sketch): 8 (id) + 1 (live mask) + the dense row as held by
:func:`colbert.local.dense_codec.held_dense` (float32 4·d + 4, int8 d + 4, binary d/8 + 4) when a first stage
that reads it (dense, or pooled with a dense prefetch) is the handle's default or has run + the sketch when a
pooled search has asked for it (k·D + 4·k: 1,056 bytes at 8 × 128; stored that way too in indexes made since the
``sketch_codec`` meta key, :mod:`colbert.local.sketch_codec`). Either kind of column not held is zero-wide, and
scoring it raises rather than answer from nothing. Rows are never decoded to float32 as a whole: scoring widens
a block at a time.

A :class:`DenseSnapshot` is immutable once published: searches hold a reference while writers publish newer
ones. Rows live in an append-only buffer shared between successive snapshots (a snapshot only reads
``[:n]``, and rows below any published ``n`` are never rewritten), so adding a document costs O(new rows) and
deleting one copies only the ``alive`` mask. The buffer is compacted when more than half of it is dead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from colbert.local.dense_codec import held_cosines, held_dense, widen_held
from colbert.local.sketch import sketch_scores
from colbert.local.sketch_codec import held_sketches

__all__ = ["DenseRows", "DenseSnapshot", "load_rows", "trim_heap"]

_MIN_CAPACITY = 1024
_LOAD_CHUNK = 1024  # rows fetched and converted at a time: ~2.5 MB of blobs, 4 MB of float32 sketch temporaries


@dataclass(frozen=True)
class DenseRows:
    """Pages' rows as held in memory, row-aligned: ids (m,) ascending, dense codes (m, w) and norms (m,)
    (:func:`colbert.local.dense_codec.held_dense`), sketch codes (m, k·D) int8 and scales (m, k) float32
    (:func:`colbert.local.sketch.quantize_sketches`; k = 0 without sketches)."""

    ids: np.ndarray
    dense: np.ndarray
    norms: np.ndarray
    sketch: np.ndarray
    scales: np.ndarray

    def take(self, rows: np.ndarray) -> DenseRows:
        return DenseRows(self.ids[rows], self.dense[rows], self.norms[rows], self.sketch[rows], self.scales[rows])

    def rows_of(self, page_ids: np.ndarray) -> np.ndarray:
        """Row indices of the given page ids (ascending) that these rows hold (ids they lack are dropped)."""
        n = self.ids.shape[0]
        if not n or not page_ids.size:
            return np.empty(0, dtype=np.int64)
        pos = np.searchsorted(self.ids, page_ids)  # (m,)
        inside = pos < n
        pos, want = pos[inside], page_ids[inside]
        out: np.ndarray = pos[self.ids[pos] == want]
        return out


_FIELDS = ("ids", "dense", "norms", "sketch", "scales")


def load_rows(
    conn: sqlite3.Connection,
    after_id: int,
    dense: tuple[int, str],
    sketch: tuple[int, int, str],
    *,
    with_dense: bool = True,
) -> DenseRows:
    """The held rows of the pages with ``id > after_id``: dense vectors by ``dense`` = (dim, codec) (``with_dense``
    False: none read, the dense columns zero-wide), sketches by ``sketch`` = (k, D, the index's sketch codec as of
    ``conn``'s transaction) (k = 0: none read)."""
    buf = _load(conn, after_id, dense, sketch, with_dense)
    return _empty(dense, sketch[0], sketch[1], with_dense) if buf is None else buf.view(buf.used)


def _load(
    conn: sqlite3.Connection, after_id: int, dense: tuple[int, str], sketch: tuple[int, int, str], with_dense: bool
) -> _Buffer | None:
    """:func:`load_rows` into a growing buffer (None: no rows), ``_LOAD_CHUNK`` rows at a time: the stored blobs
    never exist all at once, the conversion's temporaries stay a few MB (the heap keeps freed temporaries that lie
    below a live array, so large ones would stay resident), and no per-chunk array outlives its chunk."""
    k, d, sketch_codec = sketch
    vector = "p.dense" if with_dense else "x''"  # not wanted: not read
    sql = (
        f"SELECT p.id, {vector}, s.data FROM pages p JOIN sketches s ON s.page_id = p.id WHERE p.id > ? ORDER BY p.id"
        if k
        else f"SELECT p.id, {vector}, x'' FROM pages p WHERE p.id > ? ORDER BY p.id"  # no sketches wanted: none read
    )
    cursor = conn.execute(sql, (after_id,))
    buf: _Buffer | None = None
    while rows := cursor.fetchmany(_LOAD_CHUNK):
        m = len(rows)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=m)  # (m,)
        codes, norms = held_dense(b"".join(r[1] for r in rows), m, *dense) if with_dense else _no_dense(m)
        if k:  # int8 rows as stored, float16 ones quantized (colbert.local.sketch_codec)
            part = DenseRows(ids, codes, norms, *held_sketches(b"".join(r[2] for r in rows), m, k, d, sketch_codec))
        else:
            part = DenseRows(ids, codes, norms, np.empty((m, 0), np.int8), np.empty((m, 0), np.float32))
        buf = _Buffer(max(_MIN_CAPACITY, 2 * m), part) if buf is None else buf.with_room(m)
        buf.write(buf.used, part)
        buf.used += m
    return buf


def trim_heap() -> None:
    """Give the heap's free pages back to the system after a full load of a first stage (this snapshot, the ivf
    lists) (glibc's ``malloc_trim``; elsewhere nothing). glibc keeps freed memory that lies below a live
    allocation, and a load's temporaries and its buffer's earlier sizes are exactly that: measured at 20k pages,
    3.2 KB/page resident for 1.6 KB/page held, and 1.9 KB/page after the trim (the rest: SQLite's caches)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_LIBC = _glibc()


def _no_dense(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes and norms of ``m`` rows whose dense vectors are not held: zero-wide columns that cost nothing,
    and that no scoring can read by mistake (:meth:`DenseSnapshot.cosines` refuses them)."""
    return np.empty((m, 0), np.uint8), np.empty((m, 0), np.float32)


def _empty(dense: tuple[int, str], k: int, d: int, with_dense: bool = True) -> DenseRows:
    codes, norms = held_dense(b"", 0, *dense) if with_dense else _no_dense(0)
    return DenseRows(np.empty(0, np.int64), codes, norms, np.empty((0, k * d), np.int8), np.empty((0, k), np.float32))


class _Buffer:
    """Growable row storage (every :class:`DenseRows` field); ``used`` is how many rows any snapshot published."""

    def __init__(self, capacity: int, like: DenseRows) -> None:
        self.columns = {f: np.empty((capacity, *getattr(like, f).shape[1:]), getattr(like, f).dtype) for f in _FIELDS}
        self.used = 0

    @property
    def capacity(self) -> int:
        return int(self.columns["ids"].shape[0])

    def write(self, at: int, rows: DenseRows) -> None:
        for f in _FIELDS:
            self.columns[f][at : at + rows.ids.shape[0]] = getattr(rows, f)

    def with_room(self, m: int) -> _Buffer:
        """This buffer, or (when ``m`` more rows do not fit) a copy of its used rows with twice the room."""
        if self.used + m <= self.capacity:
            return self
        grown = _Buffer(max(2 * self.capacity, self.used + m), self.view(self.used))
        grown.write(0, self.view(self.used))
        grown.used = self.used
        return grown

    def view(self, n: int) -> DenseRows:
        return DenseRows(*(self.columns[f][:n] for f in _FIELDS))

    def nbytes(self, n: int) -> int:
        return sum(int(c[:n].nbytes) for c in self.columns.values())


@dataclass(frozen=True)
class DenseSnapshot:
    """Page ids (ascending), their held dense rows and sketches, and which rows are live, as of ``version``.

    ``version`` is (highest page id loaded, last deletion sequence number) — see :mod:`colbert.local.schema`.
    """

    version: tuple[int, int]
    dim: int
    codec: str  # the dense codec the rows are held in (colbert.local.dense_codec)
    sketch_k: int  # centroids per page in the sketches (0: no pooled first stage)
    n: int
    alive: np.ndarray  # (n,) bool
    n_alive: int
    _buffer: _Buffer

    @property
    def rows(self) -> DenseRows:
        return self._buffer.view(self.n)

    @property
    def ids(self) -> np.ndarray:
        return self._buffer.columns["ids"][: self.n]  # (n,) int64, ascending

    @property
    def nbytes(self) -> int:
        """Bytes the published rows and the live mask hold (the buffer's unused headroom is never touched)."""
        return self._buffer.nbytes(self.n) + int(self.alive.nbytes)

    def unit_rows(self, rows: np.ndarray) -> np.ndarray:
        """The float32 unit dense rows (r, dim) at row indices ``rows`` (what :meth:`top` scores)."""
        held = self._dense_rows()
        return widen_held(held.dense[rows], held.norms[rows], self.codec, self.dim)

    @classmethod
    def build(cls, version: tuple[int, int], dim: int, codec: str, rows: DenseRows) -> DenseSnapshot:
        """From all live pages' held rows (ids ascending); sketches are held when ``rows`` has them."""
        n = rows.ids.shape[0]
        buf = _Buffer(max(_MIN_CAPACITY, 2 * n), rows)
        buf.write(0, rows)
        buf.used = n
        return cls(version, dim, codec, rows.scales.shape[1], n, np.ones(n, dtype=bool), n, buf)

    @property
    def holds_dense(self) -> bool:
        """Whether the dense rows are held (else their columns are zero-wide: :func:`load_rows` ``with_dense``)."""
        return bool(self._buffer.columns["dense"].shape[1])

    @classmethod
    def load(
        cls,
        version: tuple[int, int],
        conn: sqlite3.Connection,
        dense: tuple[int, str],
        sketch: tuple[int, int, str],
        *,
        with_dense: bool = True,
    ) -> DenseSnapshot:
        """Every page's rows read in ``conn``'s transaction (:func:`load_rows`), held in the loader's buffer as it
        is (no copy: its doubling headroom serves later appends)."""
        buf = _load(conn, 0, dense, sketch, with_dense)
        trim_heap()
        if buf is None:
            return cls.build(version, *dense, _empty(dense, sketch[0], sketch[1], with_dense))
        n = buf.used
        return cls(version, *dense, sketch[0], n, np.ones(n, dtype=bool), n, buf)

    def apply(self, version: tuple[int, int], added: DenseRows, deleted_ids: Iterable[int]) -> DenseSnapshot:
        """A newer snapshot: ``added`` rows (ids ascending, above every id here; with sketches when this snapshot
        holds them) and ``deleted_ids`` marked dead."""
        alive = self.alive.copy()  # (n,) bool
        dead = np.fromiter(deleted_ids, dtype=np.int64)
        if dead.size:
            alive[self.rows_of(dead)] = False
        buf, n = self._buffer, self.n
        m = added.ids.shape[0]
        if m and (buf.used != n or n + m > buf.capacity):
            buf = self._grown(n + m, alive)
            alive = np.ones(buf.used, dtype=bool)
            n = buf.used
        elif not m and (n - int(alive.sum())) > max(_MIN_CAPACITY, n // 2):
            buf = self._grown(n, alive)
            alive = np.ones(buf.used, dtype=bool)
            n = buf.used
        if m:
            buf.write(n, added)
            buf.used = n + m
            alive = np.concatenate([alive, np.ones(m, dtype=bool)])
            n += m
        return DenseSnapshot(version, self.dim, self.codec, self.sketch_k, n, alive, int(alive.sum()), buf)

    def _grown(self, need: int, alive: np.ndarray) -> _Buffer:
        """A fresh buffer holding only the live rows, with room for ``need`` rows and doubling headroom."""
        live = np.flatnonzero(alive)  # (n_alive,)
        held = self.rows
        buf = _Buffer(max(_MIN_CAPACITY, 2 * (need - (self.n - live.size))), held)
        buf.write(0, held.take(live))
        buf.used = live.size
        return buf

    def cosines(self, query: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """(r,) float32 cosines of the unit ``query`` (dim,) with the rows at ``rows`` (None: every row; a live or
        filtered subset is gathered a block at a time, not copied whole)."""
        held = self._dense_rows()
        return held_cosines(held.dense, held.norms, self.codec, self.dim, query, rows)

    def _dense_rows(self) -> DenseRows:
        if not self.holds_dense:  # a snapshot loaded without them: never scored as if empty
            raise ValueError("this snapshot holds no dense rows")
        return self.rows

    def pooled_scores(
        self, query: np.ndarray, rows: np.ndarray | None = None, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """(r,) approximate MaxSim of ``query`` (Lq, d) against the sketches at ``rows`` (None: every row)
        (:func:`colbert.local.sketch.sketch_scores`)."""
        if not self.sketch_k:
            raise ValueError("this snapshot holds no sketches")
        held = self.rows
        return sketch_scores(held.sketch, held.scales, query, weights, rows)

    def top(self, query: np.ndarray, count: int, rows: np.ndarray | None = None) -> np.ndarray:
        """Page ids of the ``count`` best live rows by cosine (``query`` unit (dim,)), best first.

        ``rows`` restricts the scan to those row indices (a metadata filter's pages).
        """
        return self.best(query, count, rows)[0]

    def best(self, query: np.ndarray, count: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(page ids, cosines) of :meth:`top`: the scores it ranked by, not computed again."""
        rows = self._live(rows)
        return self._best(self.cosines(query, rows), count, rows)

    def top_pooled(
        self, query: np.ndarray, count: int, rows: np.ndarray | None = None, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """Page ids of the ``count`` best live rows by :meth:`pooled_scores` (``weights``: the query rows'),
        best first; ``rows`` restricts the scan as in :meth:`top`."""
        return self.best_pooled(query, count, rows, weights)[0]

    def best_pooled(
        self, query: np.ndarray, count: int, rows: np.ndarray | None = None, weights: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(page ids, approximate MaxSim scores) of :meth:`top_pooled`: the scores it ranked by."""
        if not self.sketch_k:
            raise ValueError("this snapshot holds no sketches")
        rows = self._live(rows)
        return self._best(self.pooled_scores(query, rows, weights), count, rows)

    def _live(self, rows: np.ndarray | None) -> np.ndarray | None:
        """The live ones of ``rows`` (None: every row, or None when every row is live)."""
        if rows is None:
            return np.flatnonzero(self.alive) if self.n_alive != self.n else None
        live: np.ndarray = rows[self.alive[rows]]
        return live

    def _best(self, scores: np.ndarray, count: int, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(page ids, their scores) of the ``count`` best of ``scores`` (one per row of ``rows``), best first."""
        r = scores.shape[0]
        if r == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        part = np.argpartition(-scores, count - 1)[:count] if count < r else np.arange(r)  # (≤count,) unordered
        order = part[np.argsort(-scores[part], kind="stable")]  # (count,) best first
        chosen = order if rows is None else rows[order]
        return self.ids[chosen], np.asarray(scores[order], dtype=np.float32)

    def rows_of(self, page_ids: np.ndarray) -> np.ndarray:
        """Row indices of the given page ids that this snapshot holds (ids it lacks are dropped)."""
        return self.rows.rows_of(page_ids)
