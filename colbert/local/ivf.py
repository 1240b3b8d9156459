"""The inverted-file first stage of the embedded index (``first_stage="ivf"``; residual codecs only).

Every unit of a residual-coded collection stores the distinct centroid ids of its tokens (``unit_centroids``,
:mod:`colbert.local.codes`: one row per unit, written and deleted in the unit's transaction, so a document's
postings change atomically with it and no rebuild is ever needed on disk). In memory, :class:`IvfSnapshot` holds
the inverse: per centroid, the rows of the units holding a token of it, in append-only per-centroid buffers shared
by successive snapshots (a snapshot reads each list up to its own length), plus the rows' page ids and a live
mask (deleted units are tombstones until more than half the rows are dead, then the view is reloaded).

Scoring a query (PLAID's candidate generation and centroid interaction, with WARP's imputation):

1. ``cs = q · centroidsᵀ`` (Lq × K); each query token i probes its ``nprobe`` best centroids ``P_i``.
2. A unit's approximate score is ``Σ_i max(m_i, max_{c ∈ P_i ∩ unit} cs[i, c])`` where ``m_i`` is token i's
   best score among the centroids it does not probe (a unit holding none of ``P_i`` is imputed ``m_i``: any
   other centroid it holds scores at most that). Only the probed lists are read: ``Σ_i Σ_{c ∈ P_i} |list c|``
   entries, about ``Lq · nprobe · (distinct centroids per unit) / K`` per unit, far below a scan of every
   unit's vectors (plus one pass of O(units) bookkeeping: a zeroed score array and a top-k selection).
3. The best ``candidates`` live (and filter-allowed) units by that score go to the exact rerank over their stored
   codes. Every allowed unit has a score (imputed or not), so a selective filter still yields
   ``min(candidates, allowed)`` candidates: the probed lists only order them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = ["Centroids", "IvfSnapshot", "ivf_top", "load_centroid_lists"]


class Centroids(Protocol):
    """What the lists are filed under: a residual codebook (:class:`colbert.codebook.Codebook`) or the sketch
    cells (:class:`colbert.local.cells.CellBook`)."""

    @property
    def k(self) -> int: ...

    @property
    def centroids(self) -> np.ndarray: ...


_MIN_CAPACITY = 16


class _Lists:
    """Per-centroid append-only buffers of unit rows (int32); rows below any published length never change."""

    def __init__(self, k: int) -> None:
        self.buffers = [np.empty(_MIN_CAPACITY, dtype=np.int32) for _ in range(k)]
        self.used = np.zeros(k, dtype=np.int64)  # entries written (≥ any snapshot's lengths)

    def append(self, centroid: int, rows: np.ndarray) -> None:
        buf, used = self.buffers[centroid], int(self.used[centroid])
        if used + rows.size > buf.size:
            grown = np.empty(max(2 * buf.size, used + rows.size), dtype=np.int32)
            grown[:used] = buf[:used]
            self.buffers[centroid] = buf = grown  # older snapshots read the same prefix from either buffer
        buf[used : used + rows.size] = rows
        self.used[centroid] = used + rows.size


@dataclass(frozen=True)
class IvfSnapshot:
    """The inverted lists as of ``version`` (the dense snapshot's (max page id, last deletion seq))."""

    version: tuple[int, int]
    ids: np.ndarray  # (n,) page ids of the rows, ascending
    alive: np.ndarray  # (n,) bool
    lengths: np.ndarray  # (K,) entries of each list this snapshot sees
    _lists: _Lists

    @property
    def n(self) -> int:
        return int(self.ids.shape[0])

    @property
    def entries(self) -> int:
        return int(self.lengths.sum())

    def postings(self, centroid: int) -> np.ndarray:
        return self._lists.buffers[centroid][: self.lengths[centroid]]

    @classmethod
    def build(cls, version: tuple[int, int], k: int, ids: np.ndarray, lists: list[np.ndarray]) -> IvfSnapshot:
        """From every live unit: ``ids`` (n,) ascending and each unit's distinct centroid ids."""
        empty = cls(version, np.empty(0, np.int64), np.empty(0, bool), np.zeros(k, np.int64), _Lists(k))
        return empty.apply(version, ids, lists, ())

    def apply(
        self, version: tuple[int, int], added_ids: np.ndarray, added: list[np.ndarray], deleted_ids: Iterable[int]
    ) -> IvfSnapshot:
        """A newer snapshot: units ``added_ids`` (ascending, above every id here) with their centroid lists, and
        ``deleted_ids`` marked dead."""
        alive = self.alive.copy()
        dead = np.fromiter(deleted_ids, dtype=np.int64)
        if dead.size and self.n:
            pos = np.clip(np.searchsorted(self.ids, dead), 0, self.n - 1)
            alive[pos[self.ids[pos] == dead]] = False
        ids = self.ids
        if len(added_ids):
            rows = self.n + np.repeat(np.arange(len(added_ids)), [c.size for c in added]).astype(np.int32)
            cids = np.concatenate(added).astype(np.int64)
            order = np.argsort(cids, kind="stable")
            cids, rows = cids[order], rows[order]
            cuts = np.flatnonzero(np.diff(cids)) + 1
            for part_c, part_r in zip(np.split(cids, cuts), np.split(rows, cuts), strict=True):
                if part_c.size:
                    self._lists.append(int(part_c[0]), part_r)
            ids = np.concatenate([ids, np.asarray(added_ids, dtype=np.int64)])
            alive = np.concatenate([alive, np.ones(len(added_ids), dtype=bool)])
        return IvfSnapshot(version, ids, alive, self._lists.used.copy(), self._lists)

    def too_sparse(self) -> bool:
        """More than half the rows are tombstones (the caller reloads the view)."""
        return self.n > 1024 and int(self.alive.sum()) < self.n // 2

    def rows_of(self, page_ids: np.ndarray) -> np.ndarray:
        if not self.n or not page_ids.size:
            return np.empty(0, dtype=np.int64)
        pos = np.clip(np.searchsorted(self.ids, page_ids), 0, self.n - 1)
        out: np.ndarray = pos[self.ids[pos] == page_ids]
        return out

    def nbytes(self) -> int:
        return int(self.ids.nbytes + self.alive.nbytes + 4 * self.entries)


def load_centroid_lists(conn: sqlite3.Connection, after_id: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Page ids (m,) ascending above ``after_id`` that have centroid lists, and those lists (uint16)."""
    rows = conn.execute(
        "SELECT page_id, data FROM unit_centroids WHERE page_id > ? ORDER BY page_id", (after_id,)
    ).fetchall()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    return ids, [np.frombuffer(r[1], dtype="<u2") for r in rows]


def ivf_top(
    snap: IvfSnapshot, book: Centroids, q: np.ndarray, count: int, nprobe: int, allowed: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(page ids (≤count,), approximate scores) best first (module docstring); ``allowed``: page ids a filter
    lets through (None: all)."""
    if snap.n == 0 or q.shape[0] == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    cs = (np.ascontiguousarray(q, dtype=np.float32) @ book.centroids.T).astype(np.float32)  # (Lq, K)
    probe = min(max(1, nprobe), book.k)
    reach = min(probe + 1, book.k)  # the probed centroids and the best unprobed one (the imputed floor)
    best = np.argpartition(-cs, reach - 1, axis=1)[:, :reach]  # (Lq, reach)
    gains = np.zeros(snap.n, dtype=np.float32)  # (n,) Σ_i (token i's best probed score − m_i)
    scratch = np.zeros(snap.n, dtype=np.float32)
    base = 0.0
    for i in range(cs.shape[0]):
        ascending = best[i][np.argsort(cs[i, best[i]])]  # weakest first
        floor = float(cs[i, ascending[0]]) if reach > probe else 0.0  # every centroid probed: no imputation
        probed = ascending[1:] if reach > probe else ascending
        base += floor
        touched = []
        for c in probed:  # ascending: a unit in several lists keeps its best gain (the last write)
            rows = snap.postings(int(c))
            scratch[rows] = cs[i, c] - floor
            touched.append(rows)
        if touched:
            rows = np.concatenate(touched)
            gains[rows] += scratch[rows]  # duplicates add once (buffered fancy indexing)
            scratch[rows] = 0.0
    rows = _choosable(snap, gains, count, allowed)  # (m,) ascending, so ascending page ids
    if rows.size > count:  # the best ``count``; at the boundary, ties go to the lowest page ids
        g = gains[rows]
        kth = -np.partition(-g, count - 1)[count - 1]
        above, tied = rows[g > kth], rows[g == kth]
        rows = np.concatenate([above, tied[: count - above.size]])
    rows = rows[np.lexsort((snap.ids[rows], -gains[rows]))]  # best first, ties by page id
    return snap.ids[rows], (gains[rows] + np.float32(base)).astype(np.float32)


def _choosable(snap: IvfSnapshot, gains: np.ndarray, count: int, allowed: np.ndarray | None) -> np.ndarray:
    """The rows the best ``count`` live, allowed rows by ``gains`` are among: with no filter, the live rows a probed
    list raised above the floor when there are ``count`` of them (every other row's gain is 0, so none of them
    can be better: the top-``count`` selection then runs over the lists' reach, not over every unit)."""
    if allowed is not None:
        return np.flatnonzero(_allowed_mask(snap, allowed))
    raised = np.flatnonzero(gains > 0)
    raised = raised[snap.alive[raised]]
    return raised if raised.size >= count else np.flatnonzero(snap.alive)


def _allowed_mask(snap: IvfSnapshot, allowed: np.ndarray) -> np.ndarray:
    mask = np.zeros(snap.n, dtype=bool)
    mask[snap.rows_of(allowed)] = True
    out: np.ndarray = mask & snap.alive
    return out
