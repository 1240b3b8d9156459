"""The inverted lists a handle holds in memory, kept in step with its dense snapshot, and the two first stages that
read them: ``ivf`` (a residual codec's token centroids, :mod:`colbert.local.ivf`) and ``pooled_ivf`` (the sketch
cells, :mod:`colbert.local.cells`).

Each kind is built the first time a search asks for it, from that search's read transaction, then moved forward
by every sync with the pages added and deleted since (``apply``); a reload of the dense snapshot drops them all
(the deletion log no longer reaches back to them), as does a view that is more than half tombstones.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from colbert.codebook import Codebook
from colbert.local.cells import DEFAULT_REACH, CellBook, load_cell_book, load_cell_lists
from colbert.local.codes import checked_lists, damaged_lists
from colbert.local.dense import DenseSnapshot, trim_heap
from colbert.local.ivf import IvfSnapshot, ivf_top, load_centroid_lists
from colbert.local.modes import FirstStage, first_stage
from colbert.quantize import RESIDUAL_CODES

__all__ = ["TRAIN_CELLS_HINT", "InvertedViews", "Lists", "pooled_ivf_top", "stored_lists", "unavailable"]

Lists = Callable[[str, int], tuple[np.ndarray, list[np.ndarray]]]  # (kind, after page id) -> (ids, lists) stored
Book = CellBook | Codebook  # what a kind's lists are filed by


TRAIN_CELLS_HINT = "train its cells first (`python -m service collections train-cells NAME`, or LocalStore.train_cells)"


def unavailable(kind: str, codec: str) -> str:
    """Why ``kind`` cannot serve a collection of ``codec`` that lacks its lists, and what to do instead."""
    if kind == "pooled_ivf":
        return f"first_stage 'pooled_ivf' needs the collection's sketch cells, which it has none of: {TRAIN_CELLS_HINT}"
    residual = ", ".join(c.value for c in RESIDUAL_CODES)
    return f"first_stage 'ivf' needs a residual codec ({residual}); this collection stores {codec}"


class InvertedViews:
    """The held lists of each kind, as of the handle's newest dense snapshot (the caller holds its sync lock)."""

    def __init__(self) -> None:
        self._views: dict[str, IvfSnapshot] = {}
        self._books: dict[str, object] = {}  # the book (codebook or cell book) each held view was made for

    def clear(self) -> None:
        self._views.clear()
        self._books.clear()

    def apply(self, version: tuple[int, int], lists: Lists, after_id: int, dead: Iterable[int]) -> None:
        """Move every held view to ``version``: the units above ``after_id`` added, ``dead`` ones marked."""
        gone = list(dead)
        for kind, view in list(self._views.items()):
            view = view.apply(version, *lists(kind, after_id), gone)
            if view.too_sparse():
                self.drop(kind)
            else:
                self._views[kind] = view

    def held(self, kind: str, snap: DenseSnapshot, book: Book, lists: Lists, newest: bool) -> IvfSnapshot:
        """The ``kind`` view matching ``snap`` and ``book`` (built now from the caller's transaction if none does;
        kept when ``newest``: ``snap`` and ``book`` are the handle's newest)."""
        view = self._views.get(kind)
        if view is None or view.version != snap.version or self._books.get(kind) is not book:
            view = IvfSnapshot.build(snap.version, book.k, *lists(kind, 0))
            trim_heap()  # the build's temporaries (~40 B per list entry) would stay resident
            if newest:
                self._views[kind], self._books[kind] = view, book
        return view

    def drop(self, kind: str) -> None:
        self._views.pop(kind, None)
        self._books.pop(kind, None)

    def get(self, kind: str) -> IvfSnapshot | None:
        return self._views.get(kind)

    def nbytes(self) -> int:
        return sum(v.nbytes() for v in self._views.values())


def pooled_ivf_top(
    view: IvfSnapshot, book: CellBook, snap: DenseSnapshot, q: np.ndarray, how: FirstStage, nprobe: int,
    allowed: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(unit ids, sketch scores) best first: the best ``how.prefetch`` (default ``DEFAULT_REACH``) allowed units by
    their cells, then the best ``how.candidates`` of those by exact sketch score (:mod:`colbert.local.cells`)."""
    reach = max(how.prefetch or DEFAULT_REACH, how.candidates)
    reached, _ = ivf_top(view, book, q, reach, nprobe, allowed)  # (≤reach,) ids: live and allowed
    rows = snap.rows_of(np.sort(reached))
    return first_stage(snap, q, None, rows, FirstStage("pooled", how.candidates, None, how.query_groups))


def stored_lists(
    conn: sqlite3.Connection, kind: str, after_id: int, path: Path, codebook: Codebook | None
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The stored inverted lists of ``kind`` for the units above ``after_id``, as of ``conn``'s transaction: the
    cell lists of that transaction's cell book (``pooled_ivf``) or the centroid lists of ``codebook`` (``ivf``),
    checked (a damaged row: ``IndexFormatError`` naming ``path``)."""
    if kind == "pooled_ivf":
        book = load_cell_book(conn, path)
        assert book is not None  # the lists are read once the book is there
        return load_cell_lists(conn, after_id, book.k, path)
    assert codebook is not None  # likewise the codebook
    try:
        ids, lists = load_centroid_lists(conn, after_id)
    except ValueError as exc:  # a row whose length is not whole uint16 ids
        raise damaged_lists(path, str(exc)) from exc
    return checked_lists(ids, lists, codebook.k, path)
