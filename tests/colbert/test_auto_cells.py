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


def test_a_collection_that_is_only_read_gets_its_cells_when_it_is_opened(tmp_path: Path) -> None:
    """An index past the threshold without cells (made before automatic training, or with it off) is given them
    after its open, without any write; its default searches then use them. Opened with the threshold off, or below
    it, nothing trains."""
    store = _auto(tmp_path / "c", units=0)
    _add(store, 0, 40)
    store.close()
    for units in (0, 41):
        opened = _auto(tmp_path / "c", units=units)
        time.sleep(0.3)  # time for the open's check to start a training, were one due
        opened.close()
    opened = _auto(tmp_path / "c", units=0)
    assert _state(opened)[0] == 0  # no book
    opened.close()
    store = _auto(tmp_path / "c", units=30, first_stage="pooled_ivf")
    opts = SearchOptions(k=1, candidates=3)
    assert _trained(store) == cells.choose_cells(40 * store.sketch_vectors)
    with store._read() as conn:
        book = cells.load_cell_book(conn)
    assert book is not None
    assert_filed_under(store, book)
    assert store.stats().ivf_memory_bytes == 0
    assert store.search(Query(PAGES[3][:8], None), opts)[0].doc_id == "d3"
    assert store.stats().ivf_memory_bytes > 0  # the search went through the cells' lists: pooled_ivf
    store.close()


_OPEN_CLOSE = """
import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from tests.colbert.test_auto_cells import _auto
for _ in range(300):
    _auto(Path({path!r}), units=100).close()
print("ok")
"""


def test_a_store_closed_right_after_its_open_waits_for_the_opens_check(tmp_path: Path) -> None:
    """The open's check reads on a thread of its own: ``close`` waits for it before closing the connection it reads
    through (closing it under the read crashed the process). In a child process, so that a crash fails the test."""
    store = _auto(tmp_path / "c", units=0)
    _add(store, 0, 40)
    store.close()
    script = _OPEN_CLOSE.format(repo=str(REPO), path=str(tmp_path / "c"))
    done = subprocess.run([sys.executable, "-c", script], timeout=300, capture_output=True, text=True)
    assert (done.returncode, done.stdout.split()) == (0, ["ok"]), done.stderr[-2000:]


def test_two_collections_train_one_after_the_other(tmp_path: Path, gate: tuple[threading.Event, list[int]]) -> None:
    """A process trains one collection at a time: the second waits for the first (held in its k-means) and trains
    once it is done; closing a store whose training waits for its turn is prompt."""
    event, calls = gate
    first, second, third = (_auto(tmp_path / name) for name in ("a", "b", "c"))
    _add(first, 0, 30)
    _reached(calls)
    _add(second, 0, 30)
    _add(third, 0, 30)
    time.sleep(0.5)
    assert (len(calls), second._auto.running, third._auto.running) == (1, True, True)  # waiting their turn
    t0 = time.monotonic()
    third.close()
    assert time.monotonic() - t0 < 5
    event.set()
    assert (_trained(first), _trained(second)) == (16, 16)
    assert len(calls) == 2
    first.close()
    second.close()
    closed = _auto(tmp_path / "c", units=0)
    assert _state(closed)[0] == 0  # closed while waiting its turn: never trained
    closed.close()
