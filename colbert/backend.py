"""The lifecycle side of an index backend: what a catalog asks of it besides documents and search.

A :class:`Backend` holds the collections of one place (a data directory, a Qdrant server) and hands out one
:class:`~colbert.store.Store` per collection. It creates, opens, drops and lists them, says how much disk they
take and reclaims it, reads every document *as stored* and writes one back as stored (what
:mod:`colbert.transfer` moves between files and backends), builds a collection under a hidden *staging* name
and publishes it under its real name at the end (an import that fails or is killed leaves nothing visible), and
keeps the indexing-job records every server process shares (:mod:`colbert.jobs`).

Implementations: :class:`colbert.local.backend.LocalBackend`, :class:`colbert.qdrant.backend.QdrantBackend`.
Only :func:`colbert.backends.open_backend` knows which exist; nothing else asks which one it holds.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from colbert.jobs import JobStore, Retention
from colbert.quantize import Codec
from colbert.store import CollectionConfig, OriginalFile, Store

__all__ = ["Backend", "ExportSource", "StoredDocument", "StoredUnit", "VacuumResult"]


class VacuumResult(NamedTuple):
    name: str
    bytes_before: int | None  # None: not known to this process (a Qdrant server's disk)
    bytes_after: int | None
    note: str  # what was done


@dataclass(frozen=True)
class StoredUnit:
    """One unit exactly as a backend stores it."""

    unit: int
    kind: str
    metadata: dict[str, Any]
    dense: bytes  # (dense_dim,) float32
    rows: int
    mv: bytes  # rows in the source's multivector encoding
    text: str | None
    image: bytes | None
    sketch: bytes | None  # the embedded backend's pooled first stage; None elsewhere


@dataclass(frozen=True)
class StoredDocument:
    doc_id: str
    metadata: dict[str, Any]
    created_at: float
    content_hash: str | None
    units: list[StoredUnit]
    original: OriginalFile | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExportSource:
    """Every document of a collection as stored, in the order they were added, and how its vectors are encoded."""

    encoding: Codec  # of every StoredUnit.mv
    sketch_vectors: int | None  # centroids per StoredUnit.sketch (None: no sketches)
    documents: Iterator[StoredDocument]


class Backend(Protocol):
    kind: str  # a short name for humans and export manifests ("local", "qdrant")

    def create(self, name: str, config: CollectionConfig) -> Store:
        """A new empty collection (``CollectionExistsError`` if the name is taken)."""
        ...

    def open(self, name: str) -> Store:
        """An existing collection (``CollectionNotFoundError``; ``IndexFormatError`` if it is not ours)."""
        ...

    def exists(self, name: str) -> bool: ...

    def names(self) -> builtins.list[str]:
        """The names of this backend's published collections (staging ones are never listed)."""
        ...

    def drop(self, name: str) -> bool:
        """Remove a collection and its data (the caller closed its store); False if there was none."""
        ...

    def is_stale(self, name: str, store: Store) -> bool:
        """Whether ``store`` no longer is the collection ``name`` (deleted or re-created by another process)."""
        ...

    def disk_bytes(self, store: Store) -> int | None:
        """Bytes the collection takes on disk, None where this process cannot see them."""
        ...

    def vacuum(self, name: str, store: Store) -> VacuumResult: ...

    def recode(self, name: str, store: Store, codec: Codec) -> VacuumResult:
        """Move collection ``name`` (open as ``store``, which is closed) to another multi-vector codec keeping
        every document, atomically for its users; ``CollectionBusyError`` while it is being written,
        ``CodecError`` for a codec this backend cannot store."""
        ...

    def train_cells(self, store: Store, cells: int | None) -> tuple[int, int]:
        """Give the collection the cells of the ``pooled_ivf`` first stage (trained unless it has them, ``cells``
        of them or the default K) and file every unit not filed yet; (K, units filed now).
        ``FirstStageUnavailableError`` where the backend has no such first stage, ``InvalidDocumentError`` for an
        empty collection or ``cells`` out of range."""
        ...

    def cells(self, store: Store) -> int | None:
        """The collection's ``pooled_ivf`` cells (K), None where it has none (not trained; a backend without that
        first stage): cheap enough to ask before a search."""
        ...

    def export_source(self, store: Store) -> ExportSource: ...

    def restore(self, store: Store, doc: StoredDocument, encoding: Codec, sketch_vectors: int | None) -> None:
        """Write one document exactly as stored (no pooling, no renormalisation) into a collection being
        restored; ``ExportFormatError`` if its id is already there."""
        ...

    def create_staging(self, name: str, config: CollectionConfig) -> tuple[str, Store]:
        """A new hidden collection that will become ``name``; (its staging key, its store)."""
        ...

    def publish(self, key: str, name: str) -> None:
        """Make the staging collection ``key`` (its store closed) visible as ``name``; ``CollectionExistsError``
        if the name was taken meanwhile (the staging collection is left for :meth:`discard`)."""
        ...

    def discard(self, key: str) -> None:
        """Remove a staging collection (its store closed); nothing if it is gone."""
        ...

    def job_store(self, *, busy_timeout_s: float, retention: Retention | None) -> JobStore:
        """Where indexing-job records live so that every process on this backend sees them."""
        ...

    def close(self) -> None: ...
