"""Automatic cell retraining (:func:`colbert.local.cell_training.retrain_cells`): once the default K for a
collection's live units is ``GROWTH`` times its stored K, a new book and every unit's row replace the old ones in one
transaction; searches during it answer from one book and its lists, and none keeps the old book's lists."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from colbert.local import LocalStore, cells
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig
from tests.colbert.test_auto_cells import PAGES, _add, _auto, _reached, gate
from tests.colbert.test_pooled_ivf import assert_filed_under
from tests.colbert.test_residual_store import DENSE, D

__all__ = ["gate"]  # the fixture, imported: pytest finds it here


def test_retrain_units_is_where_the_default_k_reaches_growth_times_the_stored_one() -> None:
    from colbert.local.cell_training import GROWTH, retrain_units

    for k in (9, 16, 100, 512, 1024, 4096):  # GROWTH × k above choose_cells' floor of 16
        for per_page in (1, 3, 8):
            units = retrain_units(k, per_page)
            assert units is not None
            assert cells.choose_cells(units * per_page) >= GROWTH * k
            assert cells.choose_cells((units - 1) * per_page) < GROWTH * k
    assert retrain_units(65536 // GROWTH + 1, 8) is None  # GROWTH × K past the 65,536 cells a book may have


def test_a_grown_collection_gets_a_new_book_and_every_unit_filed_under_it(
    tmp_path: Path, gate: tuple[threading.Event, list[int]], caplog: pytest.LogCaptureFixture
) -> None:
    """A book of 4 cells trained at 10 units is replaced once the default K for the live units is 16 (and the
    threshold is reached): the units written during the retraining, filed under the old book by their own writes,
    are filed again, and a reader that held the old lists answers from the new ones."""
    caplog.set_level(logging.INFO, logger="colbert.local.auto_cells")
    event, calls = gate
    event.set()
    store = _auto(tmp_path / "c")
    _add(store, 0, 10)
    assert store.train_cells(k=4)[0].k == 4
    reader = LocalStore.open(tmp_path / "c")
    opts = SearchOptions(k=1, candidates=3, first_stage="pooled_ivf", prefetch=6)
    assert reader.search(Query(PAGES[2][:8], None), opts)[0].doc_id == "d2"  # holds the 4-cell lists
    event.clear()
    _add(store, 10, 30)  # 30 units: the default K is 16 (choose_cells' least), at least GROWTH × 4
    _reached(calls, 2)
    _add(store, 30, 32)  # filed under the 4 cells by their writes, during the retraining
    assert store.cell_count() == 4
    event.set()
    deadline = time.monotonic() + 30
    while store.cell_count() != 16:
        assert time.monotonic() < deadline, "no retraining within the timeout"
        time.sleep(0.02)
    store._auto.stop()
    with store._read() as conn:
        book = cells.load_cell_book(conn)
    assert book is not None
    assert book.k == 16
    assert_filed_under(store, book)
    for i in (2, 17, 31):
        assert reader.search(Query(PAGES[i][:8], None), opts)[0].doc_id == f"d{i}"
    assert reader.cells is store.cells
    started = [r.getMessage() for r in caplog.records if "retraining" in r.getMessage()]
    assert started[0].endswith("started: 30 live units (auto_cells_units=30, 4 cells now)")
    assert "ended: 32 units filed under 16 cells in" in started[1]
    reader.close()
    store.close()


def test_searches_during_a_retraining_answer_from_one_book_and_its_lists(
    tmp_path: Path, gate: tuple[threading.Event, list[int]]
) -> None:
    """Readers of the training handle and of another one search ``pooled_ivf`` in a loop while a retraining runs
    and commits: every search uses its transaction's book with lists filed under it (no error, and the unit a
    query was drawn from first whenever it is first before and after)."""
    event, calls = gate
    event.set()
    store = _auto(tmp_path / "c")
    _add(store, 0, 10)
    store.train_cells(k=4)
    other = LocalStore.open(tmp_path / "c")
    opts = SearchOptions(k=1, candidates=3, first_stage="pooled_ivf", prefetch=6)
    _add(store, 10, 29)
    queries = [i for i in range(29) if all(s.search(Query(PAGES[i][:8], None), opts)[0].doc_id == f"d{i}"
                                           for s in (store, other))]  # fmt: skip
    assert len(queries) > 20
    failures: list[str] = []
    done = threading.Event()

    def search(handle: LocalStore) -> None:
        while not done.is_set():
            for i in queries:
                try:
                    got = handle.search(Query(PAGES[i][:8], None), opts)[0].doc_id
                except Exception as exc:  # noqa: BLE001 (reported below)
                    failures.append(repr(exc))
                    return
                if got != f"d{i}":
                    failures.append(f"d{i}: {got}")

    readers = [threading.Thread(target=search, args=(h,)) for h in (store, other)]
    for t in readers:
        t.start()
    event.clear()
    _add(store, 29, 30)
    _reached(calls, 2)
    time.sleep(0.2)
    event.set()
    deadline = time.monotonic() + 30
    while store.cell_count() != 16:
        assert time.monotonic() < deadline, "no retraining within the timeout"
        time.sleep(0.02)
    time.sleep(0.3)
    done.set()
    for t in readers:
        t.join(30)
    store._auto.stop()
    final = [i for i in queries if store.search(Query(PAGES[i][:8], None), opts)[0].doc_id != f"d{i}"]
    assert not [f for f in failures if not any(f.startswith(f"d{i}:") for i in final)], failures
    other.close()
    store.close()


def test_a_search_begun_before_a_retraining_neither_mixes_books_nor_leaves_its_lists_held(tmp_path: Path) -> None:
    """A search whose read transaction began before a retraining committed, finishing after another search of the
    same handle moved it to the new book, ranks with its own transaction's book and lists, and the lists it built
    are not kept as the new book's (the handle's later searches rank as a handle opened after the retraining)."""
    from colbert.local import cell_training
    from colbert.local.modes import FirstStage

    store = _auto(tmp_path / "c", 0)
    _add(store, 0, 40)
    store.train_cells(k=4)
    fresh_opts = SearchOptions(k=5, candidates=5, first_stage="pooled_ivf", prefetch=6)
    how = FirstStage("pooled_ivf", 5, prefetch=6)
    q = PAGES[7][:8]
    with store._read() as conn:  # a search under way, from before the retraining
        snap, _ = store._views_for(conn, sketches=True)
        before = store._first_stage(conn, snap, q, None, None, how)
        assert cell_training.retrain_cells(LocalStore.open(tmp_path / "c"))[0].k == 32
        moved = threading.Thread(target=store.search, args=(Query(q, None), fresh_opts))
        moved.start()  # another search of this handle: now at the 32-cell book
        moved.join()
        assert store.cells is not None
        assert store.cells.k == 32
        during = store._first_stage(conn, snap, q, None, None, how)
    assert [a.tolist() for a in during] == [a.tolist() for a in before]  # its own (4-cell) book and lists
    fresh = LocalStore.open(tmp_path / "c")
    for i in range(0, 40, 3):
        want = [h.doc_id for h in fresh.search(Query(PAGES[i][:8], None), fresh_opts)]
        assert [h.doc_id for h in store.search(Query(PAGES[i][:8], None), fresh_opts)] == want
    fresh.close()
    store.close()


def test_the_parsed_books_a_process_keeps_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every book a process reads (each collection's, each retraining's) is parsed once and kept by digest; at most
    ``_BOOKS_KEPT`` of them (oldest out), and a handle keeps answering from the book it holds."""
    monkeypatch.setattr(cells, "_BOOKS", {})
    monkeypatch.setattr(cells, "_BOOKS_KEPT", 2)
    stores, digests = [], []
    for k in (2, 3, 4):
        store = LocalStore.create(tmp_path / f"c{k}", CollectionConfig(DENSE, D))
        _add(store, 0, 12)
        store.train_cells(k=k)
        with store._read() as conn:
            book = cells.load_cell_book(conn)
            assert book is not None
            assert book.k == k
            digests.append(conn.execute("SELECT digest FROM cell_book").fetchone()[0])
        stores.append(store)
    assert list(cells._BOOKS) == digests[1:]  # the first book parsed is the one let go
    opts = SearchOptions(k=1, candidates=3, first_stage="pooled_ivf", prefetch=6)
    for store in stores:
        assert store.search(Query(PAGES[2][:8], None), opts)[0].doc_id == "d2"
        store.close()
