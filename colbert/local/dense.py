"""The in-memory first stage of the embedded index: every page's unit dense vector in one float32 matrix, and
(format version 2) every page's pooled sketch (:mod:`colbert.local.sketch`, ``k`` bf16 centroids) in a second one.

Exact cosine top-K by one matrix-vector product: over 100k pages × 128 dims that is 12.8M multiply-adds
(~2–5 ms on two cores), and it cannot miss a neighbour the way an approximate graph can, so no HNSW is needed
at the sizes one machine serves (at 2048 dims and 1M pages it would be ~8 GB and ~0.5 s; that is the point to
put an HNSW in front, or to move to the Qdrant backend).

A :class:`DenseSnapshot` is immutable once published: searches hold a reference while writers publish newer
ones. Rows live in an append-only buffer shared between successive snapshots (a snapshot only reads
``[:n]``, and rows below any published ``n`` are never rewritten), so adding a document costs O(new rows) and
deleting one copies only the ``alive`` mask. The buffer is compacted when more than half of it is dead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from colbert.local.sketch import sketch_scores

__all__ = ["DenseSnapshot"]

_MIN_CAPACITY = 1024


class _Buffer:
    """Growable row storage; ``used`` is how many rows any snapshot has published."""

    def __init__(self, capacity: int, dim: int, sketch_width: int) -> None:
        self.ids = np.empty(capacity, dtype=np.int64)  # (capacity,)
        self.matrix = np.empty((capacity, dim), dtype=np.float32)  # (capacity, dim)
        self.sketch = np.empty((capacity, sketch_width), dtype=np.uint16)  # (capacity, k·d) bf16 bits
        self.used = 0

    @property
    def capacity(self) -> int:
        return int(self.ids.shape[0])


@dataclass(frozen=True)
class DenseSnapshot:
    """Page ids (ascending), their unit dense rows, and which rows are live, as of ``version``.

    ``version`` is (highest page id loaded, last deletion sequence number) — see :mod:`colbert.local.schema`.
    """

    version: tuple[int, int]
    dim: int
    sketch_k: int  # centroids per page in ``sketch`` (0: no pooled first stage)
    n: int
    alive: np.ndarray  # (n,) bool
    n_alive: int
    _buffer: _Buffer

    @property
    def ids(self) -> np.ndarray:
        return self._buffer.ids[: self.n]  # (n,) int64, ascending

    @property
    def matrix(self) -> np.ndarray:
        return self._buffer.matrix[: self.n]  # (n, dim) float32, unit rows

    @property
    def sketch(self) -> np.ndarray:
        return self._buffer.sketch[: self.n]  # (n, k·d) uint16 bf16 bits (see colbert.local.sketch)

    @classmethod
    def build(
        cls,
        version: tuple[int, int],
        dim: int,
        ids: np.ndarray,
        matrix: np.ndarray,
        sketch: np.ndarray | None = None,
        sketch_k: int = 0,
    ) -> DenseSnapshot:
        """From all live pages: ``ids`` (n,) ascending, ``matrix`` (n, dim) unit rows, ``sketch`` (n, k·d)
        bf16 bits with ``k = sketch_k`` (None: no sketches, ``sketch_k`` 0)."""
        width = 0 if sketch is None else sketch.shape[1]
        buf = _Buffer(max(_MIN_CAPACITY, 2 * len(ids)), dim, width)
        n = len(ids)
        buf.ids[:n] = ids
        buf.matrix[:n] = matrix
        if sketch is not None:
            buf.sketch[:n] = sketch
        buf.used = n
        return cls(version, dim, sketch_k if width else 0, n, np.ones(n, dtype=bool), n, buf)

    def apply(
        self,
        version: tuple[int, int],
        added_ids: np.ndarray,
        added: np.ndarray,
        deleted_ids: Iterable[int],
        added_sketch: np.ndarray | None = None,
    ) -> DenseSnapshot:
        """A newer snapshot. ``added_ids`` (m,) ascending, above every id here; ``added`` (m, dim) unit;
        ``added_sketch`` (m, k·d) bf16 bits when this snapshot holds sketches."""
        alive = self.alive.copy()  # (n,) bool
        dead = np.fromiter(deleted_ids, dtype=np.int64)
        if dead.size:
            alive[self.rows_of(dead)] = False
        buf, n = self._buffer, self.n
        m = len(added_ids)
        if m and (buf.used != n or n + m > buf.capacity):
            buf = self._grown(n + m, alive)
            alive = np.ones(buf.used, dtype=bool)
            n = buf.used
        elif not m and (n - int(alive.sum())) > max(_MIN_CAPACITY, n // 2):
            buf = self._grown(n, alive)
            alive = np.ones(buf.used, dtype=bool)
            n = buf.used
        if m:
            buf.ids[n : n + m] = added_ids
            buf.matrix[n : n + m] = added
            if added_sketch is not None and buf.sketch.shape[1]:
                buf.sketch[n : n + m] = added_sketch
            buf.used = n + m
            alive = np.concatenate([alive, np.ones(m, dtype=bool)])
            n += m
        return DenseSnapshot(version, self.dim, self.sketch_k, n, alive, int(alive.sum()), buf)

    def _grown(self, need: int, alive: np.ndarray) -> _Buffer:
        """A fresh buffer holding only the live rows, with room for ``need`` rows and doubling headroom."""
        live = np.flatnonzero(alive)  # (n_alive,)
        buf = _Buffer(max(_MIN_CAPACITY, 2 * (need - (self.n - live.size))), self.dim, self._buffer.sketch.shape[1])
        buf.ids[: live.size] = self.ids[live]
        buf.matrix[: live.size] = self.matrix[live]
        buf.sketch[: live.size] = self.sketch[live]
        buf.used = live.size
        return buf

    def top(self, query: np.ndarray, count: int, rows: np.ndarray | None = None) -> np.ndarray:
        """Page ids of the ``count`` best live rows by cosine (``query`` unit (dim,)), best first.

        ``rows`` restricts the scan to those row indices (a metadata filter's pages).
        """
        rows = self._live(rows)
        matrix = self.matrix if rows is None else self.matrix[rows]  # (r, dim)
        return self._best(matrix @ query, count, rows)  # (r,) cosines

    def top_pooled(
        self, query: np.ndarray, count: int, rows: np.ndarray | None = None, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """Page ids of the ``count`` best live rows by approximate MaxSim of ``query`` (Lq, d) (rows weighted by
        ``weights``) against the sketches (:func:`colbert.local.sketch.sketch_scores`), best first; ``rows``
        restricts the scan as in :meth:`top`."""
        if not self.sketch_k:
            raise ValueError("this snapshot holds no sketches")
        rows = self._live(rows)
        sketch = self.sketch if rows is None else self.sketch[rows]  # (r, k·d)
        return self._best(sketch_scores(sketch, self.sketch_k, query, weights), count, rows)

    def _live(self, rows: np.ndarray | None) -> np.ndarray | None:
        """The live ones of ``rows`` (None: every row, or None when every row is live)."""
        if rows is None:
            return np.flatnonzero(self.alive) if self.n_alive != self.n else None
        live: np.ndarray = rows[self.alive[rows]]
        return live

    def _best(self, scores: np.ndarray, count: int, rows: np.ndarray | None) -> np.ndarray:
        r = scores.shape[0]
        if r == 0:
            return np.empty(0, dtype=np.int64)
        part = np.argpartition(-scores, count - 1)[:count] if count < r else np.arange(r)  # (≤count,) unordered
        order = part[np.argsort(-scores[part], kind="stable")]  # (count,) best first
        chosen = order if rows is None else rows[order]
        out: np.ndarray = self.ids[chosen]
        return out

    def rows_of(self, page_ids: np.ndarray) -> np.ndarray:
        """Row indices of the given page ids that this snapshot holds (ids it lacks are dropped)."""
        if not self.n or not page_ids.size:
            return np.empty(0, dtype=np.int64)
        pos = np.searchsorted(self.ids, page_ids)  # (m,)
        inside = pos < self.n
        pos, want = pos[inside], page_ids[inside]
        out: np.ndarray = pos[self.ids[pos] == want]
        return out
