"""The Qdrant side of :class:`colbert.catalog.Catalog`: which collections are ours; create, open, delete."""

from __future__ import annotations

from pathlib import Path

from qdrant_client import QdrantClient

from colbert.errors import CollectionExistsError, CollectionNotFoundError, IndexFormatError
from colbert.qdrant import FORMAT_NAME, QdrantOptions, QdrantStore, companion_collections
from colbert.store import CollectionConfig

__all__ = ["QdrantCollections"]


class QdrantCollections:
    def __init__(
        self,
        data_dir: Path,
        url: str | None,
        api_key: str | None,
        options: QdrantOptions | None,
        client: QdrantClient | None = None,
    ) -> None:
        self._options = options or QdrantOptions()
        self._owns_client = client is None
        if client is not None:
            self.client = client
        elif url is None:
            (data_dir / "qdrant").mkdir(parents=True, exist_ok=True)
            self.client = QdrantClient(path=str(data_dir / "qdrant"))
        else:
            self.client = QdrantClient(url=url, api_key=api_key)

    def create(self, name: str, config: CollectionConfig) -> QdrantStore:
        if any(self.client.collection_exists(c) for c in (name, *companion_collections(name))):
            raise CollectionExistsError(f"collection {name!r} already exists")
        return QdrantStore.create(self.client, name, config, self._options)

    def open(self, name: str, legacy_images: Path | None = None) -> QdrantStore:
        if not self.client.collection_exists(name):
            raise CollectionNotFoundError(f"no collection named {name!r}")
        return QdrantStore.open(self.client, name, options=self._options, legacy_images=legacy_images)

    def names(self) -> list[str]:
        out = []
        for c in self.client.get_collections().collections:
            if "__" in c.name:  # companions (__docs, __blobs); our names never hold "__"
                continue
            meta = self.client.get_collection(c.name).config.metadata or {}
            if meta.get("format") == FORMAT_NAME:
                out.append(c.name)
        return out

    def delete(self, name: str) -> bool:
        if not self.client.collection_exists(name):
            return False
        meta = self.client.get_collection(name).config.metadata or {}
        if meta.get("format") != FORMAT_NAME:
            raise IndexFormatError(f"Qdrant collection {name!r} is not one of ours; not deleting it")
        self.client.delete_collection(name)
        for companion in companion_collections(name):
            if self.client.collection_exists(companion):
                self.client.delete_collection(companion)
        return True

    def close(self) -> None:
        if self._owns_client:
            self.client.close()
