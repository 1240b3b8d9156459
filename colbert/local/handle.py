"""The embedded index's handle on its SQLite file: connections, transactions, the dense snapshot.

:class:`LocalHandle` is the part of :class:`colbert.local.LocalStore` that every read and write goes through:
one writer connection behind a lock (other processes' writers queue on SQLite's lock for ``busy_timeout_s``),
one read connection per thread (WAL snapshots: readers never wait), and the in-memory first stage
(:class:`colbert.local.dense.DenseSnapshot`) and the full-text units (:class:`colbert.local.bm25.TextUnits`)
brought up to date with every handle's commits at the start of a read.

The full-text index is built by one version of the tokeniser's rules (:mod:`colbert.local.migrate`). A handle opened
before another process rebuilt it for other rules notices in its next transaction: every write transaction and
every read's sync read the stored ``tokenizer_version``. If it is this code's version (another handle of the same
code, in another process, rebuilt an older index) the text view is rebuilt and the cached postings dropped;
otherwise (a newer version of the software rebuilt it) reads and writes raise ``IndexFormatError`` — deleting
with other rules would corrupt the index and querying with them would rank wrongly — and the process must be
restarted with the matching version.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from colbert import text
from colbert.codebook import Codebook
from colbert.errors import (
    CollectionBusyError,
    FirstStageUnavailableError,
    IndexFormatError,
    StoreBusyError,
    StoreClosedError,
)
from colbert.local import schema as _schema
from colbert.local.auto_cells import AutoCells
from colbert.local.bm25 import PostingCache, TextUnits, load_text_units
from colbert.local.cells import CELLS_GENERATION_SQL, CellBook, load_cell_book, load_cell_lists
from colbert.local.checksum import add_missing_crcs
from colbert.local.codes import checked_lists, damaged_lists, load_codebook
from colbert.local.dense import DenseSnapshot, load_rows
from colbert.local.inverted import InvertedViews, pooled_ivf_top, unavailable
from colbert.local.ivf import ivf_top, load_centroid_lists
from colbert.local.modes import FirstStage, first_stage
from colbert.local.options import LocalOptions, LocalStats
from colbert.local.scan import PageScorer
from colbert.local.sketch_codec import convert_to_int8
from colbert.quantize import needs_codebook
from colbert.store import CollectionConfig

__all__ = ["LocalHandle"]


_TOKENIZER_SQL = f"SELECT value FROM meta WHERE key = '{_schema.TOKENIZER_KEY}'"


@contextmanager
def _naming(path: Path) -> Iterator[None]:
    """``IndexFormatError`` raised inside, with ``path`` in front when its message does not name it."""
    try:
        yield
    except IndexFormatError as exc:
        if str(path) in str(exc):
            raise
        raise IndexFormatError(f"{path}: {exc}") from exc


class LocalHandle:
    """Connections, transactions and the dense snapshot of one collection directory (thread-safe)."""

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
        self.dense_codec = _schema.read_dense_codec(self._writer, self._path)  # the stored choice, not the option's
        self._book: Codebook | None = None  # residual codecs: the stored codebook, once there (never changes)
        self._scorer = PageScorer(config, options.scan_block_pages, lambda: self._book, path=self._path)
        self._readers: ThreadPoolExecutor | None = None  # made on the first concurrent rerank read
        self._snapshot: DenseSnapshot | None = None
        # the pooled first stage's sketches (~1 KiB a page as int8) are held in memory from the open when it is the
        # default
        # first stage, else from the first search that asks for it: a dense or ivf process never pays for them
        self._sketches = options.first_stage in ("pooled", "pooled_ivf")
        self._lists = InvertedViews()  # ivf / pooled_ivf inverted lists, each loaded by the first search asking
        self.cells: CellBook | None = None  # the stored cell book (pooled_ivf) as of the last sync (a retraining
        # replaces it, colbert.local.auto_cells: a search uses the book of its own read transaction)
        self._cells_generation: str | None = None  # meta.cells_generation as of the last sync
        self._seen_keys: set[str] = set()  # metadata keys some document had (LocalStore.metadata_keys)
        # the units FTS5 holds (colbert.local.bm25): loaded by the first text search, then kept in step with the
        # snapshot
        self._text: TextUnits | None = None
        self._text_generation = -1  # the last generation a text view had (a new view takes the next one)
        self._tokenizer: str | None = None  # the stored tokenizer version seen by the last sync
        self._postings = PostingCache(options.term_cache_bytes)
        self._auto = AutoCells(self, options.auto_cells_units)  # colbert.local.auto_cells: after each write
        with self._read() as conn:
            self._snapshot_for(conn)  # load the dense matrix now rather than on the first search

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
            try:
                conn.execute("BEGIN IMMEDIATE")  # waits up to busy_timeout_s for another process's writer
            except sqlite3.OperationalError as exc:
                raise StoreBusyError(
                    f"{self._path}: another writer held the write lock for more than "
                    f"busy_timeout_s={self.options.busy_timeout_s} s ({exc}); retry later"
                ) from exc
            try:
                row = conn.execute(_TOKENIZER_SQL).fetchone()
                self._check_tokenizer(None if row is None else row[0])
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _exclusive(self, what: str) -> Iterator[None]:
        """Hold the write lock (this process's and SQLite's) for ``what`` without waiting: a writer already at
        work is ``CollectionBusyError`` rather than a wait, so a long operation never starts behind (or blocks)
        another writer for ``busy_timeout_s``. Readers go on meanwhile."""
        if not self._write_lock.acquire(blocking=False):
            raise CollectionBusyError(
                f"{self._path}: a write in this process is in progress; wait for it to finish, then retry {what}"
            )
        try:
            if self._closed:
                raise StoreClosedError(f"the store at {self.directory} is closed")
            conn = self._writer
            conn.execute("PRAGMA busy_timeout=0")
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise CollectionBusyError(
                    f"{self._path}: another process is writing to the collection ({exc}); wait for its writes "
                    f"(uploads, jobs, imports) to finish, then retry {what}"
                ) from exc
            finally:
                conn.execute(f"PRAGMA busy_timeout={int(self.options.busy_timeout_s * 1000)}")
            try:
                yield
            finally:
                conn.execute("ROLLBACK")
        finally:
            self._write_lock.release()

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

    def _views_for(self, conn: sqlite3.Connection, *, sketches: bool) -> tuple[DenseSnapshot, TextUnits]:
        """The dense snapshot (holding the sketches if ``sketches``) and the full-text units matching ``conn``'s
        read transaction (as above); the text view is loaded here, in that transaction, the first time a search
        needs it (visual-only use never pays)."""
        with self._sync_lock:
            snap = self._synced(conn, sketches=sketches)
            if self._text is None:
                self._text_generation += 1  # never a generation an earlier view had: their cached postings are stale
                self._text = TextUnits.build(self._text_generation, *load_text_units(conn, 0))
            return snap, self._text

    def _synced(self, conn: sqlite3.Connection, *, sketches: bool = False) -> DenseSnapshot:
        """Bring the shared snapshot (and the text view, if loaded) up to this transaction's view (caller holds
        ``_sync_lock``); ``sketches``: the snapshot must hold the pages' sketches (loaded now if it does not)."""
        max_id, min_del, max_del, tokenizer, cells, sketch_codec = conn.execute(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM pages), (SELECT MIN(seq) FROM deletions), "
            f"(SELECT COALESCE(MAX(seq), 0) FROM deletions), ({_TOKENIZER_SQL}), ({CELLS_GENERATION_SQL}), "
            f"({_schema.SKETCH_CODEC_SQL})"
        ).fetchone()
        self._check_tokenizer(tokenizer)
        if cells != self._cells_generation:  # units already here were filed, or the book replaced, since
            self._cells_generation = cells
            self._lists.drop("pooled_ivf")
            self.cells = load_cell_book(conn, self._path)
        if self._book is None and needs_codebook(self.config.codec):
            self._book = load_codebook(conn, self._path)
        if self.cells is None:
            self.cells = load_cell_book(conn, self._path)
        if tokenizer != self._tokenizer:  # another process rebuilt the full-text index: same ids, new postings
            self._tokenizer, self._text = tokenizer, None
            self._postings.clear()
        snap = self._snapshot
        if sketches and not self._sketches:  # the first pooled search: reloaded whole, with the sketches
            self._sketches, snap = True, None
        if snap is not None and max_id <= snap.version[0] and max_del == snap.version[1]:
            return snap
        dense = (self.config.dense_dim, self.dense_codec)
        # read in this transaction: vacuum may have converted the rows since the held ones were loaded (the held
        # values are the same either way, colbert.local.sketch_codec)
        codec = _schema.sketch_codec_of(sketch_codec, self._path)
        sketch = (self.sketch_vectors if self._sketches else 0, self.config.multivector_dim, codec)
        text = self._text
        with _naming(self._path):  # a damaged sketch row's error names the file
            if snap is None or (min_del is not None and min_del > snap.version[1] + 1):
                snap = DenseSnapshot.load((int(max_id), int(max_del)), conn, dense, sketch)
                text = None  # the deletion log no longer reaches back to it: reloaded by the next text search
                self._lists.clear()  # likewise for the inverted lists
            else:
                dead = [r[0] for r in conn.execute("SELECT page_id FROM deletions WHERE seq > ?", (snap.version[1],))]
                added = load_rows(conn, snap.version[0], dense, sketch)
                version = (max(int(max_id), snap.version[0]), int(max_del))
                if text is not None:
                    text = text.apply(*load_text_units(conn, snap.version[0]), dead)
                    self._text_generation = text.generation
                self._lists.apply(
                    version, lambda kind, after: self._stored_lists(conn, kind, after), snap.version[0], dead
                )
                snap = snap.apply(version, added, dead)
        self._snapshot, self._text = snap, text
        return snap

    def _first_stage(
        self, conn: sqlite3.Connection, snap: DenseSnapshot, q: np.ndarray, dense: np.ndarray | None,
        allowed: np.ndarray | None, how: FirstStage,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """The visual first stage's (unit ids, scores) best first, in ``conn``'s read transaction (synced)."""
        if how.kind in ("dense", "pooled"):
            return first_stage(snap, q, dense, None if allowed is None else snap.rows_of(allowed), how)
        book = load_cell_book(conn, self._path) if how.kind == "pooled_ivf" else self._book  # this transaction's
        if book is None:
            if how.kind == "pooled_ivf" or not needs_codebook(self.config.codec):
                raise FirstStageUnavailableError(unavailable(how.kind, self.config.codec))
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)  # no document yet
        lists = lambda kind, after: self._stored_lists(conn, kind, after)  # noqa: E731
        with self._sync_lock:  # a view is kept only when made for the newest snapshot and book
            newest = snap is self._snapshot and book is (self.cells if how.kind == "pooled_ivf" else self._book)
            view = self._lists.held(how.kind, snap, book, lists, newest)
        if how.kind == "pooled_ivf":
            assert isinstance(book, CellBook)
            return pooled_ivf_top(view, book, snap, q, how, self.options.nprobe, allowed)
        return ivf_top(view, book, q, how.candidates, self.options.nprobe, allowed)

    def _stored_lists(self, conn: sqlite3.Connection, kind: str, after_id: int) -> tuple[np.ndarray, list[np.ndarray]]:
        if kind == "pooled_ivf":
            book = load_cell_book(conn, self._path)  # the lists of this transaction's book
            assert book is not None
            return load_cell_lists(conn, after_id, book.k, self._path)
        return self._centroid_lists(conn, after_id)

    def _centroid_lists(self, conn: sqlite3.Connection, after_id: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """The units' centroid lists above ``after_id``, checked (a damaged row: ``IndexFormatError``)."""
        assert self._book is not None  # the lists are read once the codebook is there
        try:
            ids, lists = load_centroid_lists(conn, after_id)
        except ValueError as exc:  # a row whose length is not whole uint16 ids
            raise damaged_lists(self._path, str(exc)) from exc
        return checked_lists(ids, lists, self._book.k, self._path)

    def codebook(self) -> Codebook | None:
        """The collection's codebook (residual codecs; None: not trained yet, or a codec without one)."""
        if self._book is None and needs_codebook(self.config.codec):
            with self._read() as conn:
                self._snapshot_for(conn)
        return self._book

    def _check_tokenizer(self, stored: str | None) -> None:
        """``IndexFormatError`` when the full-text index was built by rules other than this code's (module
        docstring); ``stored`` is the meta value (None: version 1)."""
        found = _schema.tokenizer_version(stored, self._path)
        if found != text.TOKENIZER_VERSION:
            raise IndexFormatError(
                f"{self._path}: another process rebuilt the full-text index for tokenizer version {found}; this "
                f"process tokenises by version {text.TOKENIZER_VERSION} and must be restarted with the same "
                "version of the software as the other"
            )

    def close(self) -> None:
        """Close every connection; later calls raise ``StoreClosedError``. Idempotent. An automatic cell training
        under way is asked to stop first (waited for briefly, :mod:`colbert.local.auto_cells`)."""
        self._auto.stop()
        with self._sync_lock:
            readers, self._readers = self._readers, None
        if readers is not None:
            readers.shutdown(wait=True)  # in-flight reads finish before their connections close
        with self._write_lock, self._sync_lock:
            self._closed = True
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    def stats(self) -> LocalStats:
        """Counts and sizes; first checkpoints the WAL into the main file, so file sizes are settled."""
        with self._write_lock:
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        with self._read() as conn:
            snap = self._snapshot_for(conn)
            text = self._text
            vectors, blobs = conn.execute(
                "SELECT COALESCE(SUM(n), 0), COALESCE(SUM(length(data)), 0) FROM multivectors"
            ).fetchone()
            docs = conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        text_memory = self._postings.nbytes
        if text is not None:
            text_memory += text.ids.nbytes + text.lengths.nbytes + text.alive.nbytes
        with self._sync_lock:
            ivf_memory = self._lists.nbytes()
        return LocalStats(int(docs), snap.n_alive, int(vectors), int(blobs), snap.nbytes, text_memory, ivf_memory)

    def cell_count(self) -> int | None:
        """The ``pooled_ivf`` first stage's cells (K); None before a cell book is trained. One read of the stored
        book (trained or replaced since the last sync by another handle or process; parsed once a process)."""
        with self._read() as conn:
            book = load_cell_book(conn, self._path)
        return None if book is None else book.k

    def disk_bytes(self) -> int:
        """Bytes of the collection's files on disk (the index file, its WAL and shared-memory files)."""
        total = 0
        for path in self.directory.iterdir():
            try:
                total += path.stat().st_size if path.is_file() else 0
            except FileNotFoundError:  # the WAL may go away at a checkpoint
                continue
        return total

    def vacuum(self) -> tuple[int, int]:
        """Reclaim the space of deleted and replaced documents; (bytes on disk before, after).

        Checksums the multi-vector blobs written before checksums (:mod:`colbert.local.checksum`), stores float16
        sketches as int8 (:mod:`colbert.local.sketch_codec`: the values held are the same), merges the
        full-text index's segments, rebuilds the file (SQLite ``VACUUM``: free pages are dropped; rowids, so the
        in-memory first stage, are kept) and truncates the WAL. Holds the write lock meanwhile
        (other writers wait, up to ``busy_timeout_s`` in other processes); readers go on. Needs free disk space
        about the size of the index while it runs."""
        before = self.disk_bytes()
        with self._write() as conn:  # a transaction of its own: VACUUM cannot run inside one
            add_missing_crcs(conn)
            convert_to_int8(conn, self.sketch_vectors, self.config.multivector_dim)  # float16 sketches: half the disk
        with self._write_lock:
            if self._closed:
                raise StoreClosedError(f"the store at {self.directory} is closed")
            conn = self._writer
            try:
                conn.execute("INSERT INTO unit_fts (unit_fts) VALUES ('optimize')")
                conn.execute("VACUUM")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                raise StoreBusyError(
                    f"{self.directory}: vacuum could not take the write lock within "
                    f"busy_timeout_s={self.options.busy_timeout_s} s ({exc}); retry later"
                ) from exc
        return before, self.disk_bytes()
