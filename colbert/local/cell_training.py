"""Training a collection's sketch cells (:mod:`colbert.local.cells`) and filing the units already there.

An explicit step (``LocalStore.train_cells``; ``python -m service collections train-cells``), for a new collection
after its first bulk load or for an existing one: the cell book is trained on a sample of the held sketches and
stored in one transaction (a concurrent trainer's book, stored first, wins), then every unit without a cell row is
filed in transactions of ``_FILE_BLOCK`` units, read from a snapshot taken after the book was stored: a unit
committed later was filed by its own transaction (:func:`colbert.local.cells.new_unit_cells`). Readers and other
writers go on meanwhile; run again after an interruption, it files what is left (the book is kept).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from colbert.errors import InvalidDocumentError
from colbert.local.cells import CellBook, assign_cells, bump_generation, choose_cells, store_cell_book, train_cell_book
from colbert.local.sketch import widen_sketches

if TYPE_CHECKING:
    from colbert.local.handle import LocalHandle

__all__ = ["train_cells"]

_SAMPLE_PER_CELL = 64  # sketch centroids sampled per cell to train on
_FILE_BLOCK = 4096  # units filed per write transaction


def train_cells(store: LocalHandle, k: int | None = None, *, seed: int = 0) -> tuple[CellBook, int]:
    """The collection's cell book (trained and stored now unless there is one) and the units filed now."""
    book = store.cells
    if book is None:
        book = _trained(store, k, seed)
        with store._write() as conn:
            book = store_cell_book(conn, book, store._path)
    with store._read() as conn:  # a snapshot taken after the book was stored (module docstring)
        snap, _ = store._views_for(conn, sketches=True)
        filed = np.fromiter((r[0] for r in conn.execute("SELECT page_id FROM unit_cells")), dtype=np.int64)
    rows = np.flatnonzero(snap.alive & ~np.isin(snap.ids, filed))  # (m,) held rows without a cell row
    held = snap.rows
    for start in range(0, rows.size, _FILE_BLOCK):
        block = rows[start : start + _FILE_BLOCK]
        cells = assign_cells(book, widen_sketches(held.sketch[block], held.scales[block]))
        ids = snap.ids[block].tolist()
        with store._write() as conn:  # units deleted since the snapshot are skipped
            conn.executemany(
                "INSERT OR IGNORE INTO unit_cells (page_id, data) SELECT ?, ? WHERE EXISTS "
                "(SELECT 1 FROM pages WHERE id = ?)",
                [(i, c, i) for i, c in zip(ids, cells, strict=True)],
            )
            bump_generation(conn)
    return book, int(rows.size)


def _trained(store: LocalHandle, k: int | None, seed: int) -> CellBook:
    """A cell book trained on a sample of the live units' held sketches (``InvalidDocumentError``: none)."""
    with store._read() as conn:
        snap, _ = store._views_for(conn, sketches=True)
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
    return train_cell_book(sample, k, seed=seed)
