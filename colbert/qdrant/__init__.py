"""The Qdrant backend: a Qdrant server or qdrant-client's local mode (see :mod:`colbert.qdrant.store`)."""

from colbert.qdrant.store import (
    FORMAT_NAME,
    FORMAT_VERSION,
    QdrantOptions,
    QdrantStore,
    blobs_collection,
    companion_collections,
    docs_collection,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "QdrantOptions",
    "QdrantStore",
    "blobs_collection",
    "companion_collections",
    "docs_collection",
]
