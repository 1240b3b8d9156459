"""Training a collection's sketch cells (:mod:`colbert.local.cells`) and filing every unit under them, at once.

Two ways in: the explicit step (``LocalStore.train_cells``; ``python -m service collections train-cells``, which
may choose K or train before a collection is large) and the automatic one (:mod:`colbert.local.auto_cells`: in the
background, once a collection without cells holds ``LocalOptions.auto_cells_units`` live units). Either way:

1. outside the write lock, from one read snapshot: the cell book is trained on a sample of the held sketches
   (unless one is stored: then that one is used) and every live unit of the snapshot without a cell row is
   assigned its cells, ``_FILE_BLOCK`` units at a time (the widened sketches of one block in memory; the result
   packed as uint16 lists, ~10 bytes a unit); readers and writers go on meanwhile;
2. in ONE write transaction: the book is stored (INSERT OR IGNORE: a concurrent trainer's book, stored first,
   wins, and the rows computed for ours are dropped), the rows inserted (units deleted since the snapshot are
   skipped), every unit still without a row filed (the units committed after the snapshot, written while no book
   existed so :func:`colbert.local.cells.new_unit_cells` gave them none; every unfiled unit when the other book
   won) and ``meta.cells_generation`` bumped.

A retraining (:func:`retrain_cells`, automatic once the collection has grown so that the default K is ``GROWTH``
× the stored one) is the same with a new book trained whatever is stored: its transaction deletes the old book
and every row first, and files again the units written meanwhile (their own writes filed them under the old
book).

So a ``pooled_ivf`` search sees either no book (unavailable; ``LocalOptions.first_stage`` falls back to
``pooled``) or a book with a row for every unit, never a book whose lists miss units; a process killed at any
moment leaves one or the other. ``stop`` (set by a closing store) is checked between k-means rounds and between
blocks: once set, nothing is written and ``TrainingStopped`` is raised. The transaction writes one row per unit
(its hold time: 0.25–0.4 s at 100k units, ``bench/cell_filing.py``; docs/notes/2026-12-07g/autocells.md).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from colbert.errors import InvalidDocumentError
from colbert.local.cells import (
    CellBook,
    bump_generation,
    cell_lists,
    choose_cells,
    load_cell_book,
    packed_lists,
    store_cell_book,
    train_cell_book,
)
from colbert.local.dense import DenseRows, DenseSnapshot, load_rows
from colbert.local.schema import read_sketch_codec
from colbert.local.sketch import widen_sketches

if TYPE_CHECKING:
    from colbert.local.handle import LocalHandle

__all__ = ["GROWTH", "TrainingStopped", "retrain_cells", "retrain_units", "train_cells"]

GROWTH = 2  # a book is replaced once the default K for the live units reaches GROWTH × its K: within 2× of the default
_SAMPLE_PER_CELL = 64  # sketch centroids sampled per cell to train on
_FILE_BLOCK = 4096  # units assigned at a time (their widened sketches: 4 KiB a unit at 8 × 128)
_INSERT = (  # a unit deleted since its cells were computed is skipped
    "INSERT OR IGNORE INTO unit_cells (page_id, data) SELECT ?, ? WHERE EXISTS (SELECT 1 FROM pages WHERE id = ?)"
)


class TrainingStopped(Exception):
    """The training was asked to stop (its store is closing) before its transaction; nothing was written."""


@dataclass(frozen=True, slots=True)
class _Assigned:
    """Units' cell lists, packed: ids (m,), the ascending distinct cell ids of all concatenated, each one's end."""

    ids: np.ndarray
    cells: np.ndarray
    ends: np.ndarray

    def params(self) -> Iterator[tuple[int, bytes, int]]:
        """The ``_INSERT`` parameters of each unit, made as they are bound (one small bytes object at a time)."""
        for unit, data in zip(self.ids.tolist(), packed_lists(self.cells, self.ends), strict=True):
            yield unit, data, unit


def train_cells(
    store: LocalHandle, k: int | None = None, *, seed: int = 0, stop: threading.Event | None = None
) -> tuple[CellBook, int]:
    """The collection's cell book (trained and stored now unless there is one) and the units filed now, the book
    and every unit's row made visible together (module docstring)."""
    with store._read() as conn:
        snap, _ = store._views_for(conn, sketches=True)
        book = load_cell_book(conn, store._path)
        filed = np.fromiter((r[0] for r in conn.execute("SELECT page_id FROM unit_cells")), dtype=np.int64)
    book = _trained(snap, k, seed, stop) if book is None else book
    unfiled = np.flatnonzero(snap.alive & ~np.isin(snap.ids, filed))  # (m,) held rows without a cell row
    assigned = _assign(book, snap.rows, unfiled, stop)
    _check(stop)
    with store._write() as conn:
        return _file(store, conn, book, assigned, snap)


def retrain_units(k: int, per_page: int) -> int | None:
    """The fewest live units (of ``per_page`` sketch centroids) for which :func:`choose_cells` gives at least
    ``GROWTH`` × ``k`` cells (None: never, past the 65,536 cells a book may have)."""
    if GROWTH * k > 65536:
        return None
    power = 1 << (GROWTH * k - 1).bit_length()  # choose_cells gives powers of two: the first one >= GROWTH·k
    return (power // 2) ** 2 // per_page + 1  # choose_cells(v) >= power once √v > power / 2


def retrain_cells(store: LocalHandle, *, seed: int = 0, stop: threading.Event | None = None) -> tuple[CellBook, int]:
    """Replace the stored book by one trained for the collection as it is now, when it has grown to
    ``retrain_units`` (else, or when another trainer replaced the book meanwhile: the stored book, 0): as
    :func:`train_cells`, every live unit assigned outside the lock and, in one transaction, the old book and every
    row deleted, the new book and the rows stored, the units written meanwhile (filed under the old book by their
    own transactions) filed again."""
    with store._read() as conn:
        snap, _ = store._views_for(conn, sketches=True)
        old = load_cell_book(conn, store._path)
    due = None if old is None else retrain_units(old.k, max(snap.sketch_k, 1))
    if old is None or due is None or snap.n_alive < due:
        return train_cells(store, seed=seed, stop=stop) if old is None else (old, 0)
    book = _trained(snap, None, seed, stop)
    assigned = _assign(book, snap.rows, np.flatnonzero(snap.alive), stop)
    _check(stop)
    with store._write() as conn:
        stored = load_cell_book(conn, store._path)
        if stored is not old:  # another trainer replaced it meanwhile
            return stored or old, 0
        conn.execute("DELETE FROM cell_book")
        conn.execute("DELETE FROM unit_cells")
        return _file(store, conn, book, assigned, snap)


def _file(
    store: LocalHandle, conn: sqlite3.Connection, book: CellBook, assigned: _Assigned, snap: DenseSnapshot
) -> tuple[CellBook, int]:
    """Step 2 of the module docstring, in the caller's write transaction: (the stored book, units filed)."""
    stored = store_cell_book(conn, book, store._path)
    ours = stored is book  # else another trainer's book was stored first: the rows made for ours are dropped
    filed = conn.executemany(_INSERT, assigned.params()).rowcount if ours else 0
    after = snap.version[0] if ours else 0  # every unit of the snapshot has its row now when the book is ours
    missing = np.fromiter(
        (r[0] for r in conn.execute(
            "SELECT id FROM pages p WHERE id > ? AND NOT EXISTS (SELECT 1 FROM unit_cells c WHERE c.page_id = p.id)",
            (after,),
        )),
        dtype=np.int64,
    )  # fmt: skip
    if missing.size:
        sketch = (store.sketch_vectors, store.config.multivector_dim, read_sketch_codec(conn, store._path))
        dense = (store.config.dense_dim, store.dense_codec)
        late = load_rows(conn, snap.version[0], dense, sketch, with_dense=False)  # filing reads the sketches only
        for held in (snap.rows, late):
            filed += conn.executemany(_INSERT, _assign(stored, held, held.rows_of(missing), None).params()).rowcount
    bump_generation(conn)
    return stored, int(filed)


def _assign(book: CellBook, held: DenseRows, rows: np.ndarray, stop: threading.Event | None) -> _Assigned:
    """The cell lists of the units at ``rows`` of ``held``, ``_FILE_BLOCK`` at a time (``stop`` checked before
    each block)."""
    cells, counts = [np.empty(0, np.uint16)], [np.empty(0, np.int64)]
    for start in range(0, rows.size, _FILE_BLOCK):
        _check(stop)
        block = rows[start : start + _FILE_BLOCK]
        got, ends = cell_lists(book, widen_sketches(held.sketch[block], held.scales[block]))
        cells.append(got)
        counts.append(np.diff(ends, prepend=0))
    return _Assigned(held.ids[rows], np.concatenate(cells), np.cumsum(np.concatenate(counts)))


def _check(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise TrainingStopped("the store is closing")


def _trained(snap: DenseSnapshot, k: int | None, seed: int, stop: threading.Event | None) -> CellBook:
    """A cell book trained on a sample of the snapshot's live units' held sketches (``InvalidDocumentError``:
    none)."""
    live = np.flatnonzero(snap.alive)
    per_page = max(snap.sketch_k, 1)
    if not live.size:
        raise InvalidDocumentError("the collection holds no units to train cells on: add documents first")
    k = choose_cells(live.size * per_page) if k is None else k
    if not 1 <= k <= min(65536, live.size * per_page):
        raise InvalidDocumentError(f"cells must be in 1..{min(65536, live.size * per_page)} here, got {k}")
    rng = np.random.default_rng(seed)
    pages = min(live.size, -(-_SAMPLE_PER_CELL * k // per_page))
    chosen = np.sort(rng.choice(live, pages, replace=False))
    held = snap.rows
    sample = widen_sketches(held.sketch[chosen], held.scales[chosen]).reshape(-1, held.sketch.shape[1] // per_page)
    return train_cell_book(sample, k, seed=seed, between=lambda: _check(stop))
