"""The backend side of :mod:`colbert.transfer`: every document of a collection read exactly as a backend stores
it (:func:`local_documents`, :func:`qdrant_documents`), and one document written back as stored
(:func:`restore`: no pooling, no renormalisation, the checks ``add_document`` makes)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from colbert._validate import canonical_json, validate_document, validate_original
from colbert.errors import ColbertError, IndexFormatError
from colbert.local import LocalStore
from colbert.quantize import Codec, decode, encode
from colbert.store import OriginalFile, Store, UnitRecord

__all__ = ["ExportFormatError", "StoredDocument", "StoredUnit", "local_documents", "qdrant_documents", "restore"]


@dataclass(frozen=True)
class StoredUnit:
    """One unit exactly as a backend stores it."""

    unit: int
    kind: str
    metadata: dict[str, Any]
    dense: bytes  # (dense_dim,) float32
    rows: int
    mv: bytes  # rows in the file's multivector_encoding
    text: str | None
    image: bytes | None
    sketch: bytes | None  # embedded only


@dataclass(frozen=True)
class StoredDocument:
    doc_id: str
    metadata: dict[str, Any]
    created_at: float
    content_hash: str | None
    units: list[StoredUnit]
    original: OriginalFile | None = None


class ExportFormatError(IndexFormatError):
    """The file is not a collection export this code reads (or it was cut short)."""


def local_documents(store: LocalStore) -> Iterator[StoredDocument]:
    """Every document of an embedded collection as stored, from one read snapshot."""
    with store._read() as conn:
        docs = conn.execute("SELECT doc_id, metadata, created_at, content_hash FROM documents ORDER BY seq").fetchall()
        for doc_id, metadata, created_at, content_hash in docs:
            rows = conn.execute(
                "SELECT p.page, p.kind, p.metadata, p.dense, m.n, m.data, t.text, i.data, s.data FROM pages p "
                "JOIN multivectors m ON m.page_id = p.id LEFT JOIN unit_text t ON t.page_id = p.id "
                "LEFT JOIN unit_images i ON i.page_id = p.id LEFT JOIN sketches s ON s.page_id = p.id "
                "WHERE p.doc_id = ? ORDER BY p.page",
                (doc_id,),
            ).fetchall()
            units = [
                StoredUnit(
                    unit=int(r[0]),
                    kind=str(r[1]),
                    metadata=json.loads(r[2]),
                    dense=bytes(r[3]),
                    rows=int(r[4]),
                    mv=bytes(r[5]),
                    text=r[6],
                    image=None if r[7] is None else bytes(r[7]),
                    sketch=None if r[8] is None else bytes(r[8]),
                )
                for r in rows
            ]
            found = conn.execute("SELECT data, media_type, name FROM originals WHERE doc_id = ?", (doc_id,)).fetchone()
            original = None if found is None else OriginalFile(bytes(found[0]), found[1], found[2])
            yield StoredDocument(doc_id, json.loads(metadata), float(created_at), content_hash, units, original)


def qdrant_documents(store: Store, encoding: Codec) -> Iterator[StoredDocument]:
    from qdrant_client import models as qm

    from colbert.qdrant import QdrantStore, blobs_collection
    from colbert.qdrant.layout import original_of

    assert isinstance(store, QdrantStore)
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
        images = {  # the unit images (the original file's parts are read below)
            int((p.payload or {})["unit"]): (p.payload or {})["image"]
            for p in _scroll_all(
                client, blobs_collection(store.name), live, with_vectors=False, with_payload=["unit", "image"]
            )
            if "image" in (p.payload or {})
        }
        units = [
            _qdrant_unit(p, images, encoding) for p in sorted(points, key=lambda p: int((p.payload or {})["page"]))
        ]
        file = rec.get("file")
        original = None if not file else original_of(client, store.name, str(rec["doc_id"]), rec["version"], file)
        yield StoredDocument(
            str(rec["doc_id"]),
            dict(rec["metadata"]),
            float(rec["created_at"]),
            rec.get("content_hash"),
            units,
            original,
        )


def _qdrant_unit(point: Any, images: dict[int, str], encoding: Codec) -> StoredUnit:
    """One Qdrant unit point (and its image, base64 in the blobs collection) as stored."""
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
    collection_client: Any, collection: str, flt: Any, *, with_vectors: Any, with_payload: Any = True
) -> list[Any]:
    out: list[Any] = []
    offset: Any = None
    while True:
        batch, offset = collection_client.scroll(
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


def restore(store: Store, doc: StoredDocument, encoding: Codec, sketch_vectors: int | None) -> None:
    """Write one document as stored (no pooling, no renormalisation), after the checks ``add_document`` makes."""
    config = store.config
    decoded = []
    for u in doc.units:
        try:
            mv = decode(u.mv, u.rows, config.multivector_dim, encoding)  # (rows, d) float32
            dense = np.frombuffer(u.dense, dtype=np.float32)
        except (ColbertError, ValueError) as exc:
            raise ExportFormatError(f"document {doc.doc_id!r} unit {u.unit}: {exc}") from exc
        decoded.append((u, mv, dense))
    records = [
        UnitRecord(u.unit, dense, mv, kind=u.kind, text=u.text, metadata=u.metadata, image=u.image)
        for u, mv, dense in decoded
    ]
    limits = store.options.limits  # type: ignore[attr-defined]
    validate_document(doc.doc_id, records, doc.metadata, config, limits, doc.content_hash)
    validate_original(doc.original, limits)
    if isinstance(store, LocalStore):
        _restore_local(store, doc, decoded, encoding, sketch_vectors)
    else:
        _restore_qdrant(store, doc, decoded)


def _restore_local(
    store: LocalStore,
    doc: StoredDocument,
    decoded: list[tuple[StoredUnit, np.ndarray, np.ndarray]],
    encoding: Codec,
    sketch_vectors: int | None,
) -> None:
    from colbert.local.sketch import page_sketch
    from colbert.local.write import UnitRow, insert_document

    codec = Codec(store.config.codec)
    rows = []
    for u, mv, _dense in decoded:
        blob = u.mv if encoding is codec else encode(mv, codec)
        stored = mv if encoding is codec else decode(blob, u.rows, store.config.multivector_dim, codec)
        sketch = u.sketch
        if sketch is None or sketch_vectors != store.sketch_vectors:
            sketch = page_sketch(stored, store.sketch_vectors).astype(np.float16).tobytes()
        rows.append(
            UnitRow(
                unit=u.unit,
                kind=u.kind,
                metadata=canonical_json(u.metadata),
                dense=u.dense,
                n=u.rows,
                blob=blob,
                sketch=sketch,
                text=u.text,
                image=u.image,
            )
        )
    with store._write() as conn:
        if conn.execute("SELECT 1 FROM documents WHERE doc_id = ?", (doc.doc_id,)).fetchone():
            raise ExportFormatError(f"document {doc.doc_id!r} appears twice in the export")
        insert_document(conn, doc.doc_id, rows, doc.metadata, doc.content_hash, doc.original)
        conn.execute("UPDATE documents SET created_at = ? WHERE doc_id = ?", (doc.created_at, doc.doc_id))


def _restore_qdrant(
    store: Store, doc: StoredDocument, decoded: list[tuple[StoredUnit, np.ndarray, np.ndarray]]
) -> None:
    from qdrant_client import models as qm

    from colbert.qdrant import QdrantStore, blobs_collection
    from colbert.qdrant.layout import NAMESPACE, blob_point, original_points, sized_batches
    from colbert.qdrant.sparse import SPARSE_NAME, document_vector

    assert isinstance(store, QdrantStore)
    if store.get_document(doc.doc_id) is not None:
        raise ExportFormatError(f"document {doc.doc_id!r} appears twice in the export")
    version = uuid.uuid4().hex
    points = []
    for u, mv, dense in decoded:
        vectors: dict[str, Any] = {"dense": dense.tolist(), "mv": mv.tolist()}
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
    images = (blob_point(doc.doc_id, version, u.unit, u.image) for u, _, _ in decoded if u.image is not None)
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
        "num_units": len(decoded),
        "metadata": doc.metadata,
        "created_at": doc.created_at,
        "content_hash": doc.content_hash,
        "file": file,
    }
    doc_point = str(uuid.uuid5(NAMESPACE, doc.doc_id))
    store.client.upsert(store._docs, [qm.PointStruct(id=doc_point, vector={}, payload=record)], wait=True)
