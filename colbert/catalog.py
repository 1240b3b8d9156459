"""Named collections: create, list, open, delete, vacuum, recode — over whichever backend the factory opened.

The catalog holds one :class:`~colbert.backend.Backend` (chosen by :func:`colbert.backends.open_backend`; the
catalog never asks which) and hands out one shared :class:`~colbert.store.Store` per name, closed in
:meth:`close`. Where a backend keeps a collection and how creation and deletion stay atomic is the backend's
business (:mod:`colbert.local.backend`, :mod:`colbert.qdrant.backend`).

Names: 1–63 characters of ``a-z 0-9 _ -``, starting with a letter or digit, without ``__`` (reserved).
"""

from __future__ import annotations

import builtins
import logging
import re
import threading
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from colbert._validate import validate_config
from colbert.backend import Backend, VacuumResult
from colbert.backends import open_backend
from colbert.errors import ColbertError, CollectionNotFoundError, InvalidCollectionNameError, StoreClosedError
from colbert.quantize import checked_codec
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, Store

__all__ = ["Catalog", "CollectionInfo", "VacuumResult", "validate_name"]

log = logging.getLogger(__name__)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class CollectionInfo(NamedTuple):
    name: str
    config: CollectionConfig
    counts: tuple[int, int]  # (documents, pages)


def validate_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or "__" in name:  # fullmatch: "abc\n" is refused
        raise InvalidCollectionNameError(f"collection name must match {_NAME.pattern} without '__', got {name!r:.80}")
    return name


class _Opening:
    """One name being opened by :meth:`Catalog.get`, outside the catalog's lock: the getters of that name wait for
    ``done``; ``cancelled`` (set under the lock) says why the store must not be handed out."""

    def __init__(self) -> None:
        self.done = threading.Event()  # set once the store is handed out or closed, or the open failed
        self.store: Store | None = None  # what every getter of the name receives
        self.cancelled: str | None = None  # "deleted" or "closed" meanwhile


class Catalog:
    """The collections of one data directory (or one Qdrant server). Thread-safe.

    ``backend``: a kind for :func:`colbert.backends.open_backend` (with its ``options``), or a backend already
    opened.

    Opening a large collection is slow (its held rows are loaded: seconds at 1M pages, more from a cold disk), so
    it runs outside the one lock that guards ``_open``, or every other collection's requests would wait for it.
    One open per name: the
    first getter registers an :class:`_Opening` under the lock and opens; later getters of that name wait for it
    and receive the same store (two opens would leave one handle unclosed). :meth:`delete` and :meth:`close`
    never remove such an entry: they mark it cancelled and wait until the opener has closed what it opened,
    so a dropped collection's files are never open, nothing opened is left unclosed, and a getter whose open
    was cancelled gets a typed error, never a closed store."""

    def __init__(self, data_dir: Path, *, backend: str | Backend = "local", **options: Any) -> None:
        self.data_dir = Path(data_dir)
        self.backend: Backend = open_backend(backend, self.data_dir, **options) if isinstance(backend, str) else backend
        self._lock = threading.Lock()
        self._open: dict[str, Store] = {}
        self._opening: dict[str, _Opening] = {}

    def create(self, name: str, config: CollectionConfig) -> Store:
        """A new empty collection; ``CollectionExistsError`` if the name is taken."""
        validate_name(name)
        validate_config(config)
        with self._lock:
            store = self.backend.create(name, config)
            stale = self._open.get(name)  # held here while another process deleted the collection
            self._open[name] = store
            if stale is not None:
                stale.close()
            return store

    def get(self, name: str) -> Store:
        """The collection's store (``CollectionNotFoundError`` if there is none).

        Another process may have deleted (or deleted and re-created) the collection since this catalog opened
        it; the backend notices (:meth:`~colbert.backend.Backend.is_stale`), and the stale handle is dropped
        here and the name opened afresh (outside the catalog's lock: see the class docstring). A getter whose
        open was overtaken by :meth:`delete` gets ``CollectionNotFoundError``, by :meth:`close`
        ``StoreClosedError``."""
        validate_name(name)
        while True:
            with self._lock:
                store = self._open.get(name)
                if store is not None and self.backend.is_stale(name, store):  # a stat or a flag: cheap
                    store.close()
                    del self._open[name]
                    store = None
                if store is not None:
                    return store
                opening = self._opening.get(name)
                mine = opening is None
                if opening is None:
                    opening = self._opening[name] = _Opening()
            if mine:
                return self._open_unlocked(name, opening)
            opening.done.wait()
            if opening.store is not None:
                return opening.store
            if opening.cancelled is not None:
                raise _overtaken(name, opening.cancelled)
            # the open failed: this getter tries once more itself and meets its own error (or a collection
            # created meanwhile)

    def _open_unlocked(self, name: str, opening: _Opening) -> Store:
        """Open ``name`` for the getters waiting on ``opening``, without the catalog's lock."""
        try:
            store = self.backend.open(name)
        except BaseException:
            with self._lock:
                del self._opening[name]
            opening.done.set()
            raise
        with self._lock:
            del self._opening[name]  # opening.cancelled cannot change after this
            if opening.cancelled is None:  # a create() of the name meanwhile put its store first: that one is handed
                opening.store = self._open.setdefault(name, store)
        if opening.store is not store:
            store.close()  # before done is set: a delete waiting on it drops the files only once they are closed
        opening.done.set()
        if opening.store is None:
            raise _overtaken(name, opening.cancelled)
        return opening.store

    def list(self) -> builtins.list[CollectionInfo]:
        """Every collection, by name, with its configuration and (documents, pages) counts. A collection that
        cannot be opened or counted (deleted meanwhile, not ours, damaged) is left out and logged: it never
        hides the others."""
        out = []
        for name in sorted(self.backend.names()):
            try:
                store = self.get(name)
                out.append(CollectionInfo(name, store.config, store.count()))
            except CollectionNotFoundError:
                continue  # deleted meanwhile
            except (ColbertError, OSError, ValueError) as exc:
                log.warning("collection %r left out of the listing: %s", name, exc)
        return out

    def warm(self, stop: threading.Event) -> builtins.list[str]:
        """Open every collection and search it once through its default first stage, so that what that stage holds
        (the held rows, loaded by the open; the inverted lists, by the first search) is in memory before a request
        asks; the names warmed. Stops before the next collection once ``stop`` is set; the catalog is closed only
        after it returned (a get after :meth:`close` would open the collection again). A collection that fails is
        logged and left for its first request, as without a warm-up."""
        warmed = []
        for name in sorted(self.backend.names()):
            if stop.is_set():
                break
            try:
                store = self.get(name)
                config = store.config
                query = Query(np.ones((1, config.multivector_dim), np.float32), np.ones(config.dense_dim, np.float32))
                store.search(query, SearchOptions(k=1))
            except (CollectionNotFoundError, StoreClosedError):
                continue  # deleted (or recoded, its store closed) meanwhile
            except (ColbertError, OSError, ValueError) as exc:
                log.warning("collection %r not warmed up: %s", name, exc)
                continue
            warmed.append(name)
        return warmed

    def disk_bytes(self, name: str) -> int | None:
        """Bytes the collection takes on disk; None where this process cannot see them (a Qdrant server)
        (``CollectionNotFoundError`` if there is no such collection)."""
        return self.backend.disk_bytes(self.get(name))

    def cells(self, name: str) -> int | None:
        """The collection's ``pooled_ivf`` cells (K), None where it has none (:meth:`colbert.backend.Backend.cells`;
        ``CollectionNotFoundError`` if there is no such collection)."""
        return self.backend.cells(self.get(name))

    def vacuum(self, name: str) -> VacuumResult:
        """Reclaim the disk space of deleted and replaced documents (what that means is the backend's)."""
        return self.backend.vacuum(name, self.get(name))

    def recode(self, name: str, codec: str) -> VacuumResult:
        """Move a collection to another multi-vector codec, keeping every document; the old one stays intact
        until the new one is complete (``CodecError`` for an unknown codec or one the backend cannot store,
        ``CollectionBusyError`` while something writes to it)."""
        target = checked_codec(codec)
        store = self.get(name)
        result = self.backend.recode(name, store, target)
        with self._lock:
            if self._open.get(name) is store:
                del self._open[name]  # closed by the backend; the next get opens the new one
        return result

    def train_cells(self, name: str, cells: int | None = None) -> tuple[int, int]:
        """Give a collection its ``pooled_ivf`` cells (:meth:`colbert.backend.Backend.train_cells`); (K, filed)."""
        return self.backend.train_cells(self.get(name), cells)

    def delete(self, name: str) -> bool:
        """Remove a collection and its data; False if there was none."""
        validate_name(name)
        while True:
            with self._lock:
                opening = self._opening.get(name)
                if opening is None:
                    store = self._open.pop(name, None)
                    if store is not None:
                        store.close()
                    return self.backend.drop(name)
                opening.cancelled = "deleted"
            opening.done.wait()  # the opener closes what it opened; a get started meanwhile is cancelled in turn

    def close(self) -> None:
        """Close every store handed out, then the backend (and a client it made); an open under way is waited
        for and its store closed (its getters get ``StoreClosedError``)."""
        while True:
            with self._lock:
                pending = builtins.list(self._opening.values())
                if not pending:
                    for store in self._open.values():
                        store.close()
                    self._open.clear()
                    self.backend.close()
                    return
                for opening in pending:
                    opening.cancelled = opening.cancelled or "closed"
            for opening in pending:
                opening.done.wait()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _overtaken(name: str, cancelled: str | None) -> ColbertError:
    """The error of a getter whose open of ``name`` was cancelled by a delete or the catalog's close."""
    if cancelled == "deleted":
        return CollectionNotFoundError(f"no collection named {name!r}: it was deleted while it was being opened")
    return StoreClosedError(f"the catalog was closed while collection {name!r} was being opened")
