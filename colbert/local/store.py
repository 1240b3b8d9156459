"""The embedded index: one directory, one SQLite file, no server.

Why SQLite (stdlib) and this layout:

* **Atomic documents.** Adding, replacing or deleting a document (its row, every unit with its multi-vector blob,
  text and image, its filter postings) is ONE ``BEGIN IMMEDIATE … COMMIT`` transaction (:mod:`colbert.local.write`),
  all or nothing by SQLite's journal: a reopened index never holds half a document, whatever moment the process died.
* **Durability.** WAL journal with ``synchronous=FULL`` (default): the WAL is fsynced before ``COMMIT``
  returns, so an acknowledged ``add_document`` survives ``kill -9`` *and* power loss. ``NORMAL`` (an option)
  still survives ``kill -9`` (the WAL is in the OS page cache) but may lose the last commits on power loss;
  it saves one fsync per document, which is small beside writing the blobs.
* **Readers never wait for the writer.** In WAL mode each reader sees a consistent snapshot while one writer
  appends; every thread gets its own read connection; writers in this process take a lock, writers in other
  processes queue on SQLite's lock (``busy_timeout``).
* **First stage in memory, blobs on disk.** Every page's unit dense vector is held as stored in the collection's
  dense codec (:mod:`colbert.local.dense`, :mod:`colbert.local.dense_codec`: float32, int8 or binary, fixed at
  creation) by a handle whose first stage reads it (``dense``, or ``pooled`` with a ``prefetch``): from the open
  when that is ``LocalOptions.first_stage``, else from the first such search; brought up to date incrementally
  before each search. Exact cosine top-K over it costs milliseconds at 100k pages. Only the K candidates'
  multi-vector blobs are read (one query; why they are blobs of this file, measured: :mod:`colbert.local.schema`)
  and scored by exact MaxSim; the rest stay on disk (or in the OS page cache), so memory per page is the held
  row (int8: ``dense_dim`` + 4 bytes) plus 9 bytes of bookkeeping, and the first stage scores what is stored.
* **Pooled first stage** (``search(first_stage="pooled")``, format version 2): each page also stores a sketch
  of ``sketch_vectors`` k-means centroids of its tokens (:mod:`colbert.local.sketch`), held in memory (and stored,
  :mod:`colbert.local.sketch_codec`) as int8 with a float32 scale per centroid (1,056 bytes at 8 × 128), loaded
  by the first search that asks for them. Candidates are chosen by approximate MaxSim of the query's tokens
  against the sketches, which tracks exact MaxSim far more closely than one dense vector does; ``prefetch``
  optionally narrows the sketch scan to the dense top-``prefetch``.
* **ivf / pooled_ivf first stages**: inverted lists over the residual codebook's centroids (:mod:`colbert.local.ivf`)
  or over the sketches' cells (:mod:`colbert.local.cells`, every codec, :meth:`LocalStore.train_cells`); per-unit
  rows on disk, the inverse in memory, kept in step like the dense matrix (:mod:`colbert.local.inverted`). As
  ``LocalOptions.first_stage`` they serve the collections that have them (others: ``dense`` / ``pooled``); asked
  of one without, a ``FirstStageUnavailableError``.
* **Filters before ranking.** Filters (:mod:`colbert.filters`) select the matching pages (equality through an
  indexed postings table, ``doc_fields``) and the first stage ranks only those: k results at any selectivity.
* ``exhaustive=True`` (or ``query_dense=None``) scores every (matching) page, streaming blobs in blocks of
  ``scan_block_pages`` so memory stays bounded at any size.
* **Several processes, one directory.** Any number of handles, in this process or others, may open the same
  directory: writes serialise on SQLite's write lock (a writer waits up to ``busy_timeout_s``, then gets
  ``sqlite3.OperationalError: database is locked``), and every handle brings its in-memory first stage up to
  date with the other handles' commits at the start of each search (one small query; new rows are loaded
  incrementally), so a committed write is seen by the next search of every handle.

Multi-vectors are pooled (``pool_factor``) and encoded with the collection's codec at add time; stored bytes are
what is scored, so search results equal MaxSim over the decoded stored vectors. A full-text index built by older
tokeniser rules is rebuilt on open (:mod:`colbert.local.migrate`).
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from colbert._validate import (
    canonical_json,
    check_delete_filter,
    check_filter_keys,
    check_page_window,
    validate_config,
    validate_metadata,
)
from colbert.codebook import Codebook
from colbert.errors import CodecError, DocumentNotFoundError, IndexFormatError, InvalidQueryError
from colbert.filters import MetadataFilter
from colbert.hybrid import SearchMode
from colbert.local import migrate as _migrate
from colbert.local import schema as _schema
from colbert.local.bm25 import TextUnits, bm25_top
from colbert.local.bulk import add_documents
from colbert.local.cell_training import train_cells
from colbert.local.cells import CellBook
from colbert.local.checksum import check_codes
from colbert.local.coding import store_first_codebook, trained_codebook
from colbert.local.dense_codec import decode_dense
from colbert.local.filter import filter_docs_sql
from colbert.local.handle import LocalHandle
from colbert.local.modes import Bm25, FirstStage, filtered_ids, hits_of, hybrid_rank, text_rank, visual_rank
from colbert.local.options import LocalOptions, LocalStats
from colbert.local.scan import damaged_codes, read_pages
from colbert.local.write import DOC_SELECT, delete_rows, document_info
from colbert.quantize import decode, needs_codebook
from colbert.search import Query, SearchOptions, checked_query
from colbert.store import CollectionConfig, DocumentInfo, Hit, NewDocument, OriginalFile, UnitRecord

__all__ = ["LocalOptions", "LocalStats", "LocalStore"]

_MIN_PAGES_PER_READER = 8  # fewer candidates than this per reader: read them on the search's own connection


class LocalStore(LocalHandle):
    """A collection in ``directory`` (module docstring); thread-safe. Use :meth:`create` / :meth:`open`."""

    @classmethod
    def create(cls, directory: Path, config: CollectionConfig, options: LocalOptions | None = None) -> LocalStore:
        """A new, empty collection; ``IndexFormatError`` if ``directory`` already holds one."""
        validate_config(config)
        options = options or LocalOptions()
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / _schema.DB_FILE
        if path.exists():
            raise IndexFormatError(f"{path} already exists")
        conn = _schema.connect(path, synchronous="FULL", busy_timeout_s=options.busy_timeout_s, mmap_bytes=0)
        try:
            _schema.create_schema(
                conn,
                config,
                sketch_vectors=options.sketch_vectors,
                dense_codec=options.dense_codec,
            )
        finally:
            conn.close()
        return cls(directory, config, options)

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        expected: CollectionConfig | None = None,
        options: LocalOptions | None = None,
    ) -> LocalStore:
        """An existing collection; typed errors if it is missing, foreign, another version or another size.
        Brought up to date first (:mod:`colbert.local.migrate`)."""
        path = directory / _schema.DB_FILE
        if not path.is_file():
            raise IndexFormatError(f"no index at {directory} ({_schema.DB_FILE} is missing)")
        options = options or LocalOptions()
        try:
            conn = _schema.connect(path, synchronous="FULL", busy_timeout_s=options.busy_timeout_s, mmap_bytes=0)
        except sqlite3.DatabaseError as exc:
            raise IndexFormatError(f"{path} is not an index of this format ({exc})") from exc
        try:
            _migrate.migrate(conn, path)
            config = _schema.read_config(conn, path, expected)
        finally:
            conn.close()
        return cls(directory, config, options)

    # -- writes ---------------------------------------------------------------------------------------

    def add_document(
        self,
        doc_id: str,
        units: Sequence[UnitRecord],
        metadata: Mapping[str, Any] | None = None,
        *,
        replace: bool = False,
        content_hash: str | None = None,
        original: OriginalFile | None = None,
        warnings: Sequence[str] = (),
    ) -> DocumentInfo:
        """Store all units of a document (vectors, text, images), its ``original`` file, if given, and its
        ``warnings`` in one transaction (``DocumentExistsError`` unless ``replace``; a replace drops the old
        original): the one write path of :func:`colbert.local.bulk.add_documents`, for one document."""
        new = NewDocument(doc_id, units, metadata, content_hash=content_hash, original=original, warnings=warnings)
        return add_documents(self, [new], replace=replace)[0]

    def train_codebook(self, tokens: np.ndarray, *, k: int | None = None) -> Codebook:
        """Train the codebook of a residual codec on ``tokens`` (T, d) (a bulk load's sample; ``k`` centroids,
        default :func:`colbert.codebook.choose_k`) and store it, before the first document; ``CodecError`` for
        another codec or when the collection has a codebook already."""
        book = trained_codebook(self.config, tokens, k)
        with self._write() as conn:
            store_first_codebook(conn, book, int(np.shape(tokens)[0]), self._path)
        return book

    def train_cells(self, k: int | None = None) -> tuple[CellBook, int]:
        """The ``pooled_ivf`` cells, trained unless stored, all units filed (:mod:`colbert.local.cell_training`)."""
        return train_cells(self, k)

    def update_metadata(self, doc_id: str, metadata: Mapping[str, Any]) -> DocumentInfo:
        """Replace a document's metadata (and its filter index) in one transaction; units are untouched
        (``DocumentNotFoundError`` if there is no such document)."""
        if not isinstance(doc_id, str):
            raise InvalidQueryError(f"doc_id must be a str, got {type(doc_id).__name__}")
        meta = validate_metadata(metadata, self.options.limits)
        with self._write() as conn:
            updated = conn.execute("UPDATE documents SET metadata = ? WHERE doc_id = ?", (canonical_json(meta), doc_id))
            if updated.rowcount == 0:
                raise DocumentNotFoundError(f"no document {doc_id!r} in collection {self.directory.name!r}")
            conn.execute("DELETE FROM doc_fields WHERE doc_id = ?", (doc_id,))
            conn.executemany(
                "INSERT INTO doc_fields (key, value, doc_id) VALUES (?, ?, ?)",
                [(k, canonical_json(v), doc_id) for k, v in meta.items() if isinstance(v, str | int)],
            )
            row = conn.execute(f"{DOC_SELECT} WHERE d.doc_id = ?", (doc_id,)).fetchone()
        return document_info(row)

    def delete_document(self, doc_id: str) -> bool:
        """Remove a document and all its units in one transaction; False if it did not exist."""
        if not isinstance(doc_id, str):
            raise InvalidQueryError(f"doc_id must be a str, got {type(doc_id).__name__}")
        with self._write() as conn:
            return delete_rows(conn, doc_id, self.options.deletions_retained)

    def delete_documents(self, filter: Mapping[str, Any] | MetadataFilter, *, dry_run: bool = False) -> list[str]:
        """Delete every document whose metadata passes ``filter`` in one transaction; their ids, sorted.
        ``dry_run``: delete nothing, answer the ids that would go. ``UnknownFilterKeyError`` if the filter names
        a key no document has (:func:`colbert._validate.check_filter_keys`)."""
        flt = check_delete_filter(filter)
        check_filter_keys(flt, self.metadata_keys)
        sql, params = filter_docs_sql(flt)
        with self._read() if dry_run else self._write() as conn:
            doomed = sorted(r[0] for r in conn.execute(sql, params))
            if not dry_run:
                for doc_id in doomed:
                    delete_rows(conn, doc_id, self.options.deletions_retained)
        return doomed

    # -- reads ----------------------------------------------------------------------------------------

    def get_document(self, doc_id: str) -> DocumentInfo | None:
        with self._read() as conn:
            row = conn.execute(f"{DOC_SELECT} WHERE d.doc_id = ?", (doc_id,)).fetchone()
        return None if row is None else document_info(row)

    def find_by_hash(self, content_hash: str) -> DocumentInfo | None:
        """The earliest-added document with this content hash (index ``documents_by_hash``), None if none."""
        if not isinstance(content_hash, str):
            raise InvalidQueryError(f"content_hash must be a str, got {type(content_hash).__name__}")
        with self._read() as conn:
            row = conn.execute(
                f"{DOC_SELECT} WHERE d.content_hash = ? ORDER BY d.seq LIMIT 1", (content_hash,)
            ).fetchone()
        return None if row is None else document_info(row)

    def list_documents(self, *, offset: int = 0, limit: int = 100) -> list[DocumentInfo]:
        """Documents in the order they were (last) added."""
        check_page_window(offset, limit, self.options.limits)
        with self._read() as conn:
            rows = conn.execute(f"{DOC_SELECT} ORDER BY d.seq LIMIT ? OFFSET ?", (limit, offset)).fetchall()
        return [document_info(r) for r in rows]

    def count(self) -> tuple[int, int]:
        with self._read() as conn:
            docs = conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
            pages = conn.execute("SELECT COUNT(*) FROM pages").fetchone()[0]
        return int(docs), int(pages)

    def get_unit(self, doc_id: str, unit: int) -> UnitRecord | None:
        """The unit as stored: unit dense vector, decoded (and pooled, if configured) multi-vector, kind,
        metadata, text and image."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT p.metadata, p.dense, m.n, m.data, p.kind, t.text, i.data, p.id, m.crc FROM pages p "
                "JOIN multivectors m ON m.page_id = p.id LEFT JOIN unit_text t ON t.page_id = p.id "
                "LEFT JOIN unit_images i ON i.page_id = p.id WHERE p.doc_id = ? AND p.page = ?",
                (doc_id, unit),
            ).fetchone()
            if row is None:
                return None
            check_codes(conn, [(row[7], row[3], row[8])])
        dense = decode_dense(row[1], 1, self.config.dense_dim, self.dense_codec)[0]  # (dense_dim,) unit
        mv = self.decoded(row[3], row[2])
        meta = json.loads(row[0])
        return UnitRecord(unit, dense, mv, kind=row[4], text=row[5], metadata=meta, image=row[6])

    def decoded(self, blob: bytes, n: int) -> np.ndarray:
        """A stored multi-vector blob of ``n`` rows as the (n, d) float32 values it stores."""
        book = self.codebook()
        try:
            if book is not None:
                return book.decode(blob, n)
            return np.asarray(decode(blob, n, self.config.multivector_dim, self.config.codec), np.float32)
        except CodecError as exc:
            raise damaged_codes(self._path, self.config.codec, exc) from exc

    def get_image(self, doc_id: str, unit: int) -> bytes | None:
        """The unit's image bytes (None: no such unit, or it has no image); reads nothing else."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT i.data FROM pages p JOIN unit_images i ON i.page_id = p.id WHERE p.doc_id = ? AND p.page = ?",
                (doc_id, unit),
            ).fetchone()
        return None if row is None else bytes(row[0])

    def get_original(self, doc_id: str) -> OriginalFile | None:
        """The document's original file (None: no such document, or it was stored without one)."""
        with self._read() as conn:
            row = conn.execute("SELECT data, media_type, name FROM originals WHERE doc_id = ?", (doc_id,)).fetchone()
        return None if row is None else OriginalFile(bytes(row[0]), row[1], row[2])

    def unit_numbers(self, doc_id: str) -> list[int] | None:
        """The document's unit numbers, ascending, from one read snapshot; None if there is no such document."""
        with self._read() as conn:
            if conn.execute("SELECT 1 FROM documents WHERE doc_id = ?", (doc_id,)).fetchone() is None:
                return None
            rows = conn.execute("SELECT page FROM pages WHERE doc_id = ? ORDER BY page", (doc_id,)).fetchall()
        return [int(r[0]) for r in rows]

    def metadata_keys(self, keys: Iterable[str]) -> set[str]:
        """Those of ``keys`` that some document's metadata holds with a value other than null and ``[]`` (what
        ``$exists: true`` matches): a filter on another key can match by ``$ne`` / ``$exists: false`` only (a typo,
        most likely). A key once seen is remembered by this handle; an unseen one is looked for each time (a scan
        stopping at the first holder)."""
        wanted = set(keys)
        with self._sync_lock:
            missing = wanted - self._seen_keys
        if missing:
            with self._read() as conn:
                found = {key for key in sorted(missing) if conn.execute(_HOLDS_KEY, {"path": f'$."{key}"'}).fetchone()}
            with self._sync_lock:
                self._seen_keys |= found
        with self._sync_lock:
            return wanted & self._seen_keys

    def search(self, query: Query, options: SearchOptions) -> list[Hit]:
        """Top-k units of ``options.mode`` (:mod:`colbert.hybrid`): ``visual`` (the default) is exact MaxSim among
        the first stage's ``candidates`` (every unit if exhaustive); ``text`` is BM25 over ``query.text`` (no
        vectors needed); ``hybrid`` fuses both (:mod:`colbert.local.modes`).

        ``options.first_stage`` (None: ``LocalOptions.first_stage``):

        * ``"dense"`` (the store contract): the ``candidates`` pages nearest ``query.dense`` by cosine; with
          ``query.dense=None`` every page is scored exactly (as ``exhaustive=True``).
        * ``"pooled"``: the ``candidates`` pages with the best approximate MaxSim of ``query.multivector``
          against their sketches (:mod:`colbert.local.sketch`). Sketches are scored for the ``prefetch`` pages
          nearest ``query.dense`` when both are given, else for every (matching) page. ``query_groups``: score
          the sketches with the query pooled to that many weighted centroids (:func:`colbert.local.sketch.pool_query`;
          ~Lq/groups times cheaper, a coarser ranking); the rerank always uses every query token.
        * ``"ivf"`` / ``"pooled_ivf"``: see the module docstring; ``pooled_ivf`` sketch-scores the ``prefetch``
          (default :data:`colbert.local.cells.DEFAULT_REACH`) units its cells rank first.

        ``options.filter`` (:mod:`colbert.filters`) restricts every stage to the matching pages, BM25 included.
        """
        opts = options.under(self.options.limits)
        checked = checked_query(query, opts, self.config)
        k, flt = opts.k, opts.filter
        kind = opts.first_stage or self.options.first_stage
        if kind == "ivf" and opts.first_stage is None and not needs_codebook(self.config.codec):
            kind = "dense"  # LocalOptions.first_stage: ivf where a collection has centroid lists (asked: an error)
        q, dense = checked.multivector, checked.dense
        unranked = opts.mode is SearchMode.TEXT or opts.exhaustive or (dense is None and kind == "dense")
        how = None if unranked else FirstStage(kind, k, opts.prefetch, opts.query_groups)  # its count: below
        with self._read() as conn:  # the views hold what ``how`` reads (a default pooled_ivf may become pooled)
            snap, units, how = self._search_views(conn, how, opts.first_stage is not None, dense is not None)
            candidates = opts.candidates_for(snap.n_alive)  # the default grows with the live units
            how = None if how is None else replace(how, candidates=candidates)
            allowed = filtered_ids(conn, flt) if flt else None
            if opts.mode is SearchMode.TEXT:
                return hits_of(conn, text_rank(self._bm25(conn, units, checked.terms, allowed), k), opts)
            assert q is not None
            visual = None if how is None else self._first_stage(conn, snap, q, dense, allowed, how)
            if opts.mode is SearchMode.HYBRID:
                bm25 = self._bm25(conn, units, checked.terms, allowed)
                rerank = lambda ids, n: self._rerank(conn, q, n, ids)  # noqa: E731
                score_all = lambda n: self._scorer.top(conn, q, n, allowed)  # noqa: E731
                return hits_of(conn, hybrid_rank(bm25, k, candidates, visual, rerank, score_all, opts.fusion), opts)
            exact = self._scorer.top(conn, q, k, allowed) if visual is None else self._rerank(conn, q, k, visual[0])
            return hits_of(conn, visual_rank(exact, visual), opts)

    def _bm25(
        self, conn: sqlite3.Connection, units: TextUnits, terms: tuple[str, ...], allowed: np.ndarray | None
    ) -> Bm25:
        """BM25 top-n of the query's ``terms`` in this read transaction (:mod:`colbert.local.bm25`): the ranking
        calls ``bm25_top`` itself, with this transaction's postings bound."""
        return functools.partial(bm25_top, conn, units, self._postings, terms, allowed=allowed)

    def _rerank(
        self, conn: sqlite3.Connection, q: np.ndarray, k: int, chosen: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact MaxSim top-k of the candidates. Their blobs are read by ``read_threads`` connections at once
        (cold blobs are disk reads, ~0.5 ms per 256 KiB page one at a time; several in flight overlap them),
        and each chunk is scored as it arrives. A helper connection's read transaction starts after the
        search's own, so a candidate deleted in between is skipped (as if the search had started later); page
        ids are never reused and a page's blob never changes, so no other difference can be seen."""
        ids = np.sort(chosen)  # (c,) ascending: neighbouring rows of the table
        threads = min(self.options.read_threads, max(1, ids.size // _MIN_PAGES_PER_READER))
        if threads <= 1:
            return self._scorer.top(conn, q, k, ids)
        with self._sync_lock:
            if self._readers is None:
                self._readers = ThreadPoolExecutor(self.options.read_threads, thread_name_prefix="colbert-read")
            readers = self._readers
        futures = [readers.submit(self._read_chunk, chunk) for chunk in np.array_split(ids, threads)]
        return self._scorer.top_of(q, k, (f.result() for f in futures))

    def _read_chunk(self, ids: np.ndarray) -> tuple[np.ndarray, list[int], list[bytes]]:
        with self._read() as conn:  # this reader thread's own connection
            return read_pages(conn, ids)

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_HOLDS_KEY = (  # a document whose metadata holds the key at :path with a value other than null and []
    "SELECT 1 FROM documents WHERE json_type(metadata, :path) NOT IN ('null') AND "
    "(json_type(metadata, :path) != 'array' OR json_array_length(metadata, :path) > 0) LIMIT 1"
)
