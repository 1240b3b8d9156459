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

A document's original file, when kept, goes into ``<name>__blobs`` too, cut into *parts* small enough for one
request each (:func:`original_points`: id = uuid5 of doc id, version and part number; payload ``doc_id``,
``version``, ``part``, ``original`` as base64), written with the unit points before the document record, which
describes it (``file``: media type, size, name, sha256, number of parts). So it belongs to the version like
the images: a replace writes the new version's parts and drops the old ones, a delete drops them all, and a
crash before the record leaves only parts of a version no record names (removed by the next write of the id).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from colbert import text
from colbert.errors import IndexFormatError
from colbert.pooling import pool_tokens
from colbert.qdrant.codecs import storage_of
from colbert.qdrant.sparse import SPARSE_NAME, TOKENIZER_KEY, document_vector, retokenize
from colbert.quantize import Codec, decode, encode
from colbert.store import CollectionConfig, FileInfo, OriginalFile, UnitRecord

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "NAMESPACE",
    "blob_point",
    "blobs_collection",
    "companion_collections",
    "create_collections",
    "docs_collection",
    "image_of",
    "migrate",
    "original_of",
    "original_points",
    "read_config",
    "sized_batches",
    "unit_numbers_of",
    "unit_point",
]

NAMESPACE = uuid.UUID("6f1d3c52-8a0e-4b7e-9d3a-2f5c1e7b9a40")
FORMAT_NAME = "jev4-colbert-qdrant"
FORMAT_VERSION = 2
IMPORTING_KEY = "importing"  # true while an import fills the collection: not listed, not opened


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


def unit_of(client: QdrantClient, name: str, doc_id: str, version: str, unit: int) -> UnitRecord | None:
    """One unit of a document's ``version`` as stored (vectors as Qdrant keeps them, text, metadata, image)."""
    flt = qm.Filter(
        must=[
            qm.FieldCondition(key="doc_id", match=qm.MatchValue(value=doc_id)),
            qm.FieldCondition(key="version", match=qm.MatchValue(value=version)),
            qm.FieldCondition(key="page", match=qm.MatchValue(value=unit)),
        ]
    )
    points, _ = client.scroll(name, scroll_filter=flt, limit=1, with_payload=True, with_vectors=True)
    if not points:
        return None
    vectors: Any = points[0].vector
    payload = points[0].payload or {}
    return UnitRecord(
        unit,
        np.asarray(vectors["dense"], dtype=np.float32),  # (dense_dim,) unit (Qdrant normalises)
        np.asarray(vectors["mv"], dtype=np.float32),  # (n, d)
        kind=payload.get("kind", "page"),
        text=payload.get("text"),
        metadata=payload["page_metadata"],
        image=image_of(client, name, doc_id, version, unit),
    )


def unit_numbers_of(client: QdrantClient, name: str, doc_id: str, version: str) -> list[int]:
    """The unit numbers of one version of a document, ascending (payload ``page`` only, no vectors)."""
    flt = qm.Filter(
        must=[
            qm.FieldCondition(key="doc_id", match=qm.MatchValue(value=doc_id)),
            qm.FieldCondition(key="version", match=qm.MatchValue(value=version)),
        ]
    )
    units: list[int] = []
    offset: Any = None
    while True:
        points, offset = client.scroll(
            name, scroll_filter=flt, limit=1024, offset=offset, with_payload=["page"], with_vectors=False
        )
        units += [int((p.payload or {})["page"]) for p in points]
        if offset is None:
            return sorted(units)


def _original_id(doc_id: str, version: str, part: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{doc_id}\x00{version}\x00{part}\x00original"))


def original_points(
    doc_id: str, version: str, original: OriginalFile, max_request_bytes: int
) -> tuple[list[qm.PointStruct], dict[str, Any]]:
    """The blob points of a document's original file (parts of at most ~3/4 of a request, base64 inside) and
    the ``file`` description for its document record."""
    part_bytes = max(1024, (max_request_bytes - 4096) * 3 // 4)
    data = original.data
    points = []
    for part, start in enumerate(range(0, len(data), part_bytes)):
        payload = {
            "doc_id": doc_id,
            "version": version,
            "part": part,
            "original": base64.b64encode(data[start : start + part_bytes]).decode("ascii"),
        }
        points.append(qm.PointStruct(id=_original_id(doc_id, version, part), vector={}, payload=payload))
    info = FileInfo.of(original)
    described = {
        "media_type": info.media_type,
        "size": info.size,
        "name": info.name,
        "sha256": info.sha256,
        "parts": len(points),
    }
    return points, described


def original_of(client: QdrantClient, name: str, doc_id: str, version: str, file: dict[str, Any]) -> OriginalFile:
    """Read a document's original back, part by part (one request each); ``IndexFormatError`` if a part is
    missing or the bytes do not hash to the recorded sha256."""
    chunks = []
    for part in range(int(file["parts"])):
        found = client.retrieve(blobs_collection(name), [_original_id(doc_id, version, part)], with_payload=True)
        if not found:
            raise IndexFormatError(f"collection {name!r}: part {part} of document {doc_id!r}'s original is missing")
        chunks.append(base64.b64decode((found[0].payload or {})["original"]))
    data = b"".join(chunks)
    if hashlib.sha256(data).hexdigest() != file["sha256"]:
        raise IndexFormatError(f"collection {name!r}: document {doc_id!r}'s original does not match its sha256")
    return OriginalFile(data, str(file["media_type"]), file.get("name"))


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
        task=str(meta.get("task", "retrieval")),
        unit_kind=str(meta.get("unit_kind", "page")),
        ocr=None if meta.get("ocr") is None else str(meta["ocr"]),
    )


def migrate(client: QdrantClient, name: str, max_request_bytes: int) -> None:
    """Sparse vectors computed by older tokeniser rules are recomputed (:func:`colbert.qdrant.sparse.retokenize`).
    Format 1 (page images as files beside the collection) lived nine days before the first release and is not
    migrated: ``read_config`` names the version it found."""
    meta = dict(client.get_collection(name).config.metadata or {})
    if meta.get("format") == FORMAT_NAME and meta.get("format_version") == FORMAT_VERSION:
        retokenize(client, name, max_request_bytes)


def create_collections(
    client: QdrantClient,
    name: str,
    config: CollectionConfig,
    *,
    on_disk: bool,
    common: dict[str, Any],
    importing: bool = False,
) -> str:
    """Create ``name`` and its companions with their payload indexes; the creation id written into the
    metadata (tells this collection from a namesake created later, :mod:`colbert.qdrant.live`). ``importing``:
    marked as being imported (:data:`IMPORTING_KEY`) from the start, so nobody opens it before it is complete."""
    instance = uuid.uuid4().hex
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        **config.as_json(),
        "instance": instance,
        TOKENIZER_KEY: text.TOKENIZER_VERSION,
        IMPORTING_KEY: importing,
    }
    client.create_collection(docs_collection(name), vectors_config={}, metadata={"docs_of": name}, **common)
    client.create_collection(blobs_collection(name), vectors_config={}, metadata={"blobs_of": name}, **common)
    client.create_collection(
        name,
        vectors_config={
            "dense": qm.VectorParams(size=config.dense_dim, distance=qm.Distance.COSINE),
            "mv": storage_of(config.codec).vector_params(config.multivector_dim, on_disk=on_disk),
        },
        sparse_vectors_config={SPARSE_NAME: qm.SparseVectorParams(modifier=qm.Modifier.IDF)},
        metadata=meta,
        **common,
    )
    with warnings.catch_warnings():  # local mode (tests) says payload indexes do nothing there
        warnings.filterwarnings("ignore", message="Payload indexes have no effect", category=UserWarning)
        client.create_payload_index(name, "doc_id", qm.PayloadSchemaType.KEYWORD)
        client.create_payload_index(name, "version", qm.PayloadSchemaType.KEYWORD)
        client.create_payload_index(blobs_collection(name), "doc_id", qm.PayloadSchemaType.KEYWORD)
        client.create_payload_index(docs_collection(name), "created_at", qm.PayloadSchemaType.FLOAT)
        client.create_payload_index(docs_collection(name), "content_hash", qm.PayloadSchemaType.KEYWORD)
    return instance


def unit_point(
    config: CollectionConfig, doc_id: str, version: str, meta: dict[str, Any], record: UnitRecord
) -> qm.PointStruct:
    """One unit's point: dense + multi-vector (pooled and rounded through the codec exactly as the embedded
    backend stores it) + BM25 sparse vector of its text, payload as in :mod:`colbert.qdrant`."""
    mv = record.multivector  # (n, d) float32
    if config.pool_factor > 1:
        mv = pool_tokens(mv, config.pool_factor)  # (m, d)
    stored = np.asarray(  # (m, d) float32: exactly what the embedded backend scores
        decode(
            encode(np.ascontiguousarray(mv, dtype=np.float32), config.codec),
            mv.shape[0],
            config.multivector_dim,
            config.codec,
        ),
        dtype=np.float32,
    )
    payload = {
        "doc_id": doc_id,
        "page": record.unit,
        "kind": record.kind,
        "version": version,
        "metadata": meta,
        "page_metadata": dict(record.metadata),
        "text": record.text,
    }
    pid = str(uuid.uuid5(NAMESPACE, f"{doc_id}\x00{version}\x00{record.unit}"))
    vectors: dict[str, Any] = {"dense": record.dense.tolist(), "mv": stored.tolist()}
    sparse = document_vector(record.text)
    if sparse is not None:
        vectors[SPARSE_NAME] = sparse
    return qm.PointStruct(id=pid, vector=vectors, payload=payload)
