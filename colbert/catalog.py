"""Named collections: create, list, open, delete — over the embedded backend or a Qdrant server.

Embedded (``backend="local"``): each collection is the directory ``<data_dir>/collections/<name>/``.
Creation builds the index in a hidden temporary directory and renames it into place, and deletion renames
the directory away before removing it; a rename is atomic, so after a crash a name either is a complete
collection or does not exist (leftover hidden directories are removed when a catalog opens).

Qdrant (``backend="qdrant"``): collections are Qdrant collections tagged with this format in their metadata;
``qdrant_url=None`` uses qdrant-client's local mode persisted under ``<data_dir>/qdrant`` (testing and small
setups), otherwise the server at ``qdrant_url``.

Both backends keep all of a collection — vectors, unit text, page images — in the backend. Deployments of
format version 2 (embedded) / 1 (Qdrant) kept page images as files under ``<data_dir>/page-images/<name>/``;
opening such a collection migrates it and imports those files (:mod:`colbert.local.migrate`), then removes the
folder.

Names: 1–63 characters of ``a-z 0-9 _ -``, starting with a letter or digit, without ``__`` (reserved).
A catalog hands out one shared :class:`~colbert.store.Store` per name and closes them in :meth:`close`.
"""

from __future__ import annotations

import builtins
import re
import shutil
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

from colbert._validate import validate_config
from colbert.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    IndexFormatError,
    InvalidCollectionNameError,
)
from colbert.local import LocalOptions, LocalStore
from colbert.local import schema as _schema
from colbert.store import CollectionConfig, Store

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from colbert.qdrant import QdrantOptions

__all__ = ["LEGACY_IMAGES", "Backend", "Catalog", "CollectionInfo", "VacuumResult", "validate_name"]

Backend = Literal["local", "qdrant"]
LEGACY_IMAGES = "page-images"  # where format-2 deployments kept page PNGs, one folder per collection
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class VacuumResult(NamedTuple):
    name: str
    bytes_before: int | None  # None: not known to this process (a Qdrant server's disk)
    bytes_after: int | None
    note: str  # what was done


QDRANT_VACUUM_NOTE = (
    "nothing to do here: Qdrant reclaims the space of deleted points itself (its vacuum optimizer), and its "
    "disk use is reported by the Qdrant server (GET /collections/{name}, telemetry), not by this process"
)


class CollectionInfo(NamedTuple):
    name: str
    config: CollectionConfig
    counts: tuple[int, int]  # (documents, pages)


def validate_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or "__" in name:  # fullmatch: "abc\n" is refused
        raise InvalidCollectionNameError(f"collection name must match {_NAME.pattern} without '__', got {name!r:.80}")
    return name


class Catalog:
    """The collections of one data directory (or one Qdrant server). Thread-safe."""

    def __init__(
        self,
        data_dir: Path,
        *,
        backend: Backend = "local",
        qdrant_url: str | None = None,
        qdrant_api_key: str | None = None,
        local_options: LocalOptions | None = None,
        qdrant_options: QdrantOptions | None = None,
        qdrant_client: QdrantClient | None = None,
    ) -> None:
        if backend not in ("local", "qdrant"):
            raise ValueError(f"backend must be 'local' or 'qdrant', got {backend!r}")
        self.data_dir = Path(data_dir)
        self.backend = backend
        self._lock = threading.Lock()
        self._open: dict[str, Store] = {}
        self._inodes: dict[str, int] = {}  # embedded: index file of each open store (another process may swap it)
        self._local_options = local_options or LocalOptions()
        self._root = self.data_dir / "collections"
        self._legacy_images = self.data_dir / LEGACY_IMAGES
        if backend == "local":
            self._root.mkdir(parents=True, exist_ok=True)
            for leftover in self._root.glob(".*"):
                shutil.rmtree(leftover, ignore_errors=True)
            self._qdrant = None
        else:
            from colbert.qdrant.catalog import QdrantCollections

            self._qdrant = QdrantCollections(self.data_dir, qdrant_url, qdrant_api_key, qdrant_options, qdrant_client)

    @property
    def qdrant_client(self) -> QdrantClient | None:
        """The Qdrant client of this catalog (None for the embedded backend)."""
        return None if self._qdrant is None else self._qdrant.client

    def create(self, name: str, config: CollectionConfig) -> Store:
        """A new empty collection; ``CollectionExistsError`` if the name is taken."""
        validate_name(name)
        validate_config(config)
        with self._lock:
            store: Store
            if self._qdrant is not None:
                store = self._qdrant.create(name, config)
            else:
                final = self._root / name
                if final.exists():
                    raise CollectionExistsError(f"collection {name!r} already exists")
                tmp = self._root / f".tmp-{name}-{uuid.uuid4().hex}"
                LocalStore.create(tmp, config, self._local_options).close()
                try:
                    tmp.rename(final)
                except OSError as exc:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise CollectionExistsError(f"collection {name!r} already exists ({exc})") from exc
                self._inodes[name] = (final / _schema.DB_FILE).stat().st_ino
                store = LocalStore.open(final, expected=config, options=self._local_options)
            shutil.rmtree(self._legacy_images / name, ignore_errors=True)  # an older namesake's files
            self._open[name] = store
            return store

    def get(self, name: str) -> Store:
        """The collection's store (``CollectionNotFoundError`` if there is none).

        Another process may have deleted (or deleted and re-created) the collection since this catalog opened
        it. Embedded: one ``stat`` of its index file per call notices. Qdrant: the handle notices when a request
        fails on the missing collection (:mod:`colbert.qdrant.live`; that request is a
        ``CollectionNotFoundError``). Either way the stale handle is dropped here and the name opened afresh."""
        validate_name(name)
        with self._lock:
            store = self._open.get(name)
            if store is not None and self._stale(name, store):
                store.close()
                del self._open[name]
                store = None
            if store is None:
                store = self._open_store(name)
                self._open[name] = store
            return store

    def _stale(self, name: str, store: Store) -> bool:
        if self._qdrant is not None:
            return bool(getattr(store, "stale", False))
        try:
            inode = (self._root / name / _schema.DB_FILE).stat().st_ino
        except FileNotFoundError:
            return True
        return inode != self._inodes.get(name)

    def _open_store(self, name: str) -> Store:
        legacy = self._legacy_images / name
        store: Store
        if self._qdrant is not None:
            store = self._qdrant.open(name, legacy_images=legacy)
        else:
            path = self._root / name
            if not (path / _schema.DB_FILE).is_file():
                raise CollectionNotFoundError(f"no collection named {name!r}")
            self._inodes[name] = (path / _schema.DB_FILE).stat().st_ino  # before opening: a swap is then noticed
            store = LocalStore.open(path, options=self._local_options, legacy_images=legacy)
        if legacy.is_dir():  # imported by the migration (or a leftover of it): the store holds them now
            shutil.rmtree(legacy, ignore_errors=True)
        return store

    def list(self) -> builtins.list[CollectionInfo]:
        """Every collection, by name, with its configuration and (documents, pages) counts."""
        names = self._qdrant.names() if self._qdrant is not None else self._local_names()
        out = []
        for name in sorted(names):
            try:
                store = self.get(name)
            except (CollectionNotFoundError, IndexFormatError):
                continue  # deleted meanwhile, or not one of ours
            out.append(CollectionInfo(name, store.config, store.count()))
        return out

    def _local_names(self) -> builtins.list[str]:
        return [
            p.name
            for p in self._root.iterdir()
            if _NAME.fullmatch(p.name) and "__" not in p.name and (p / _schema.DB_FILE).is_file()
        ]

    def disk_bytes(self, name: str) -> int | None:
        """Bytes the collection takes on disk: its directory's files (embedded); None for Qdrant, whose disk
        this process cannot see (``CollectionNotFoundError`` if there is no such collection)."""
        store = self.get(name)
        return store.disk_bytes() if isinstance(store, LocalStore) else None

    def vacuum(self, name: str) -> VacuumResult:
        """Reclaim the disk space of deleted and replaced documents (embedded: :meth:`LocalStore.vacuum`;
        Qdrant compacts by itself, so nothing is done there)."""
        store = self.get(name)
        if not isinstance(store, LocalStore):
            return VacuumResult(name, None, None, QDRANT_VACUUM_NOTE)
        before, after = store.vacuum()
        return VacuumResult(name, before, after, "full-text index merged, index file rebuilt (VACUUM), WAL truncated")

    def delete(self, name: str) -> bool:
        """Remove a collection and its data; False if there was none."""
        validate_name(name)
        with self._lock:
            store = self._open.pop(name, None)
            if store is not None:
                store.close()
            shutil.rmtree(self._legacy_images / name, ignore_errors=True)
            if self._qdrant is not None:
                return self._qdrant.delete(name)
            path = self._root / name
            if not path.exists():
                return False
            trash = self._root / f".trash-{name}-{uuid.uuid4().hex}"
            path.rename(trash)
            shutil.rmtree(trash)
            return True

    def close(self) -> None:
        """Close every store handed out (and the Qdrant client, if this catalog made it)."""
        with self._lock:
            for store in self._open.values():
                store.close()
            self._open.clear()
            if self._qdrant is not None:
                self._qdrant.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
