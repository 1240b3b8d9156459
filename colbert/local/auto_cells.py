"""Automatic cell training: a collection gets its ``pooled_ivf`` cells once it is large enough, as Qdrant builds
its index past ``indexing_threshold``.

After every write that commits (:func:`colbert.local.bulk.add_documents`, the one write path), a handle opened with
``LocalOptions.auto_cells_units`` > 0 asks (one small read, none once a book is seen) whether the collection has
no cell book, holds at least that many live units and nobody is training it; if so it trains the cells
(:func:`colbert.local.cell_training.train_cells`: the book and every unit's row visible together) in a background
thread. The write that crossed the threshold never waits for it, and its errors are logged, never raised.

* **Once at a time.** One thread per collection in a process; across processes (several servers on one data
  dir) the training is claimed in a write transaction: the ``meta`` row ``cells_training`` holds the owner
  (host:pid:nonce) and its start time, and another process trains only when there is none, it is older than
  ``CLAIM_STALE_S``, or its process, on this machine, is gone (a killed trainer blocks nobody for long). The claim
  is removed when the training ends, however it ends (a closed store's claim is left to go stale).
* **Closing.** ``close`` sets a stop flag, which the training checks between its steps, and waits up to
  ``_JOIN_S`` for the thread; a training stopped before its transaction writes nothing. A killed process leaves
  either no book or a book with every unit's row (one transaction).
* **Logs.** One INFO line when a training starts and one when it ends (cells, units filed, seconds); a failure is
  one WARNING with its traceback, and no new automatic training starts in this process for ``CLAIM_STALE_S``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from colbert.errors import StoreClosedError
from colbert.local import cell_training

if TYPE_CHECKING:
    from colbert.local.handle import LocalHandle

__all__ = ["CLAIM_KEY", "CLAIM_STALE_S", "AutoCells"]

log = logging.getLogger(__name__)

CLAIM_KEY = "cells_training"
CLAIM_STALE_S = 900.0  # a claim older than this is a trainer that died: another process may train
_JOIN_S = 5.0  # how long close waits for a stopping training
_DUE_SQL = (  # (a book is stored, live units when the highest id reaches the threshold else 0, the claim)
    "SELECT EXISTS (SELECT 1 FROM cell_book), CASE WHEN (SELECT COALESCE(MAX(id), 0) FROM pages) >= ? "
    f"THEN (SELECT COUNT(*) FROM pages) ELSE 0 END, (SELECT value FROM meta WHERE key = '{CLAIM_KEY}')"
)
_RUNNING: set[Path] = set()  # collections (index files) a thread of this process is training
_RUNNING_LOCK = threading.Lock()


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
        self._thread: threading.Thread | None = None
        self._done = threshold <= 0  # nothing (more) to do: off, or a book was seen
        self._quiet_until = 0.0  # after a failure: no new training before this (time.monotonic)

    def after_write(self) -> None:
        """Start a training in the background when one is due; never raises, never waits for it."""
        if self._done or self._stop.is_set() or time.monotonic() < self._quiet_until:
            return
        try:
            units = self._due()
        except Exception:  # a closing store, a busy file: asked again after the next write
            log.debug("automatic cell training of %s: not checked", self._store.directory, exc_info=True)
            return
        if units:
            self._start(units)

    def _due(self) -> int:
        """The live units when a training is due now (0: not due)."""
        with self._store._read() as conn:
            book, units, claim = conn.execute(_DUE_SQL, (self.threshold,)).fetchone()
        if book:
            self._done = True
            return 0
        return int(units) if units >= self.threshold and not _fresh(claim, time.time()) else 0

    def _start(self, units: int) -> None:
        key = self._store._path
        with _RUNNING_LOCK:
            if key in _RUNNING or self._stop.is_set():
                return
            _RUNNING.add(key)
            self._thread = threading.Thread(
                target=self._run, args=(units,), name=f"cells-{self._store.directory.name}", daemon=True
            )
            self._thread.start()

    def _run(self, units: int) -> None:
        where = self._store.directory
        try:
            owner = self._claim()
            if owner is None:
                return
            try:
                log.info("automatic cell training of %s started: %d live units (auto_cells_units=%d)", where,
                         units, self.threshold)  # fmt: skip
                t0 = time.monotonic()
                book, filed = cell_training.train_cells(self._store, stop=self._stop)
                log.info("automatic cell training of %s ended: %d units filed under %d cells in %.1f s", where,
                         filed, book.k, time.monotonic() - t0)  # fmt: skip
                self._done = True
            finally:
                self._release(owner)
        except (cell_training.TrainingStopped, StoreClosedError):
            log.info("automatic cell training of %s stopped: the store is closing (nothing stored)", where)
        except Exception:
            self._quiet_until = time.monotonic() + CLAIM_STALE_S
            log.warning("automatic cell training of %s failed; the collection is served without cells (the "
                        "explicit `collections train-cells` still works)", where, exc_info=True)  # fmt: skip
        finally:
            with _RUNNING_LOCK:
                _RUNNING.discard(self._store._path)

    def _claim(self) -> str | None:
        """Claim the training (module docstring); the owner claimed as, None when it is not due any more."""
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        with self._store._write() as conn:
            book, units, claim = conn.execute(_DUE_SQL, (self.threshold,)).fetchone()
            if book or units < self.threshold or _fresh(claim, time.time()):
                return None
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
        """Ask a training under way to stop and wait up to ``_JOIN_S`` for it (``close``); no training after."""
        with _RUNNING_LOCK:
            self._stop.set()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_S)

    @property
    def running(self) -> bool:
        """Whether a training thread of this handle is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()
