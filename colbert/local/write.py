"""The writes of the embedded index: a document's rows in, a document's rows out (inside the caller's transaction;
:class:`colbert.local.LocalStore` owns the transaction and the lock).

A unit becomes one ``pages`` row (kind, metadata, unit dense vector), one ``multivectors`` blob (pooled and codec'd,
with its checksum: :mod:`colbert.local.checksum`), one ``sketches`` blob (the pooled first stage's centroids, in the
index's sketch codec as read in the write transaction: :mod:`colbert.local.sketch_codec`) and,
when it has them, one ``unit_text`` row and one ``unit_images`` blob — all written in the same transaction as the
``documents`` row, so a reader sees every part of a unit or none. The document's original file, when kept, is one
``originals`` row written (and deleted) in that same transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from colbert._validate import canonical_json
from colbert.codebook import Codebook
from colbert.local.assign import page_centroid_ids
from colbert.local.cells import new_unit_cells
from colbert.local.checksum import code_crc
from colbert.local.codes import distinct_centroids
from colbert.local.dense_codec import encode_dense
from colbert.local.filter import doc_field_rows
from colbert.local.fts import fts_add, fts_delete
from colbert.local.sketch import page_sketch
from colbert.local.sketch_codec import encode_sketches
from colbert.pooling import pool_tokens
from colbert.quantize import encode
from colbert.store import CollectionConfig, DocumentInfo, FileInfo, OriginalFile, UnitRecord

__all__ = ["DOC_SELECT", "UnitRow", "delete_rows", "document_info", "insert_document", "stored_tokens", "unit_row"]


@dataclass(frozen=True, slots=True)
class UnitRow:
    """One unit, ready for SQL (the CPU work done outside the write lock)."""

    unit: int
    kind: str
    metadata: str  # canonical JSON
    dense: bytes  # (dense_dim,) unit vector in the collection's dense codec (colbert.local.dense_codec)
    n: int  # stored multi-vector rows
    blob: bytes  # codec'd multi-vector
    sketch: np.ndarray  # (k, d) float16 centroids (the export form; stored in the index's sketch codec)
    text: str | None
    image: bytes | None
    centroids: bytes | None = None  # residual codecs: the unit's distinct centroid ids (colbert.local.codes)


def stored_tokens(record: UnitRecord, config: CollectionConfig) -> np.ndarray:
    """The (m, d) float32 rows a unit's multi-vector becomes before its codec (pooled when configured)."""
    mv = record.multivector  # (n, d) float32
    if config.pool_factor > 1:
        mv = pool_tokens(mv, config.pool_factor)  # (m, d), m ≈ n / pool_factor
    return np.ascontiguousarray(mv, dtype=np.float32)


def unit_row(
    record: UnitRecord,
    config: CollectionConfig,
    sketch_vectors: int,
    book: Codebook | None = None,
    dense_codec: str = "float32",
    mv: np.ndarray | None = None,
    sketch: np.ndarray | None = None,
) -> UnitRow:
    """A unit's rows; ``book``: the collection's codebook (required by the residual codecs, else unused);
    ``dense_codec``: how its dense vector is stored (:mod:`colbert.local.dense_codec`); ``mv`` / ``sketch``:
    its :func:`stored_tokens` and their sketch when the caller computed them already (a batch's sketches are
    cheaper together: :func:`colbert.local.sketch.page_sketches`)."""
    mv = stored_tokens(record, config) if mv is None else mv  # (m, d)
    dense = record.dense / np.linalg.norm(record.dense)  # (dense_dim,) unit
    sketch = page_sketch(mv, sketch_vectors) if sketch is None else sketch  # (k, d)
    blob = encode(mv, config.codec) if book is None else book.encode(mv, page_centroid_ids(book, mv, sketch))
    centroids = None if book is None else distinct_centroids(blob, mv.shape[0])
    return UnitRow(
        unit=record.unit,
        kind=record.kind,
        metadata=canonical_json(dict(record.metadata)),
        dense=encode_dense(dense, dense_codec),
        n=int(mv.shape[0]),
        blob=blob,
        sketch=sketch.astype(np.float16),  # (k, d)
        text=record.text,
        image=record.image,
        centroids=centroids,
    )


def insert_document(
    conn: sqlite3.Connection,
    doc_id: str,
    rows: Sequence[UnitRow],
    meta: dict[str, Any],
    content_hash: str | None,
    original: OriginalFile | None = None,
    warnings: tuple[str, ...] = (),
    *,
    sketch_codec: str,
) -> DocumentInfo:
    """Insert a document that is not there (the caller deleted any older one in the same transaction), with its
    original file when given (one ``originals`` row, in the same transaction); ``sketch_codec``: the index's, read
    in this transaction (:func:`colbert.local.schema.read_sketch_codec`)."""
    created = time.time()
    file = None if original is None else FileInfo.of(original)
    if original is not None and file is not None:
        conn.execute(
            "INSERT INTO originals (doc_id, media_type, name, size, sha256, data) VALUES (?, ?, ?, ?, ?, ?)",
            (doc_id, file.media_type, file.name, file.size, file.sha256, original.data),
        )
    conn.execute(
        "INSERT INTO documents (doc_id, num_pages, metadata, created_at, content_hash, warnings) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            doc_id,
            len(rows),
            canonical_json(meta),
            created,
            content_hash,
            canonical_json(list(warnings)) if warnings else None,
        ),
    )
    half = np.stack([r.sketch for r in rows]) if rows else None  # (P, k, d) float16
    sketches = [] if half is None else encode_sketches(half, sketch_codec)
    cells = None if half is None else new_unit_cells(conn, half)  # once a cell book exists (colbert.local.cells)
    for i, (row, sketch) in enumerate(zip(rows, sketches, strict=True)):
        cur = conn.execute(
            "INSERT INTO pages (doc_id, page, metadata, dense, kind) VALUES (?, ?, ?, ?, ?)",
            (doc_id, row.unit, row.metadata, row.dense, row.kind),
        )
        page_id = cur.lastrowid
        conn.execute(
            "INSERT INTO multivectors (page_id, n, data, crc) VALUES (?, ?, ?, ?)",
            (page_id, row.n, row.blob, code_crc(row.blob)),
        )
        conn.execute("INSERT INTO sketches (page_id, data) VALUES (?, ?)", (page_id, sketch))
        if cells is not None:
            conn.execute("INSERT INTO unit_cells (page_id, data) VALUES (?, ?)", (page_id, cells[i]))
        if row.centroids is not None:
            conn.execute("INSERT INTO unit_centroids (page_id, data) VALUES (?, ?)", (page_id, row.centroids))
        if row.text is not None:
            conn.execute("INSERT INTO unit_text (page_id, text) VALUES (?, ?)", (page_id, row.text))
            fts_add(conn, [(int(page_id or 0), row.text)])
        if row.image is not None:
            conn.execute("INSERT INTO unit_images (page_id, data) VALUES (?, ?)", (page_id, row.image))
    conn.executemany("INSERT INTO doc_fields (key, value, doc_id) VALUES (?, ?, ?)", doc_field_rows(doc_id, meta))
    return DocumentInfo(doc_id, len(rows), meta, created, content_hash, file, warnings)


def delete_rows(conn: sqlite3.Connection, doc_id: str, deletions_retained: int) -> bool:
    """Remove every row of ``doc_id`` and log its unit ids for other handles; False if it was not there."""
    ids = [r[0] for r in conn.execute("SELECT id FROM pages WHERE doc_id = ?", (doc_id,))]
    of_doc = "(SELECT id FROM pages WHERE doc_id = ?)"
    fts_delete(
        conn, conn.execute(f"SELECT page_id, text FROM unit_text WHERE page_id IN {of_doc}", (doc_id,)).fetchall()
    )
    for table in ("multivectors", "sketches", "unit_text", "unit_images", "unit_centroids", "unit_cells"):
        conn.execute(f"DELETE FROM {table} WHERE page_id IN {of_doc}", (doc_id,))
    conn.execute("DELETE FROM pages WHERE doc_id = ?", (doc_id,))
    conn.execute("DELETE FROM doc_fields WHERE doc_id = ?", (doc_id,))
    conn.execute("DELETE FROM originals WHERE doc_id = ?", (doc_id,))
    gone = conn.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,)).rowcount > 0
    conn.executemany("INSERT INTO deletions (page_id) VALUES (?)", [(i,) for i in ids])
    if ids:
        conn.execute(
            "DELETE FROM deletions WHERE seq <= (SELECT MAX(seq) FROM deletions) - ?",
            (deletions_retained,),
        )
    return gone


DOC_SELECT = (
    "SELECT d.doc_id, d.num_pages, d.metadata, d.created_at, d.content_hash, o.media_type, o.size, o.name, o.sha256, "
    "d.warnings FROM documents d LEFT JOIN originals o ON o.doc_id = d.doc_id"
)


def document_info(row: tuple[Any, ...]) -> DocumentInfo:
    """A document as :data:`DOC_SELECT` reads it (the columns :func:`insert_document` writes)."""
    file = None if row[5] is None else FileInfo(row[5], int(row[6]), row[7], row[8])
    warnings = () if row[9] is None else tuple(json.loads(row[9]))
    return DocumentInfo(row[0], row[1], json.loads(row[2]), row[3], row[4], file, warnings)
