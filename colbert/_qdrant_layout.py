"""The layout of a collection on Qdrant: its format and companion collections, unit images in
``<name>__blobs``, request batching by size, and the migration of older formats.

Images do not go into the vector points' payload: every search and scroll over the vectors would carry them,
and a document's points would exceed a request's size limit (Qdrant's ``service.max_request_size_mb``, 32 MiB
by default) after a few pages. Each image is one vector-less point of ``<name>__blobs`` (id = uuid5 of doc id,
version and unit; payload ``doc_id``, ``version``, ``unit``, ``image`` as base64). They belong to the document's
*version* exactly as its vector points do (see :mod:`colbert.qdrant`): written before the document record that
names the version, so a reader only ever sees the images of the committed version, and removed with the
other versions' points. Writes go in requests of at most ``max_request_bytes`` of estimated JSON (one point is
never split: a single unit over the limit goes alone, bounded by ``StoreLimits.max_image_bytes``).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient
from qdrant_client import models as qm

from colbert._migrate import legacy_image_path
from colbert.errors import IndexFormatError
from colbert.quantize import Codec
from colbert.store import CollectionConfig

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "NAMESPACE",
    "blob_point",
    "blobs_collection",
    "companion_collections",
    "docs_collection",
    "image_of",
    "migrate",
    "read_config",
    "sized_batches",
]

NAMESPACE = uuid.UUID("6f1d3c52-8a0e-4b7e-9d3a-2f5c1e7b9a40")
FORMAT_NAME = "jev4-colbert-qdrant"
FORMAT_VERSION = 2


def docs_collection(name: str) -> str:
    """The name of the collection holding the document records of collection ``name``."""
    return f"{name}__docs"


def companion_collections(name: str) -> tuple[str, str]:
    """The collections that belong to collection ``name`` besides itself (document records, unit images)."""
    return docs_collection(name), blobs_collection(name)


def blobs_collection(name: str) -> str:
    """The name of the collection holding the unit images of collection ``name``."""
    return f"{name}__blobs"


def blob_id(doc_id: str, version: str, unit: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{doc_id}\x00{version}\x00{unit}\x00image"))


def blob_point(doc_id: str, version: str, unit: int, image: bytes) -> qm.PointStruct:
    payload = {
        "doc_id": doc_id,
        "version": version,
        "unit": unit,
        "image": base64.b64encode(image).decode("ascii"),
    }
    return qm.PointStruct(id=blob_id(doc_id, version, unit), vector={}, payload=payload)


def image_of(client: QdrantClient, name: str, doc_id: str, version: str, unit: int) -> bytes | None:
    found = client.retrieve(blobs_collection(name), [blob_id(doc_id, version, unit)], with_payload=True)
    if not found:
        return None
    return base64.b64decode((found[0].payload or {})["image"])


def point_bytes(point: qm.PointStruct) -> int:
    """A cheap over-estimate of a point's JSON size (floats ~12 characters each, base64 as is)."""
    size = 256
    for value in (point.payload or {}).values():
        size += len(value) if isinstance(value, str) else 64
    vectors = point.vector
    if isinstance(vectors, dict):
        for v in vectors.values():
            if isinstance(v, list):
                size += 12 * sum(len(row) if isinstance(row, list) else 1 for row in v)
    return size


def sized_batches(points: Iterable[qm.PointStruct], max_bytes: int) -> Iterator[list[qm.PointStruct]]:
    batch: list[qm.PointStruct] = []
    size = 0
    for point in points:
        b = point_bytes(point)
        if batch and size + b > max_bytes:
            yield batch
            batch, size = [], 0
        batch.append(point)
        size += b
    if batch:
        yield batch


def import_legacy_images(client: QdrantClient, name: str, folder: Path, max_bytes: int) -> int:
    """Copy the PNGs of the old ``page-images`` layout of collection ``name`` into its blobs, under the version
    of each stored page point (format 1 → 2). Idempotent: point ids are fixed by (doc, version, unit)."""
    if not folder.is_dir():
        return 0
    imported = 0
    offset: Any = None
    keep = ["doc_id", "page", "version"]
    while True:
        records, offset = client.scroll(name, limit=256, offset=offset, with_payload=keep, with_vectors=False)
        points = []
        for rec in records:
            p = rec.payload or {}
            file = legacy_image_path(folder, p["doc_id"], int(p["page"]))
            if file.is_file():
                points.append(blob_point(p["doc_id"], p["version"], int(p["page"]), file.read_bytes()))
        for batch in sized_batches(points, max_bytes):
            client.upsert(blobs_collection(name), batch, wait=True)
            imported += len(batch)
        if offset is None:
            return imported


def read_config(client: QdrantClient, name: str) -> CollectionConfig:
    """The configuration stored in the collection's metadata; ``IndexFormatError`` if it is not ours."""
    meta = client.get_collection(name).config.metadata or {}
    if meta.get("format") != FORMAT_NAME:
        raise IndexFormatError(f"Qdrant collection {name!r} is not a {FORMAT_NAME} collection")
    if meta.get("format_version") != FORMAT_VERSION:
        raise IndexFormatError(
            f"Qdrant collection {name!r} has format version {meta.get('format_version')}, "
            f"this code reads version {FORMAT_VERSION}"
        )
    return CollectionConfig(
        dense_dim=int(meta["dense_dim"]),
        multivector_dim=int(meta["multivector_dim"]),
        codec=Codec(meta["codec"]),
        pool_factor=int(meta["pool_factor"]),
    )


def migrate(client: QdrantClient, name: str, legacy_images: Path | None, max_request_bytes: int) -> None:
    """Format 1 → 2: the blobs collection, page images imported from the old folder; the version last."""
    meta = dict(client.get_collection(name).config.metadata or {})
    if meta.get("format") != FORMAT_NAME or meta.get("format_version") != 1:
        return
    if not client.collection_exists(blobs_collection(name)):
        client.create_collection(blobs_collection(name), vectors_config={}, metadata={"blobs_of": name})
    if legacy_images is not None:
        import_legacy_images(client, name, legacy_images, max_request_bytes)
    client.update_collection(name, metadata={**meta, "format_version": FORMAT_VERSION})
