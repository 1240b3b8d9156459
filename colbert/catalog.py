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

from colbert._validate import validate_config
from colbert.backend import Backend, VacuumResult
from colbert.backends import open_backend
from colbert.errors import ColbertError, CollectionNotFoundError, InvalidCollectionNameError
from colbert.quantize import checked_codec
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


class Catalog:
    """The collections of one data directory (or one Qdrant server). Thread-safe.

    ``backend``: a kind for :func:`colbert.backends.open_backend` (with its ``options``), or a backend already
    opened."""

    def __init__(self, data_dir: Path, *, backend: str | Backend = "local", **options: Any) -> None:
        self.data_dir = Path(data_dir)
        self.backend: Backend = open_backend(backend, self.data_dir, **options) if isinstance(backend, str) else backend
        self._lock = threading.Lock()
        self._open: dict[str, Store] = {}

    def create(self, name: str, config: CollectionConfig) -> Store:
        """A new empty collection; ``CollectionExistsError`` if the name is taken."""
        validate_name(name)
        validate_config(config)
        with self._lock:
            store = self.backend.create(name, config)
            self._open[name] = store
            return store

    def get(self, name: str) -> Store:
        """The collection's store (``CollectionNotFoundError`` if there is none).

        Another process may have deleted (or deleted and re-created) the collection since this catalog opened
        it; the backend notices (:meth:`~colbert.backend.Backend.is_stale`), and the stale handle is dropped
        here and the name opened afresh."""
        validate_name(name)
        with self._lock:
            store = self._open.get(name)
            if store is not None and self.backend.is_stale(name, store):
                store.close()
                del self._open[name]
                store = None
            if store is None:
                store = self.backend.open(name)
                self._open[name] = store
            return store

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
        with self._lock:
            store = self._open.pop(name, None)
            if store is not None:
                store.close()
            return self.backend.drop(name)

    def close(self) -> None:
        """Close every store handed out, then the backend (and a client it made)."""
        with self._lock:
            for store in self._open.values():
                store.close()
            self._open.clear()
            self.backend.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
