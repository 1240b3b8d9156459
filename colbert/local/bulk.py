"""The embedded index's one write path for new documents: many documents per write transaction, and many
transactions with the next batches encoded on other cores while one is written.

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

:func:`add_document_batches` is :func:`add_documents` over a stream of batches, in order, one transaction each,
with the CPU work split by what it needs. Encoding a batch (validation, sketches, codes: pure functions of the
documents, the collection's settings and its codebook — :class:`_Encoded`) needs no connection and runs in
``workers`` threads, ahead of the writer; writing one (SQL inside the write lock) stays on the calling thread,
the only SQLite writer. Threads rather than processes: the encode's time is in numpy GEMMs and array ufuncs,
which release the GIL, so two threads keep two cores busy without pickling ~400 KB of float32 per page to a
worker, and nothing is forked while a SQLite connection is open. At most ``workers + 1`` encoded batches wait
at once (bounded memory).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from colbert._validate import validate_document, validate_original, validate_warnings
from colbert.codebook import Codebook
from colbert.errors import DocumentExistsError, InvalidDocumentError
from colbert.local.coding import settle_codebook, unit_rows
from colbert.local.schema import read_sketch_codec
from colbert.local.write import UnitRow, delete_rows, insert_document
from colbert.quantize import needs_codebook
from colbert.store import CollectionConfig, DocumentInfo, NewDocument, OriginalFile, StoreLimits, UnitRecord

if TYPE_CHECKING:
    from colbert.local.store import LocalStore

__all__ = ["add_document_batches", "add_documents"]


@dataclass(frozen=True, slots=True)
class _Checked:
    """One validated document (what :func:`add_documents` checks before any encoding)."""

    doc_id: str
    records: list[UnitRecord]
    meta: dict[str, Any]
    content_hash: str | None
    original: OriginalFile | None
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Settings:
    """What encoding needs from the store, read on the writer's thread and passed to the encoding threads as
    values (no store or connection is touched off that thread)."""

    config: CollectionConfig
    limits: StoreLimits
    sketch_vectors: int
    book: Codebook | None
    dense_codec: str

    @classmethod
    def of(cls, store: LocalStore) -> _Settings:
        return cls(store.config, store.options.limits, store.sketch_vectors, store.codebook(), store.dense_codec)


@dataclass(frozen=True, slots=True)
class _Encoded:
    """A batch ready for its transaction: its documents, their units' rows in order, and the codebook trained on
    them when the codec needs one and none was stored (else None)."""

    documents: list[_Checked]
    rows: list[UnitRow]
    trained: Codebook | None


def add_documents(store: LocalStore, documents: Sequence[NewDocument], *, replace: bool = False) -> list[DocumentInfo]:
    """Store ``documents`` in one transaction (module docstring); their infos, in order.

    ``InvalidDocumentError`` for a document ``add_document`` would refuse or a doc_id given twice;
    ``DocumentExistsError`` naming the documents that exist (unless ``replace``). Nothing is written then.
    """
    return _write(store, _encode(documents, _Settings.of(store)), replace)


def add_document_batches(
    store: LocalStore, batches: Iterable[Sequence[NewDocument]], *, replace: bool = False, workers: int = 2
) -> Iterator[list[DocumentInfo]]:
    """:func:`add_documents` of each batch in order, each its own transaction, the next batches encoded by
    ``workers`` threads meanwhile (module docstring); yields each batch's infos once it is committed.

    An error in a batch (the errors of :func:`add_documents`) is raised when its turn to be written comes: the
    batches before it are stored, it and the ones after are not. A residual codec's codebook, when none is stored,
    is trained on the first batch, which is therefore encoded and written before the others are encoded.
    Nothing is read or written until the iterator is advanced; ``ValueError`` at once for ``workers`` < 1.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    return _pipeline(store, iter(batches), replace, workers)


def _pipeline(
    store: LocalStore, pending: Iterator[Sequence[NewDocument]], replace: bool, workers: int
) -> Iterator[list[DocumentInfo]]:
    """:func:`add_document_batches`' generator."""
    if needs_codebook(store.config.codec) and store.codebook() is None:
        first = next(pending, None)
        if first is None:
            return
        yield add_documents(store, first, replace=replace)
    settings = _Settings.of(store)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="bulk-encode")
    ahead: deque[Future[_Encoded]] = deque()
    try:
        for batch in pending:
            ahead.append(pool.submit(_encode, list(batch), settings))
            if len(ahead) > workers:  # every worker busy and one batch queued: write the oldest meanwhile
                yield _write(store, ahead.popleft().result(), replace)
        while ahead:
            yield _write(store, ahead.popleft().result(), replace)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _encode(documents: Sequence[NewDocument], settings: _Settings) -> _Encoded:
    """Validate ``documents`` and encode their units (no store access: safe on any thread)."""
    checked = []
    seen: set[str] = set()
    for i, d in enumerate(documents):
        if not isinstance(d, NewDocument):
            raise InvalidDocumentError(f"documents[{i}] must be a NewDocument, got {type(d).__name__}")
        doc_id, records, meta = validate_document(
            d.doc_id, d.units, d.metadata, settings.config, settings.limits, d.content_hash
        )
        if doc_id in seen:
            raise InvalidDocumentError(f"document {doc_id!r} appears twice in one add_documents call")
        seen.add(doc_id)
        original = validate_original(d.original, settings.limits)
        checked.append(_Checked(doc_id, records, meta, d.content_hash, original, validate_warnings(d.warnings)))
    if not checked:
        return _Encoded([], [], None)
    records = [r for c in checked for r in c.records]
    rows, trained = unit_rows(records, settings.config, settings.sketch_vectors, settings.book, settings.dense_codec)
    return _Encoded(checked, rows, trained)


def _write(store: LocalStore, batch: _Encoded, replace: bool) -> list[DocumentInfo]:
    """Write an encoded batch in one transaction (on the store's writer thread); once it is committed, an automatic
    cell training may start in the background (:mod:`colbert.local.auto_cells`)."""
    if not batch.documents:
        return []
    out = _transaction(store, batch, replace)
    store._auto.check()
    return out


def _transaction(store: LocalStore, batch: _Encoded, replace: bool) -> list[DocumentInfo]:
    with store._write() as conn:
        rows = settle_codebook(
            conn,
            batch.rows,
            [r for c in batch.documents for r in c.records],
            batch.trained,
            store.config,
            store.sketch_vectors,
            store._path,
            store.dense_codec,
        )
        exists = [
            c.doc_id
            for c in batch.documents
            if conn.execute("SELECT 1 FROM documents WHERE doc_id = ?", (c.doc_id,)).fetchone()
        ]
        if exists and not replace:
            raise DocumentExistsError(_exist_message(exists))
        replaced = set(exists)
        sketch_codec = read_sketch_codec(conn, store._path)
        out = []
        start = 0
        for c in batch.documents:
            if c.doc_id in replaced:
                delete_rows(conn, c.doc_id, store.options.deletions_retained)
            doc_rows = rows[start : start + len(c.records)]
            start += len(c.records)
            out.append(
                insert_document(
                    conn, c.doc_id, doc_rows, c.meta, c.content_hash, c.original, c.warnings, sketch_codec=sketch_codec
                )
            )
        return out


def _exist_message(exists: list[str]) -> str:
    """What ``DocumentExistsError`` says for ``exists`` (one document: as ``add_document`` always said it)."""
    if len(exists) == 1:
        return f"document {exists[0]!r} already exists (pass replace=True to replace it)"
    named = ", ".join(repr(e) for e in exists[:5]) + (f" and {len(exists) - 5} more" if len(exists) > 5 else "")
    return f"documents already exist: {named} (pass replace=True to replace them)"
