"""Automatic cell training (:mod:`colbert.local.auto_cells`): past ``LocalOptions.auto_cells_units`` live units a
write starts a background training (never below it, never at 0) that it does not wait for; every unit, those
written during the training too, ends filed; one training per collection across handles and processes (the
claim); a closing store stops it promptly and leaves a collection without cells; so does a killed process."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from colbert.local import LocalOptions, LocalStore, auto_cells, cells
from colbert.local.auto_cells import CLAIM_KEY, CLAIM_STALE_S
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig
from tests.colbert.test_pooled_ivf import assert_filed_under
from tests.colbert.test_residual_store import DENSE, D, record, topic_pages

REPO = Path(__file__).resolve().parents[2]
_STATE = "SELECT (SELECT COUNT(*) FROM cell_book), (SELECT COUNT(*) FROM pages), (SELECT COUNT(*) FROM unit_cells)"
PAGES = topic_pages(21, 60)


def _auto(path: Path, units: int = 30, **kwargs: Any) -> LocalStore:
    options = LocalOptions(auto_cells_units=units, **kwargs)
    if (path / "index.sqlite").exists():
        return LocalStore.open(path, options=options)
    return LocalStore.create(path, CollectionConfig(DENSE, D), options)


def _add(store: LocalStore, first: int, last: int) -> None:
    for i in range(first, last):
        store.add_document(f"d{i}", [record(PAGES[i])])


def _state(store: LocalStore) -> tuple[int, int, int]:
    with store._read() as conn:
        got: tuple[int, int, int] = conn.execute(_STATE).fetchone()
    return got


def _trained(store: LocalStore, timeout: float = 30.0) -> int:
    """Wait for the store's cells (K)."""
    deadline = time.monotonic() + timeout
    while (k := store.cell_count()) is None:
        assert time.monotonic() < deadline, "no automatic training within the timeout"
        time.sleep(0.02)
    return k


def _reached(calls: list[int], count: int = 1) -> None:
    """Wait for the ``count``-th training to reach its k-means (claimed, its snapshot taken)."""
    deadline = time.monotonic() + 30
    while len(calls) < count:
        assert time.monotonic() < deadline, "no training reached its k-means"
        time.sleep(0.01)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, list[int]]]:
    """A training's k-means waits for the event (set: it goes on) and counts itself; set on teardown."""
    event, calls = threading.Event(), []
    real = cells.train_cell_book

    def gated(*args: Any, **kwargs: Any) -> cells.CellBook:
        calls.append(1)
        assert event.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr("colbert.local.cell_training.train_cell_book", gated)
    yield event, calls
    event.set()


def test_below_the_threshold_nothing_trains_and_past_it_every_unit_is_filed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="colbert.local.auto_cells")
    store = _auto(tmp_path / "c")
    _add(store, 0, 29)
    assert store._auto._thread is None
    assert store.cell_count() is None
    _add(store, 29, 30)  # the 30th live unit
    assert _trained(store) == cells.choose_cells(30 * store.sketch_vectors)
    store._auto.stop()  # the thread has ended (its claim removed)
    assert _state(store) == (1, 30, 30)
    started, ended = [r.getMessage() for r in caplog.records if r.name == "colbert.local.auto_cells"]
    assert started.endswith("started: 30 live units (auto_cells_units=30)")
    assert "ended: 30 units filed under 16 cells in" in ended
    with store._read() as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = ?", (CLAIM_KEY,)).fetchone() is None
    _add(store, 30, 31)  # filed by its own write
    assert _state(store) == (1, 31, 31)
    store.close()


def test_zero_never_trains(tmp_path: Path) -> None:
    store = _auto(tmp_path / "c", 0)
    _add(store, 0, 40)
    assert store._auto._thread is None
    assert store.cell_count() is None
    store.close()
    with pytest.raises(ValueError, match="auto_cells_units"):
        LocalOptions(auto_cells_units=-1)


def test_the_write_that_crosses_does_not_wait_and_a_unit_written_meanwhile_is_found(
    tmp_path: Path, gate: tuple[threading.Event, list[int]]
) -> None:
    event, calls = gate
    store = _auto(tmp_path / "c", first_stage="pooled_ivf")
    _add(store, 0, 30)  # returns with the training held at its k-means
    assert store._auto.running
    _reached(calls)
    assert store.cell_count() is None
    q = Query(PAGES[3][:8], None)
    assert store.search(q, SearchOptions(k=1, candidates=5))[0].doc_id == "d3"  # served by pooled meanwhile
    _add(store, 30, 31)  # after the training's snapshot: its write gives it no row
    event.set()
    _trained(store)
    store._auto.stop()
    assert _state(store) == (1, 31, 31)
    opts = SearchOptions(k=1, candidates=5, first_stage="pooled_ivf", prefetch=10)
    assert store.search(Query(PAGES[30][:8], None), opts)[0].doc_id == "d30"
    assert calls == [1]
    store.close()


_OTHER = """
import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from tests.colbert.test_auto_cells import PAGES, _auto
from tests.colbert.test_residual_store import record
store = _auto(Path({path!r}))
store.add_document("other", [record(PAGES[40])])
print(store._auto._thread is None, store.cell_count())
store.close()
"""


def test_two_handles_and_another_process_train_once(tmp_path: Path, gate: tuple[threading.Event, list[int]]) -> None:
    event, calls = gate
    first = _auto(tmp_path / "c")
    second = _auto(tmp_path / "c")
    _add(first, 0, 30)
    assert first._auto.running
    _reached(calls)
    second.add_document("d30", [record(PAGES[30])])  # due, but this process trains the collection already
    assert second._auto._thread is None
    script = _OTHER.format(repo=str(REPO), path=str(tmp_path / "c"))
    other = subprocess.run([sys.executable, "-c", script], check=True, timeout=120, capture_output=True, text=True)
    assert other.stdout.split() == ["True", "None"]  # claimed by this process: not trained there
    event.set()
    _trained(second)
    first._auto.stop()
    assert calls == [1]
    assert _state(first) == (1, 32, 32)
    first.close()
    second.close()


def _claim(store: LocalStore, owner: str, started: float) -> None:
    with store._write() as conn:
        value = json.dumps({"owner": owner, "started": started})
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (CLAIM_KEY, value))


def test_a_fresh_claim_blocks_and_a_stale_or_dead_one_does_not(tmp_path: Path) -> None:
    store = _auto(tmp_path / "c")
    _claim(store, "elsewhere:1:abc", time.time())  # another machine's training under way
    _add(store, 0, 31)
    assert store._auto._thread is None
    _claim(store, "elsewhere:1:abc", time.time() - CLAIM_STALE_S - 1)
    _add(store, 31, 32)
    assert _trained(store)
    store.close()
    host, now = auto_cells.socket.gethostname(), time.time()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert not auto_cells._fresh(json.dumps({"owner": f"{host}:{dead.stdout.strip()}:x", "started": now}), now)
    mine = f"{host}:{os.getpid()}:y"  # this process's: fresh only while its training is under way
    assert not auto_cells._fresh(json.dumps({"owner": mine, "started": now}), now)
    auto_cells._OWNERS.add(mine)
    assert auto_cells._fresh(json.dumps({"owner": mine, "started": now}), now)
    auto_cells._OWNERS.discard(mine)


def test_close_during_a_training_is_prompt_and_leaves_a_collection_without_cells(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _auto(tmp_path / "c")
    real = cells.train_cell_book

    def slow(*args: Any, **kwargs: Any) -> cells.CellBook:
        while not store._auto._stop.is_set():  # a long k-means, until close asks it to stop
            time.sleep(0.01)
        return real(*args, **kwargs)

    monkeypatch.setattr("colbert.local.cell_training.train_cell_book", slow)
    _add(store, 0, 30)
    assert store._auto.running
    t0 = time.monotonic()
    store.close()
    assert time.monotonic() - t0 < 3
    assert not store._auto.running
    again = LocalStore.open(tmp_path / "c", options=LocalOptions(first_stage="pooled_ivf"))
    assert _state(again) == (0, 30, 0)
    with again._read() as conn:  # the claim was removed before the store closed
        assert conn.execute("SELECT value FROM meta WHERE key = ?", (CLAIM_KEY,)).fetchone() is None
    assert again.search(Query(PAGES[5][:8], None), SearchOptions(k=1, candidates=5))[0].doc_id == "d5"
    monkeypatch.undo()
    assert again.train_cells()[1] == 30
    again.close()


_KILLED = """
import os, sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from colbert.local import cell_training
from tests.colbert.test_auto_cells import _add, _auto
real = cell_training._file
def killed(*args):
    real(*args)  # the book and every row written, not committed
    os._exit(3)
cell_training._file = killed
store = _auto(Path({path!r}))
_add(store, 0, 30)
store._auto._thread.join(60)
"""


def test_a_process_killed_in_the_training_transaction_leaves_no_cells(tmp_path: Path) -> None:
    script = _KILLED.format(repo=str(REPO), path=str(tmp_path / "c"))
    assert subprocess.run([sys.executable, "-c", script], timeout=120).returncode == 3
    store = _auto(tmp_path / "c")
    assert _state(store) == (0, 30, 0)
    with store._read() as conn:  # the dead process's claim: stale at once (same machine, process gone)
        assert conn.execute("SELECT value FROM meta WHERE key = ?", (CLAIM_KEY,)).fetchone() is not None
    _add(store, 30, 31)
    assert _trained(store)
    store._auto.stop()
    assert _state(store) == (1, 31, 31)
    assert np.all(np.array(_state(store)[1:]) == 31)
    store.close()


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
