"""The Qdrant side of :mod:`colbert.transfer`: every document read exactly as stored, one written back as stored."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from colbert.backend import StoredDocument, StoredUnit
from colbert.errors import ExportFormatError
from colbert.qdrant.layout import NAMESPACE, blob_point, blobs_collection, original_of, original_points, sized_batches
from colbert.qdrant.sparse import SPARSE_NAME, document_vector
from colbert.qdrant.store import QdrantStore
from colbert.quantize import Codec, decode, encode

__all__ = ["documents", "restore"]


def documents(store: QdrantStore, encoding: Codec) -> Iterator[StoredDocument]:
    """Every document of the collection as stored (its live version), in the order they were added."""
    client = store.client
    offset: Any = None
    records: list[dict[str, Any]] = []
    while True:  # every document record, then in the order they were added
        batch, offset = client.scroll(store._docs, limit=256, offset=offset, with_payload=True)
        records += [dict(r.payload or {}) for r in batch]
        if offset is None:
            break
    records.sort(key=lambda r: (float(r["created_at"]), str(r["doc_id"])))
    for rec in records:
        live = qm.Filter(
            must=[
                qm.FieldCondition(key="doc_id", match=qm.MatchValue(value=rec["doc_id"])),
                qm.FieldCondition(key="version", match=qm.MatchValue(value=rec["version"])),
            ]
        )
        points = _scroll_all(client, store.name, live, with_vectors=["dense", "mv"])
        blobs = _scroll_all(
            client, blobs_collection(store.name), live, with_vectors=False, with_payload=["unit", "image"]
        )
        images = {
            int((p.payload or {})["unit"]): (p.payload or {})["image"] for p in blobs if "image" in (p.payload or {})
        }
        units = [_unit(p, images, encoding) for p in sorted(points, key=lambda p: int((p.payload or {})["page"]))]
        file = rec.get("file")
        original = None if not file else original_of(client, store.name, str(rec["doc_id"]), rec["version"], file)
        yield StoredDocument(
            str(rec["doc_id"]),
            dict(rec["metadata"]),
            float(rec["created_at"]),
            rec.get("content_hash"),
            units,
            original,
            tuple(rec.get("warnings") or ()),
        )


def _unit(point: Any, images: dict[int, str], encoding: Codec) -> StoredUnit:
    """One unit point (and its image, base64 in the blobs collection) as stored."""
    pay = point.payload or {}
    vectors: Any = point.vector
    mv = np.asarray(vectors["mv"], dtype=np.float32)  # (n, d) as Qdrant stores them
    unit = int(pay["page"])
    image = images.get(unit)
    return StoredUnit(
        unit=unit,
        kind=str(pay.get("kind", "page")),
        metadata=dict(pay.get("page_metadata") or {}),
        dense=np.asarray(vectors["dense"], dtype=np.float32).tobytes(),
        rows=int(mv.shape[0]),
        mv=encode(mv, encoding),
        text=pay.get("text"),
        image=None if image is None else base64.b64decode(image),
        sketch=None,
    )


def _scroll_all(
    client: QdrantClient, collection: str, flt: qm.Filter, *, with_vectors: Any, with_payload: Any = True
) -> list[Any]:
    out: list[Any] = []
    offset: Any = None
    while True:
        batch, offset = client.scroll(
            collection,
            scroll_filter=flt,
            limit=256,
            offset=offset,
            with_payload=with_payload,
            with_vectors=with_vectors,
        )
        out += batch
        if offset is None:
            return out


def restore(store: QdrantStore, doc: StoredDocument, encoding: Codec) -> None:
    """Write one document as stored: its points, images and original under a new version, its record last."""
    if store.get_document(doc.doc_id) is not None:
        raise ExportFormatError(f"document {doc.doc_id!r} appears twice in the export")
    version = uuid.uuid4().hex
    dim = store.config.multivector_dim
    points = []
    for u in doc.units:
        mv = decode(u.mv, u.rows, dim, encoding)  # (rows, d) float32
        vectors: dict[str, Any] = {"dense": np.frombuffer(u.dense, np.float32).tolist(), "mv": mv.tolist()}
        sparse = document_vector(u.text)
        if sparse is not None:
            vectors[SPARSE_NAME] = sparse
        payload = {
            "doc_id": doc.doc_id,
            "page": u.unit,
            "kind": u.kind,
            "version": version,
            "metadata": doc.metadata,
            "page_metadata": u.metadata,
            "text": u.text,
        }
        pid = str(uuid.uuid5(NAMESPACE, f"{doc.doc_id}\x00{version}\x00{u.unit}"))
        points.append(qm.PointStruct(id=pid, vector=vectors, payload=payload))
    cap = store.options.max_request_bytes
    for batch in sized_batches(points, cap):
        store.client.upsert(store.name, batch, wait=True)
    images = (blob_point(doc.doc_id, version, u.unit, u.image) for u in doc.units if u.image is not None)
    for batch in sized_batches(images, cap):
        store.client.upsert(blobs_collection(store.name), batch, wait=True)
    file: dict[str, Any] | None = None
    if doc.original is not None:
        originals, file = original_points(doc.doc_id, version, doc.original, cap)
        for part in originals:
            store.client.upsert(blobs_collection(store.name), [part], wait=True)
    record = {
        "doc_id": doc.doc_id,
        "version": version,
        "num_units": len(doc.units),
        "metadata": doc.metadata,
        "created_at": doc.created_at,
        "content_hash": doc.content_hash,
        "file": file,
        "warnings": list(doc.warnings),
    }
    doc_point = str(uuid.uuid5(NAMESPACE, doc.doc_id))
    store.client.upsert(store._docs, [qm.PointStruct(id=doc_point, vector={}, payload=record)], wait=True)
