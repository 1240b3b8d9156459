"""A cell training makes the book and every unit's cell row visible together (:mod:`colbert.local.cell_training`):
a reader never sees a book whose lists miss units (which ``pooled_ivf`` would silently skip), whether units are
written meanwhile or another trainer's book is stored first; a stop request before the transaction writes
nothing."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from colbert.local import LocalStore, cell_training, cells
from colbert.local.schema import DB_FILE
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig
from tests.colbert.test_pooled_ivf import assert_filed_under
from tests.colbert.test_residual_store import DENSE, D, record, topic_pages

_STATE = "SELECT (SELECT COUNT(*) FROM cell_book), (SELECT COUNT(*) FROM pages), (SELECT COUNT(*) FROM unit_cells)"


def _store(path: Path, pages: list[np.ndarray]) -> LocalStore:
    store = LocalStore.create(path, CollectionConfig(DENSE, D))
    for i, p in enumerate(pages):
        store.add_document(f"d{i}", [record(p)])
    return store


def _watch(monkeypatch: pytest.MonkeyPatch, path: Path, during: Callable[[], None] | None = None) -> list[tuple]:
    """What another connection sees (book rows, units, cell rows) at every cell assignment of a training (the
    k-means rounds, each block filed, in or out of the write lock); ``during``: run once, when the units of the
    training's snapshot are about to be assigned (the book is trained: the training is under way)."""
    watcher = sqlite3.connect(path / DB_FILE, check_same_thread=False)
    seen: list[tuple] = []
    real_nearest, real_assign = cells._nearest, getattr(cell_training, "_assign", None)

    def nearest(units: np.ndarray, ct: np.ndarray) -> np.ndarray:
        seen.append(watcher.execute(_STATE).fetchone())
        return real_nearest(units, ct)

    def assign(*args: object) -> object:
        if during is not None and ("during",) not in seen:
            seen.append(("during",))
            during()
        return real_assign(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(cells, "_nearest", nearest)
    monkeypatch.setattr(cell_training, "_assign", assign, raising=False)
    return seen


def _consistent(seen: list[tuple]) -> bool:
    """Every state seen is "no book" or "a book and a row for every unit"."""
    return all(s[0] == 0 or s[1] == s[2] for s in seen if len(s) == 3)


def test_a_reader_sees_no_book_or_every_unit_filed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails on a training that commits the book before filing the units (the state a reader saw then: a book,
    200 units, 0 rows)."""
    store = _store(tmp_path / "c", topic_pages(14, 200))
    seen = _watch(monkeypatch, tmp_path / "c")
    book, filed = store.train_cells(k=16)
    assert (book.k, filed) == (16, 200)
    assert seen
    assert _consistent(seen), seen
    with store._read() as conn:
        assert conn.execute(_STATE).fetchone() == (1, 200, 200)
    store.close()


def test_a_unit_written_during_the_training_is_filed_by_its_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A unit another handle commits after the training's snapshot (no book yet: its write gives it no row) gets
    its row in the training's transaction, and ``pooled_ivf`` finds it at once."""
    pages = topic_pages(15, 121)
    store = _store(tmp_path / "c", pages[:120])
    other = LocalStore.open(tmp_path / "c")
    seen = _watch(monkeypatch, tmp_path / "c", lambda: other.add_document("late", [record(pages[120])]))
    assert store.train_cells(k=16)[1] == 121
    assert ("during",) in seen
    assert _consistent(seen), seen
    opts = SearchOptions(k=1, candidates=5, first_stage="pooled_ivf", prefetch=10)
    assert other.search(Query(pages[120][:8], None), opts)[0].doc_id == "late"
    with store._read() as conn:
        assert conn.execute(_STATE).fetchone() == (1, 121, 121)
    other.close()
    store.close()


def test_another_trainers_book_stored_first_wins_and_every_unit_is_filed_under_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = topic_pages(16, 150)
    store = _store(tmp_path / "c", pages)
    other = LocalStore.open(tmp_path / "c")
    seen = _watch(monkeypatch, tmp_path / "c", lambda: other.train_cells(k=8))
    book, filed = store.train_cells(k=16)
    assert ("during",) in seen
    assert _consistent(seen), seen
    assert (book.k, filed) == (8, 0)  # the other's book, which filed every unit in its own transaction
    assert_filed_under(store, book)
    other.close()
    store.close()


def test_a_stop_before_the_transaction_writes_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path / "c", topic_pages(17, 40))
    stop = threading.Event()
    stop.set()
    with pytest.raises(cell_training.TrainingStopped):
        cell_training.train_cells(store, 4, stop=stop)
    with store._read() as conn:
        assert conn.execute(_STATE).fetchone() == (0, 40, 0)
    assert store.train_cells(k=4)[1] == 40
    store.close()
