"""The embedded index's one write path for new documents: many documents per write transaction.

:meth:`LocalStore.add_document` is :func:`add_documents` of one document. Written one at a time, each document
pays one ``BEGIN IMMEDIATE … COMMIT`` (with ``synchronous=FULL`` an fsync of the WAL) and the per-call work of
encoding and sketching a few pages; :func:`add_documents` does that work once for a batch: the units of every
document are encoded together (page sketches as batched GEMMs, :func:`colbert.local.sketch.page_sketches`; a
residual codec's codebook, when none is stored yet, trained on the whole batch's tokens) outside the write lock,
then every document is written in **one** transaction.

Guarantees, for the batch: each document is all or nothing — so is the batch (a
crash, ``kill -9`` or an error leaves none of its documents, or all of them); a document that exists is a
``DocumentExistsError`` (nothing of the batch written) unless ``replace``; readers never wait. The write lock is
held for the whole batch, so another writer waits that long (up to its ``busy_timeout_s``): batches of a few
hundred pages keep that short while the per-transaction cost is shared.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from colbert._validate import validate_document, validate_original, validate_warnings
from colbert.errors import DocumentExistsError, InvalidDocumentError
from colbert.local.coding import settle_codebook, unit_rows
from colbert.local.write import delete_rows, insert_document
from colbert.store import DocumentInfo, NewDocument

if TYPE_CHECKING:
    from colbert.local.store import LocalStore

__all__ = ["add_documents"]


def add_documents(store: LocalStore, documents: Sequence[NewDocument], *, replace: bool = False) -> list[DocumentInfo]:
    """Store ``documents`` in one transaction (module docstring); their infos, in order.

    ``InvalidDocumentError`` for a document ``add_document`` would refuse or a doc_id given twice;
    ``DocumentExistsError`` naming the documents that exist (unless ``replace``). Nothing is written then.
    """
    limits = store.options.limits
    checked = []
    seen: set[str] = set()
    for i, d in enumerate(documents):
        if not isinstance(d, NewDocument):
            raise InvalidDocumentError(f"documents[{i}] must be a NewDocument, got {type(d).__name__}")
        doc_id, records, meta = validate_document(d.doc_id, d.units, d.metadata, store.config, limits, d.content_hash)
        if doc_id in seen:
            raise InvalidDocumentError(f"document {doc_id!r} appears twice in one add_documents call")
        seen.add(doc_id)
        original = validate_original(d.original, limits)
        checked.append((doc_id, records, meta, d.content_hash, original, validate_warnings(d.warnings)))
    if not checked:
        return []
    records = [r for c in checked for r in c[1]]
    rows, trained = unit_rows(records, store.config, store.sketch_vectors, store.codebook(), store.dense_codec)
    with store._write() as conn:
        rows = settle_codebook(
            conn, rows, records, trained, store.config, store.sketch_vectors, store._path, store.dense_codec
        )
        exists = [c[0] for c in checked if conn.execute("SELECT 1 FROM documents WHERE doc_id = ?", (c[0],)).fetchone()]
        if exists and not replace:
            raise DocumentExistsError(_exist_message(exists))
        replaced = set(exists)
        out = []
        start = 0
        for doc_id, recs, meta, content_hash, original, noted in checked:
            if doc_id in replaced:
                delete_rows(conn, doc_id, store.options.deletions_retained)
            doc_rows = rows[start : start + len(recs)]
            start += len(recs)
            out.append(insert_document(conn, doc_id, doc_rows, meta, content_hash, original, noted))
        return out


def _exist_message(exists: list[str]) -> str:
    """What ``DocumentExistsError`` says for ``exists`` (one document: as ``add_document`` always said it)."""
    if len(exists) == 1:
        return f"document {exists[0]!r} already exists (pass replace=True to replace it)"
    named = ", ".join(repr(e) for e in exists[:5]) + (f" and {len(exists) - 5} more" if len(exists) > 5 else "")
    return f"documents already exist: {named} (pass replace=True to replace them)"
