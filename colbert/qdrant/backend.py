"""The Qdrant backend's collections: which Qdrant collections are ours; create, open, drop, stage, publish.

``url=None`` uses qdrant-client's local mode persisted under ``<data_dir>/qdrant`` (testing and small setups),
otherwise the server at ``url``. Ours are tagged with :data:`~colbert.qdrant.FORMAT_NAME` in their metadata;
their companions (``__docs``, ``__blobs``) hold ``__``, which our names never do.

Qdrant cannot rename a collection, so an import is staged under its final name, marked as being imported
(:data:`~colbert.qdrant.layout.IMPORTING_KEY`) from its creation on: it is not listed and cannot be opened, so
nobody else writes to it, and publishing clears the mark. A failed import drops it; one killed midway leaves it
marked: a new import of that name is refused with a message saying to delete it first.
"""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient

from colbert.backend import ExportSource, StoredDocument, VacuumResult
from colbert.errors import (
    CodecError,
    CollectionExistsError,
    CollectionNotFoundError,
    FirstStageUnavailableError,
    IndexFormatError,
)
from colbert.jobs import JobStore, Retention
from colbert.qdrant import transfer
from colbert.qdrant.codecs import storage_of
from colbert.qdrant.jobs import QdrantJobStore
from colbert.qdrant.layout import IMPORTING_KEY
from colbert.qdrant.store import FORMAT_NAME, QdrantOptions, QdrantStore, companion_collections
from colbert.quantize import Codec
from colbert.store import CollectionConfig, Store

__all__ = ["VACUUM_NOTE", "QdrantBackend"]

VACUUM_NOTE = (
    "nothing to do here: Qdrant reclaims the space of deleted points itself (its vacuum optimizer), and its "
    "disk use is reported by the Qdrant server (GET /collections/{name}, telemetry), not by this process"
)


def _mine(store: Store) -> QdrantStore:
    if not isinstance(store, QdrantStore):  # a programming error: a store of another backend
        raise TypeError(f"the Qdrant backend was handed a {type(store).__name__}")
    return store


class QdrantBackend:
    """Collections on one Qdrant server or local-mode directory (see the module doc)."""

    kind = "qdrant"

    def __init__(
        self,
        data_dir: Path,
        *,
        url: str | None = None,
        api_key: str | None = None,
        options: QdrantOptions | None = None,
        client: QdrantClient | None = None,
    ) -> None:
        self.options = options or QdrantOptions()
        self._owns_client = client is None
        if client is not None:
            self.client = client
        elif url is None:
            (Path(data_dir) / "qdrant").mkdir(parents=True, exist_ok=True)
            self.client = QdrantClient(path=str(Path(data_dir) / "qdrant"))
        else:
            self.client = QdrantClient(url=url, api_key=api_key)

    def _meta(self, name: str) -> dict[str, Any]:
        return dict(self.client.get_collection(name).config.metadata or {})

    # -- lifecycle ------------------------------------------------------------------------------------

    def create(self, name: str, config: CollectionConfig) -> Store:
        if self.exists(name):
            raise CollectionExistsError(f"collection {name!r} already exists")
        return QdrantStore.create(self.client, name, config, self.options)

    def open(self, name: str) -> Store:
        if not self.client.collection_exists(name):
            raise CollectionNotFoundError(f"no collection named {name!r}")
        if self._meta(name).get(IMPORTING_KEY):
            raise CollectionNotFoundError(
                f"no collection named {name!r} yet: it is being imported (or an import of it was interrupted: "
                "delete it and import again)"
            )
        return QdrantStore.open(self.client, name, options=self.options)

    def exists(self, name: str) -> bool:
        return any(self.client.collection_exists(c) for c in (name, *companion_collections(name)))

    def names(self) -> builtins.list[str]:
        out = []
        for c in self.client.get_collections().collections:
            if "__" in c.name:  # companions (__docs, __blobs) and the jobs collection
                continue
            meta = self._meta(c.name)
            if meta.get("format") == FORMAT_NAME and not meta.get(IMPORTING_KEY):
                out.append(c.name)
        return out

    def drop(self, name: str) -> bool:
        if not self.client.collection_exists(name):
            return False
        if self._meta(name).get("format") != FORMAT_NAME:
            raise IndexFormatError(f"Qdrant collection {name!r} is not one of ours; not deleting it")
        self.client.delete_collection(name)
        for companion in companion_collections(name):
            if self.client.collection_exists(companion):
                self.client.delete_collection(companion)
        return True

    def is_stale(self, name: str, store: Store) -> bool:
        return _mine(store).stale  # set when a request found it deleted or re-created (colbert.qdrant.live)

    def disk_bytes(self, store: Store) -> int | None:
        return None  # on the Qdrant server, which reports it itself

    def vacuum(self, name: str, store: Store) -> VacuumResult:
        return VacuumResult(name, None, None, VACUUM_NOTE)

    def recode(self, name: str, store: Store, codec: Codec) -> VacuumResult:
        storage_of(codec)  # CodecError naming the codecs Qdrant can store, for the residual ones
        raise CodecError(
            f"collection {name!r}: recoding in place is not available on the Qdrant backend (a collection's vector "
            "datatype and quantized copy are fixed when it is created, colbert.qdrant.codecs); export the "
            "collection and import it under a new name with --codec"
        )

    def train_cells(self, store: Store, cells: int | None) -> tuple[int, int]:
        raise FirstStageUnavailableError(
            "the pooled_ivf first stage and its cells are the embedded backend's; a Qdrant collection is searched "
            "through Qdrant's own index (first_stage dense)"
        )

    def cells(self, store: Store) -> int | None:
        return None  # no pooled_ivf first stage here (train_cells above)

    def create_staging(self, name: str, config: CollectionConfig) -> tuple[str, Store]:
        if self.client.collection_exists(name) and self._meta(name).get(IMPORTING_KEY):
            raise CollectionExistsError(
                f"collection {name!r} is being imported, or an import of it was interrupted: delete it to retry"
            )
        if self.exists(name):
            raise CollectionExistsError(f"collection {name!r} already exists")
        return name, QdrantStore.create(self.client, name, config, self.options, importing=True)

    def publish(self, key: str, name: str) -> None:
        if key != name:
            raise ValueError(f"a Qdrant staging collection is published under its own name {key!r}, not {name!r}")
        self.client.update_collection(name, metadata={**self._meta(name), IMPORTING_KEY: False})

    def discard(self, key: str) -> None:
        if self.client.collection_exists(key) and self._meta(key).get(IMPORTING_KEY):
            self.drop(key)

    def job_store(self, *, busy_timeout_s: float, retention: Retention | None) -> JobStore:
        return QdrantJobStore(self.client, retention=retention)  # the writes are Qdrant's: no busy timeout

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    # -- transfer -------------------------------------------------------------------------------------

    def export_source(self, store: Store) -> ExportSource:
        encoding = Codec.FLOAT32  # what Qdrant returns, whatever its storage datatype: lossless
        return ExportSource(encoding, None, transfer.documents(_mine(store), encoding))

    def restore(self, store: Store, doc: StoredDocument, encoding: Codec, sketch_vectors: int | None) -> None:
        transfer.restore(_mine(store), doc, encoding)
