"""The embedded index: one directory, one SQLite file, no server.

Why SQLite (stdlib) and this layout:

* **Atomic documents.** Adding, replacing or deleting a document (its row, every page, every multi-vector
  blob, its filter postings) is ONE ``BEGIN IMMEDIATE … COMMIT`` transaction. SQLite's journal makes it all
  or nothing, so a reopened index never holds half a document, whatever moment the process died.
* **Durability.** WAL journal with ``synchronous=FULL`` (default): the WAL is fsynced before ``COMMIT``
  returns, so an acknowledged ``add_document`` survives ``kill -9`` *and* power loss. ``NORMAL`` (an option)
  still survives ``kill -9`` (the WAL is in the OS page cache) but may lose the last commits on power loss;
  it saves one fsync per document, which is small beside writing the blobs.
* **Readers never wait for the writer.** In WAL mode each reader sees a consistent snapshot while one writer
  appends; every thread gets its own read connection; writers in this process take a lock, writers in other
  processes queue on SQLite's lock (``busy_timeout``).
* **First stage in memory, blobs on disk.** Every page's unit dense vector is held in one float32 matrix
  (:mod:`colbert._dense`, rebuilt on open, brought up to date incrementally before each search); exact
  cosine top-K over it costs milliseconds at 100k pages. Only the K candidates' multi-vector blobs are read
  (one query) and scored by exact MaxSim (:func:`colbert.scoring.maxsim`); the rest stay on disk (or in the
  OS page cache), so memory per page is ``dense_dim × 4`` bytes plus 9 bytes of bookkeeping.
* **Pooled first stage** (``search(first_stage="pooled")``, format version 2): each page also stores a sketch
  of ``sketch_vectors`` k-means centroids of its tokens (:mod:`colbert._sketch`), held in memory as bf16
  (``sketch_vectors × multivector_dim × 2`` bytes per page, 2 KiB at 8 × 128). Candidates are chosen by
  approximate MaxSim of the query's tokens against the sketches, which tracks exact MaxSim far more closely
  than one dense vector does; ``prefetch`` optionally narrows the sketch scan to the dense top-``prefetch``.
* **Filters before ranking.** Filters (:mod:`colbert.filters`) select the matching pages (equality through an
  indexed postings table, ``doc_fields``) and the first stage ranks only those, so k results come back
  however selective the filter is.
* ``exhaustive=True`` (or ``query_dense=None``) scores every (matching) page, streaming blobs in blocks of
  ``scan_block_pages`` so memory stays bounded at any size.

Multi-vectors are pooled (``pool_factor``) and encoded with the collection's codec at add time; stored bytes
are what is scored, so search results equal MaxSim over the decoded stored vectors.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from colbert import _schema
from colbert._dense import DenseSnapshot
from colbert._local_filter import doc_field_rows, filter_docs_sql, filter_sql
from colbert._local_scan import PageScorer, read_pages
from colbert._sketch import page_sketch, pool_query, to_bf16_bits
from colbert.errors import (
    DocumentExistsError,
    IndexFormatError,
    InvalidFilterError,
    InvalidQueryError,
    StoreClosedError,
)
from colbert.filters import MetadataFilter
from colbert.pooling import pool_tokens
from colbert.quantize import decode, encode
from colbert.store import (
    CollectionConfig,
    DocumentInfo,
    Hit,
    PageRecord,
    StoreLimits,
    canonical_json,
    validate_config,
    validate_document,
    validate_filter,
    validate_search,
)

__all__ = ["LocalOptions", "LocalStats", "LocalStore"]

_MIN_PAGES_PER_READER = 8  # fewer candidates than this per reader: read them on the search's own connection


@dataclass(frozen=True)
class LocalOptions:
    """Tuning and durability knobs of the embedded backend."""

    synchronous: str = "FULL"  # FULL: survives power loss; NORMAL: survives kill -9 (see module docstring)
    busy_timeout_s: float = 30.0  # how long a writer waits for another process's write transaction
    mmap_bytes: int = 1 << 31  # SQLite mmap window (capped by SQLite at 2 GiB in CPython's build; 0: off)
    page_size: int = 65536  # SQLite page size, fixed at creation (64 KiB: a 256 KiB blob is 4 overflow pages)
    sketch_vectors: int = _schema.DEFAULT_SKETCH_VECTORS  # pooled first-stage centroids per page, fixed at creation
    first_stage: str = "dense"  # what search() uses when not told: "dense" (the store contract) or "pooled"
    scan_block_pages: int = 128  # pages decoded and scored at a time (bounds search memory)
    deletions_retained: int = 100_000  # deletion log rows kept for incremental refresh of other handles
    read_threads: int = 4  # connections reading a rerank's candidate blobs concurrently (1: the search's own)
    limits: StoreLimits = field(default_factory=StoreLimits)

    def __post_init__(self) -> None:
        if self.synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, got {self.synchronous!r}")
        if self.first_stage not in ("dense", "pooled"):
            raise ValueError(f"first_stage must be 'dense' or 'pooled', got {self.first_stage!r}")
        if min(self.scan_block_pages, self.deletions_retained, self.sketch_vectors, self.read_threads) < 1:
            raise ValueError("scan_block_pages, deletions_retained, sketch_vectors and read_threads must be >= 1")


@dataclass(frozen=True)
class LocalStats:
    """Sizes of a collection: counts, stored multi-vector rows and bytes, the first stage's memory."""

    documents: int
    pages: int
    vectors: int  # stored (pooled) multi-vector rows
    blob_bytes: int  # codec'd multi-vector bytes, without SQLite's page overhead
    memory_bytes: int  # the in-memory first stages (dense matrix + sketches + ids + live mask) of this handle


class LocalStore:
    """A collection in ``directory`` (module docstring); thread-safe. Use :meth:`create` / :meth:`open`."""

    config: CollectionConfig

    def __init__(self, directory: Path, config: CollectionConfig, options: LocalOptions) -> None:
        self.directory = directory
        self.config = config
        self.options = options
        self._path = directory / _schema.DB_FILE
        self._write_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        self._writer = self._connect()
        self.sketch_vectors = _schema.read_sketch_vectors(self._writer, self._path)
        self._scorer = PageScorer(config, options.scan_block_pages)
        self._readers: ThreadPoolExecutor | None = None  # made on the first concurrent rerank read
        self._snapshot: DenseSnapshot | None = None
        with self._read() as conn:
            self._snapshot_for(conn)  # load the dense matrix now rather than on the first search

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
            _schema.create_schema(conn, config, page_size=options.page_size, sketch_vectors=options.sketch_vectors)
        finally:
            conn.close()
        return cls(directory, config, options)

    @classmethod
    def open(
        cls, directory: Path, *, expected: CollectionConfig | None = None, options: LocalOptions | None = None
    ) -> LocalStore:
        """An existing collection; typed errors if it is missing, foreign, another version or another size."""
        path = directory / _schema.DB_FILE
        if not path.is_file():
            raise IndexFormatError(f"no index at {directory} ({_schema.DB_FILE} is missing)")
        options = options or LocalOptions()
        try:
            conn = _schema.connect(path, synchronous="FULL", busy_timeout_s=options.busy_timeout_s, mmap_bytes=0)
        except sqlite3.DatabaseError as exc:
            raise IndexFormatError(f"{path} is not an index of this format ({exc})") from exc
        try:
            config = _schema.read_config(conn, path, expected)
        finally:
            conn.close()
        return cls(directory, config, options)

    # -- writes ---------------------------------------------------------------------------------------

    def add_document(
        self,
        doc_id: str,
        pages: Sequence[PageRecord],
        metadata: Mapping[str, Any] | None = None,
        *,
        replace: bool = False,
    ) -> DocumentInfo:
        """Store all pages of a document in one transaction (``DocumentExistsError`` unless ``replace``)."""
        doc_id, records, meta = validate_document(doc_id, pages, metadata, self.config, self.options.limits)
        rows = [self._page_row(r) for r in records]  # CPU work (pooling, encoding) outside the write lock
        with self._write() as conn:
            exists = conn.execute("SELECT 1 FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
            if exists and not replace:
                raise DocumentExistsError(f"document {doc_id!r} already exists (pass replace=True to replace it)")
            if exists:
                self._delete_rows(conn, doc_id)
            created = time.time()
            conn.execute(
                "INSERT INTO documents (doc_id, num_pages, metadata, created_at) VALUES (?, ?, ?, ?)",
                (doc_id, len(rows), canonical_json(meta), created),
            )
            for page, page_meta, dense, n, blob, sketch in rows:
                cur = conn.execute(
                    "INSERT INTO pages (doc_id, page, metadata, dense) VALUES (?, ?, ?, ?)",
                    (doc_id, page, page_meta, dense),
                )
                conn.execute("INSERT INTO multivectors (page_id, n, data) VALUES (?, ?, ?)", (cur.lastrowid, n, blob))
                conn.execute("INSERT INTO sketches (page_id, data) VALUES (?, ?)", (cur.lastrowid, sketch))
            conn.executemany(
                "INSERT INTO doc_fields (key, value, doc_id) VALUES (?, ?, ?)", doc_field_rows(doc_id, meta)
            )
        return DocumentInfo(doc_id, len(rows), meta, created)

    def delete_document(self, doc_id: str) -> bool:
        """Remove a document and all its pages in one transaction; False if it did not exist."""
        if not isinstance(doc_id, str):
            raise InvalidQueryError(f"doc_id must be a str, got {type(doc_id).__name__}")
        with self._write() as conn:
            return self._delete_rows(conn, doc_id)

    def delete_documents(self, filter: Mapping[str, Any] | MetadataFilter) -> list[str]:
        """Delete every document whose metadata passes ``filter`` (non-empty) in one transaction; their ids."""
        flt = validate_filter(filter)
        if not flt:
            raise InvalidFilterError("delete by filter needs at least one condition (an empty filter matches all)")
        sql, params = filter_docs_sql(flt)
        with self._write() as conn:
            doomed = sorted(r[0] for r in conn.execute(sql, params))
            for doc_id in doomed:
                self._delete_rows(conn, doc_id)
        return doomed

    def _page_row(self, record: PageRecord) -> tuple[int, str, bytes, int, bytes, bytes]:
        mv = record.multivector  # (n, d) float32
        if self.config.pool_factor > 1:
            mv = pool_tokens(mv, self.config.pool_factor)  # (m, d), m ≈ n / pool_factor
        dense = record.dense / np.linalg.norm(record.dense)  # (dense_dim,) unit
        blob = encode(np.ascontiguousarray(mv, dtype=np.float32), self.config.codec)
        sketch = page_sketch(mv, self.sketch_vectors).astype(np.float16).tobytes()  # (k, d) float16
        meta = canonical_json(dict(record.metadata))
        return record.page, meta, dense.astype(np.float32).tobytes(), int(mv.shape[0]), blob, sketch

    def _delete_rows(self, conn: sqlite3.Connection, doc_id: str) -> bool:
        ids = [r[0] for r in conn.execute("SELECT id FROM pages WHERE doc_id = ?", (doc_id,))]
        conn.execute("DELETE FROM multivectors WHERE page_id IN (SELECT id FROM pages WHERE doc_id = ?)", (doc_id,))
        conn.execute("DELETE FROM sketches WHERE page_id IN (SELECT id FROM pages WHERE doc_id = ?)", (doc_id,))
        conn.execute("DELETE FROM pages WHERE doc_id = ?", (doc_id,))
        conn.execute("DELETE FROM doc_fields WHERE doc_id = ?", (doc_id,))
        gone = conn.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,)).rowcount > 0
        conn.executemany("INSERT INTO deletions (page_id) VALUES (?)", [(i,) for i in ids])
        if ids:
            conn.execute(
                "DELETE FROM deletions WHERE seq <= (SELECT MAX(seq) FROM deletions) - ?",
                (self.options.deletions_retained,),
            )
        return gone

    # -- reads ----------------------------------------------------------------------------------------

    def get_document(self, doc_id: str) -> DocumentInfo | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT doc_id, num_pages, metadata, created_at FROM documents WHERE doc_id = ?", (doc_id,)
            ).fetchone()
        return None if row is None else DocumentInfo(row[0], row[1], json.loads(row[2]), row[3])

    def list_documents(self, *, offset: int = 0, limit: int = 100) -> list[DocumentInfo]:
        """Documents in the order they were (last) added."""
        _check_page_window(offset, limit, self.options.limits)
        with self._read() as conn:
            rows = conn.execute(
                "SELECT doc_id, num_pages, metadata, created_at FROM documents ORDER BY seq LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
        return [DocumentInfo(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]

    def count(self) -> tuple[int, int]:
        with self._read() as conn:
            docs = conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
            pages = conn.execute("SELECT COUNT(*) FROM pages").fetchone()[0]
        return int(docs), int(pages)

    def stats(self) -> LocalStats:
        """Counts and sizes; first checkpoints the WAL into the main file, so file sizes are settled."""
        with self._write_lock:
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        with self._read() as conn:
            snap = self._snapshot_for(conn)
            vectors, blobs = conn.execute(
                "SELECT COALESCE(SUM(n), 0), COALESCE(SUM(length(data)), 0) FROM multivectors"
            ).fetchone()
            docs = conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        memory = snap.matrix.nbytes + snap.sketch.nbytes + snap.ids.nbytes + snap.alive.nbytes
        return LocalStats(int(docs), snap.n_alive, int(vectors), int(blobs), int(memory))

    def get_page(self, doc_id: str, page: int) -> PageRecord | None:
        """The page as stored: unit dense vector, decoded (and pooled, if configured) multi-vector."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT p.metadata, p.dense, m.n, m.data FROM pages p "
                "JOIN multivectors m ON m.page_id = p.id WHERE p.doc_id = ? AND p.page = ?",
                (doc_id, page),
            ).fetchone()
        if row is None:
            return None
        dense = np.frombuffer(row[1], dtype=np.float32).copy()  # (dense_dim,)
        mv = np.asarray(decode(row[3], row[2], self.config.multivector_dim, self.config.codec), np.float32)
        return PageRecord(page=page, dense=dense, multivector=mv, metadata=json.loads(row[0]))

    def search(
        self,
        query_multivector: np.ndarray,
        query_dense: np.ndarray | None,
        k: int = 10,
        *,
        filter: Mapping[str, Any] | None = None,
        candidates: int = 200,
        exhaustive: bool = False,
        first_stage: str | None = None,
        prefetch: int | None = None,
        query_groups: int | None = None,
    ) -> list[Hit]:
        """Top-k pages by exact MaxSim among the first stage's ``candidates`` (every page if exhaustive).

        ``first_stage`` (None: ``LocalOptions.first_stage``):

        * ``"dense"`` (the store contract): the ``candidates`` pages nearest ``query_dense`` by cosine; with
          ``query_dense=None`` every page is scored exactly (as ``exhaustive=True``).
        * ``"pooled"``: the ``candidates`` pages with the best approximate MaxSim of ``query_multivector``
          against their sketches (:mod:`colbert._sketch`). Sketches are scored for the ``prefetch`` pages
          nearest ``query_dense`` when both are given, else for every (matching) page. ``query_groups``: score
          the sketches with the query pooled to that many weighted centroids (:func:`colbert._sketch.pool_query`;
          ~Lq/groups times cheaper, a coarser ranking); the rerank always uses every query token.

        ``filter`` (:mod:`colbert.filters`) restricts every stage to the matching pages.
        """
        limits = self.options.limits
        q, dense = validate_search(query_multivector, query_dense, k, candidates, self.config, limits)
        flt = validate_filter(filter)
        first_stage = self.options.first_stage if first_stage is None else first_stage
        if first_stage not in ("dense", "pooled"):
            raise InvalidQueryError(f"first_stage must be 'dense' or 'pooled', got {first_stage!r}")
        if prefetch is not None and (
            isinstance(prefetch, bool) or not isinstance(prefetch, int) or not candidates <= prefetch
        ):
            raise InvalidQueryError(f"prefetch must be None or an int >= candidates ({candidates}), got {prefetch!r}")
        if query_groups is not None and (
            isinstance(query_groups, bool) or not isinstance(query_groups, int) or query_groups < 1
        ):
            raise InvalidQueryError(f"query_groups must be None or an int >= 1, got {query_groups!r}")
        with self._read() as conn:
            snap = self._snapshot_for(conn)
            allowed = self._filtered_ids(conn, flt) if flt else None
            rows = None if allowed is None else snap.rows_of(allowed)
            if exhaustive or (dense is None and first_stage == "dense"):
                ids, scores = self._scorer.top(conn, q, k, allowed)
            elif first_stage == "dense" and dense is not None:
                chosen = snap.top(dense, candidates, rows)  # (≤candidates,) page ids
                ids, scores = self._rerank(conn, q, k, chosen)
            else:
                if dense is not None and prefetch is not None:
                    rows = snap.rows_of(np.sort(snap.top(dense, prefetch, rows)))  # (≤prefetch,) row indices
                first_q, weights = (q, None) if query_groups is None else pool_query(q, query_groups)
                chosen = snap.top_pooled(first_q, candidates, rows, weights)  # (≤candidates,) page ids
                ids, scores = self._rerank(conn, q, k, chosen)
            return self._hits(conn, ids, scores)

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

    def _filtered_ids(self, conn: sqlite3.Connection, flt: MetadataFilter) -> np.ndarray:
        sql, params = filter_sql(flt)
        return np.fromiter((r[0] for r in conn.execute(sql, params)), dtype=np.int64)  # ascending page ids

    def _hits(self, conn: sqlite3.Connection, ids: np.ndarray, scores: np.ndarray) -> list[Hit]:
        if not ids.size:
            return []
        found = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT p.id, p.doc_id, p.page, d.metadata FROM pages p "
                "JOIN documents d ON d.doc_id = p.doc_id WHERE p.id IN (SELECT value FROM json_each(?))",
                (json.dumps(ids.tolist()),),
            )
        }
        return [
            Hit(found[i][0], found[i][1], float(s), json.loads(found[i][2]))
            for i, s in zip(ids.tolist(), scores.tolist(), strict=True)
        ]

    # -- connections, transactions, the dense snapshot -----------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreClosedError(f"the store at {self.directory} is closed")
        o = self.options
        conn = _schema.connect(
            self._path, synchronous=o.synchronous, busy_timeout_s=o.busy_timeout_s, mmap_bytes=o.mmap_bytes
        )
        self._connections.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock:
            if self._closed:
                raise StoreClosedError(f"the store at {self.directory} is closed")
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction on this thread's connection: one consistent view, never blocked by writers."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._closed:
            conn = self._connect()
            self._local.conn = conn
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def _snapshot_for(self, conn: sqlite3.Connection) -> DenseSnapshot:
        """The dense snapshot matching ``conn``'s read transaction, which must not have read anything yet.

        Under ``_sync_lock`` the transaction's first read sees at least every commit that any published
        snapshot saw, so the shared snapshot only ever moves forward.
        """
        with self._sync_lock:
            return self._synced(conn)

    def _synced(self, conn: sqlite3.Connection) -> DenseSnapshot:
        """Bring the shared snapshot up to this transaction's view (caller holds ``_sync_lock``)."""
        max_id, min_del, max_del = conn.execute(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM pages), (SELECT MIN(seq) FROM deletions), "
            "(SELECT COALESCE(MAX(seq), 0) FROM deletions)"
        ).fetchone()
        snap = self._snapshot
        dim = self.config.dense_dim
        if snap is not None and max_id <= snap.version[0] and max_del == snap.version[1]:
            return snap
        width = self.sketch_vectors * self.config.multivector_dim
        if snap is None or (min_del is not None and min_del > snap.version[1] + 1):
            ids, matrix, sketch = _load_dense(conn, 0, dim, width)
            snap = DenseSnapshot.build((int(max_id), int(max_del)), dim, ids, matrix, sketch, self.sketch_vectors)
        else:
            dead = [r[0] for r in conn.execute("SELECT page_id FROM deletions WHERE seq > ?", (snap.version[1],))]
            ids, matrix, sketch = _load_dense(conn, snap.version[0], dim, width)
            version = (max(int(max_id), snap.version[0]), int(max_del))
            snap = snap.apply(version, ids, matrix, dead, sketch)
        self._snapshot = snap
        return snap

    def close(self) -> None:
        """Close every connection; later calls raise ``StoreClosedError``. Idempotent."""
        with self._sync_lock:
            readers, self._readers = self._readers, None
        if readers is not None:
            readers.shutdown(wait=True)  # in-flight reads finish before their connections close
        with self._write_lock, self._sync_lock:
            self._closed = True
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _load_dense(
    conn: sqlite3.Connection, after_id: int, dim: int, sketch_width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ids (m,) ascending, unit dense rows (m, dim) and sketches (m, sketch_width) as bf16 bits of the pages
    with ``id > after_id``."""
    rows = conn.execute(
        "SELECT p.id, p.dense, s.data FROM pages p JOIN sketches s ON s.page_id = p.id WHERE p.id > ? ORDER BY p.id",
        (after_id,),
    ).fetchall()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))  # (m,)
    matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)  # (m, dim)
    half = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float16)  # (m · sketch_width,)
    if half.size != len(rows) * sketch_width:
        raise IndexFormatError(f"stored sketches hold {half.size} values, expected {len(rows) * sketch_width}")
    return ids, matrix, to_bf16_bits(half).reshape(len(rows), sketch_width)


def _check_page_window(offset: int, limit: int, limits: StoreLimits) -> None:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidQueryError(f"offset must be an int >= 0, got {offset!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= limits.max_list_limit:
        raise InvalidQueryError(f"limit must be an int in 1..{limits.max_list_limit}, got {limit!r}")
