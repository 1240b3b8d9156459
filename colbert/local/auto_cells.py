"""Automatic cell training: a collection gets its ``pooled_ivf`` cells once it is large enough, as Qdrant builds
its index past ``indexing_threshold``, and new ones once it has grown far past the size they were trained for.

After every write that commits (:func:`colbert.local.bulk.add_documents`, the one write path), a handle opened with
``LocalOptions.auto_cells_units`` > 0 asks (one small read; the live units are counted only when the ids given
since the last count could have carried them to the need) whether a training is due and nobody is at it; if so it
trains in a background thread (:func:`colbert.local.cell_training.retrain_cells`). Due means:

* no cell book and at least ``auto_cells_units`` live units: the first training (the book and every unit's row
  visible together);
* a book of K cells and at least :func:`colbert.local.cell_training.retrain_units` live units (those for which
  ``choose_cells`` gives ``GROWTH`` = 2 × K; never fewer than ``auto_cells_units``): a retraining, whose
  transaction replaces the book and every row (a collection first trained at 20,000 units, K = 512, is retrained
  at ~33k units to K = 1,024, at ~131k to 2,048, at ~524k to 4,096 — the K an explicit training at 1M gives — and
  at ~2.1M to 8,192). A K chosen explicitly is replaced likewise.

The write that made it due never waits for it, and a training's errors are logged, never raised. The open asks
too (:meth:`AutoCells.check_soon`, on a thread of its own), so that a collection that is only read — an index made
before automatic training or with it off — gets its cells without a write.

* **Once at a time.** One thread per collection in a process, and one training at a time whatever the collection
  (the others wait their turn: each is CPU-bound, and several large collections opened at once would each start
  one); across processes (several servers on one data
  dir) the training is claimed in a write transaction: the ``meta`` row ``cells_training`` holds the owner
  (host:pid:nonce) and its start time, and another process trains only when there is none, it is older than
  ``CLAIM_STALE_S``, or its process, on this machine, is gone (a killed trainer blocks nobody for long). The claim
  is removed when the training ends, however it ends; one its store's close left behind is stale at once for
  its own process (no training of it is under way there) and after ``CLAIM_STALE_S`` for others.
* **Closing.** ``close`` sets a stop flag, which the training checks between its steps, and waits for its threads
  (the open's check, the training) before it closes the connections they read and write through (closing one that
  another thread is using would crash the process): at most one step — a k-means round, a block of units, the
  filing transaction (~0.3 s at 100k units, seconds at 1M) or, in a process that did not hold the sketches, their
  first load. A training stopped before its transaction writes nothing. A killed process leaves either no book or
  a book with every unit's row (one transaction).
* **Logs.** One INFO line when a training (or retraining) starts and one when it ends (cells, units filed,
  seconds); a failure is one WARNING with its traceback, and no new automatic training starts in this process for
  ``CLAIM_STALE_S``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from colbert.errors import StoreClosedError
from colbert.local import cell_training
from colbert.local.cells import CellBook, load_cell_book

if TYPE_CHECKING:
    from colbert.local.handle import LocalHandle

__all__ = ["CLAIM_KEY", "CLAIM_STALE_S", "AutoCells"]

log = logging.getLogger(__name__)

CLAIM_KEY = "cells_training"
CLAIM_STALE_S = 900.0  # a claim older than this is a trainer that died: another process may train
_STATE_SQL = f"SELECT (SELECT COALESCE(MAX(id), 0) FROM pages), (SELECT value FROM meta WHERE key = '{CLAIM_KEY}')"
_RUNNING: set[Path] = set()  # collections (index files) a thread of this process is training
_RUNNING_LOCK = threading.Lock()
_ONE_AT_A_TIME = threading.Lock()  # this process's trainings, whatever the collection: one at a time (CPU-bound)
_OWNERS: set[str] = set()  # the claims of this process's trainings under way


def _fresh(claim: str | None, now: float) -> bool:
    """Whether a stored claim is someone's training under way: younger than ``CLAIM_STALE_S`` and not made by a
    process of this machine that is gone (a damaged claim counts as stale)."""
    try:
        found = json.loads(claim or "{}")
        started, (host, pid, _) = float(found["started"]), str(found["owner"]).rsplit(":", 2)
        pid_number = int(pid)
    except (ValueError, KeyError, TypeError):
        return False
    if host == socket.gethostname() and not _alive(pid_number):
        return False
    if pid_number == os.getpid() and host == socket.gethostname() and found["owner"] not in _OWNERS:
        return False  # this process's, left by a training that has ended (its store closed before it could remove it)
    return now - started < CLAIM_STALE_S


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: it exists
        return True
    return True


class AutoCells:
    """The automatic training of one handle's collection (module docstring); ``threshold`` 0: never."""

    def __init__(self, store: LocalHandle, threshold: int) -> None:
        self._store = store
        self.threshold = threshold
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None  # the training
        self._checker: threading.Thread | None = None  # the open's check (check_soon)
        self._done = threshold <= 0  # nothing (more) to do: off, or a book that is never replaced
        self._quiet_until = 0.0  # after a failure: no new training before this (time.monotonic)
        self._counted = (0, 0)  # (live units, highest unit id) when the units were last counted

    def check_soon(self) -> None:
        """:meth:`check` on a thread of its own, so that the open does not wait for its read (module docstring)."""
        with _RUNNING_LOCK:
            if self._done or self._stop.is_set():
                return
            name = f"cells-check-{self._store.directory.name}"
            self._checker = threading.Thread(target=self.check, name=name, daemon=True)
            self._checker.start()

    def check(self) -> None:
        """Start a training in the background when one is due (after every write; at the open: :meth:`check_soon`);
        never raises, never waits for it."""
        if self._done or self._stop.is_set() or time.monotonic() < self._quiet_until:
            return
        try:
            due = self._due()
        except Exception:  # a closing store, a busy file: asked again after the next write
            log.debug("automatic cell training of %s: not checked", self._store.directory, exc_info=True)
            return
        if due is not None:
            self._start(*due)

    def _need(self, conn: sqlite3.Connection) -> tuple[CellBook | None, int | None]:
        """The stored book and the live units at which a training is due (None: never again)."""
        book = load_cell_book(conn, self._store._path)
        if book is None:
            return None, self.threshold
        units = cell_training.retrain_units(book.k, self._store.sketch_vectors)
        return book, None if units is None else max(units, self.threshold)

    def _due(self) -> tuple[int, CellBook | None] | None:
        """(live units, the book to replace) when a training is due now, else None. The units are counted only
        when they may have reached the need: they grew by at most the ids given since the last count."""
        with self._store._read() as conn:
            book, need = self._need(conn)
            if need is None:
                self._done = True
                return None
            top, claim = conn.execute(_STATE_SQL).fetchone()
            if self._counted[0] + top - self._counted[1] < need:
                return None
            units = int(conn.execute("SELECT COUNT(*) FROM pages").fetchone()[0])
        self._counted = (units, top)
        return (units, book) if units >= need and not _fresh(claim, time.time()) else None

    def _start(self, units: int, book: CellBook | None) -> None:
        key = self._store._path
        with _RUNNING_LOCK:
            if key in _RUNNING or self._stop.is_set():
                return
            _RUNNING.add(key)
            self._thread = threading.Thread(
                target=self._run, args=(units, book), name=f"cells-{self._store.directory.name}", daemon=True
            )
            self._thread.start()

    def _run(self, units: int, old: CellBook | None) -> None:
        try:
            while not _ONE_AT_A_TIME.acquire(timeout=0.2):  # another collection's training goes first
                if self._stop.is_set():
                    return
            try:
                self._train(units, old)
            finally:
                _ONE_AT_A_TIME.release()
        finally:
            with _RUNNING_LOCK:
                _RUNNING.discard(self._store._path)

    def _train(self, units: int, old: CellBook | None) -> None:
        where, what = self._store.directory, "training" if old is None else "retraining"
        try:
            owner = self._claim()
            if owner is None:
                return
            try:
                log.info("automatic cell %s of %s started: %d live units (auto_cells_units=%d%s)", what, where,
                         units, self.threshold, "" if old is None else f", {old.k} cells now")  # fmt: skip
                t0 = time.monotonic()
                book, filed = cell_training.retrain_cells(self._store, stop=self._stop)
                log.info("automatic cell %s of %s ended: %d units filed under %d cells in %.1f s", what, where,
                         filed, book.k, time.monotonic() - t0)  # fmt: skip
            finally:
                self._release(owner)
                _OWNERS.discard(owner)
        except (cell_training.TrainingStopped, StoreClosedError):
            log.info("automatic cell %s of %s stopped: the store is closing (nothing stored)", what, where)
        except Exception:
            self._quiet_until = time.monotonic() + CLAIM_STALE_S
            log.warning("automatic cell %s of %s failed; the collection is served as it was (the explicit "
                        "`collections train-cells` still works)", what, where, exc_info=True)  # fmt: skip

    def _claim(self) -> str | None:
        """Claim the training (module docstring); the owner claimed as, None when it is not due any more."""
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        with self._store._write() as conn:
            _, need = self._need(conn)
            units = conn.execute("SELECT COUNT(*) FROM pages").fetchone()[0]
            if need is None or units < need or _fresh(conn.execute(_STATE_SQL).fetchone()[1], time.time()):
                return None
            _OWNERS.add(owner)  # before the commit: from then on the claim is fresh for this process too
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                (CLAIM_KEY, json.dumps({"owner": owner, "started": time.time()})),
            )
        return owner

    def _release(self, owner: str) -> None:
        """Remove the claim if it is still ``owner``'s (a store already closed leaves it to go stale)."""
        try:
            with self._store._write() as conn:
                conn.execute(
                    f"DELETE FROM meta WHERE key = '{CLAIM_KEY}' AND json_extract(value, '$.owner') = ?", (owner,)
                )
        except Exception:  # closed, or busy past busy_timeout_s: the claim goes stale
            log.debug("automatic cell training of %s: claim left to go stale", self._store.directory, exc_info=True)

    def stop(self) -> None:
        """Ask a check or training under way to stop and wait for them (``close``, module docstring); nothing
        starts after."""
        with _RUNNING_LOCK:
            self._stop.set()
            threads = (self._checker, self._thread)
        for thread in threads:
            if thread is not None and thread is not threading.current_thread():
                thread.join()

    @property
    def running(self) -> bool:
        """Whether a training thread of this handle is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()
