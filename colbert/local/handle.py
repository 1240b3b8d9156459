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
from dataclasses import replace
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
from colbert.local.cells import CELLS_GENERATION_SQL, CellBook, load_cell_book
from colbert.local.codes import load_codebook
from colbert.local.dense import DenseSnapshot, load_rows
from colbert.local.inverted import InvertedViews, Lists, pooled_ivf_top, stored_lists, unavailable
from colbert.local.ivf import ivf_top
from colbert.local.modes import FirstStage, first_stage, held_for
from colbert.local.options import LocalOptions, LocalStats
from colbert.local.scan import PageScorer
from colbert.local.vacuum import vacuum
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
        # the sketches (~1 KiB a page as int8) and the dense rows (dense_dim bytes a page as int8) are held from the
        # open when the default first stage reads them, else from the first search that does (modes.held_for):
        # a pooled process never pays for dense rows, a dense one never for sketches (ivf falls back to dense
        # for a codec without a codebook)
        self._sketches = options.first_stage in ("pooled", "pooled_ivf")
        self._dense = options.first_stage == "dense" or (
            options.first_stage == "ivf" and not needs_codebook(config.codec)
        )
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
            self._snapshot_for(conn)  # load the held rows now rather than on the first search
        self._auto.check_soon()  # a collection that is only read gets its cells too (colbert.local.auto_cells)

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
        read transaction (as above); the text view is loaded here, in that transaction, the first time it is asked
        for."""
        with self._sync_lock:
            return self._synced(conn, sketches=sketches), self._text_view(conn)

    def _search_views(
        self, conn: sqlite3.Connection, how: FirstStage | None, told: bool, dense: bool
    ) -> tuple[DenseSnapshot, TextUnits, FirstStage | None]:
        """:meth:`_views_for` for a search whose first stage is ``how`` (None: none runs; ``told``: the search named
        it; ``dense``: the query has a dense vector), holding what that stage reads (:func:`held_for`), and the
        stage: a default ``pooled_ivf`` is ``pooled`` for a collection without cells as of this transaction."""
        with self._sync_lock:
            seen = self._seen(conn)  # reads the cell book, if stored since
            if how is not None and how.kind == "pooled_ivf" and not told and self.cells is None:
                how = replace(how, kind="pooled")  # LocalOptions.first_stage only where cells were trained
            wants_dense, wants_sketches = held_for(how, dense)
            snap = self._advance(conn, seen, sketches=wants_sketches, dense=wants_dense)
            return snap, self._text_view(conn), how

    def _text_view(self, conn: sqlite3.Connection) -> TextUnits:
        if self._text is None:
            self._text_generation += 1  # never a generation an earlier view had: their cached postings are stale
            self._text = TextUnits.build(self._text_generation, *load_text_units(conn, 0))
        return self._text

    def _synced(self, conn: sqlite3.Connection, *, sketches: bool = False, dense: bool = False) -> DenseSnapshot:
        """Bring the shared snapshot (and the text view and inverted lists, if loaded) up to this transaction's view
        (caller holds ``_sync_lock``); ``sketches`` / ``dense``: the snapshot must hold the pages' sketches / dense
        rows (reloaded whole with them now if it does not)."""
        return self._advance(conn, self._seen(conn), sketches=sketches, dense=dense)

    def _seen(self, conn: sqlite3.Connection) -> tuple[int, int | None, int, str | None]:
        """The sync's first read: (highest page id, lowest and highest deletion seq, stored sketch codec) as of
        this transaction; the books stored since the last sync are loaded and views another process invalidated
        are dropped."""
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
        return int(max_id), min_del, int(max_del), sketch_codec

    def _advance(
        self, conn: sqlite3.Connection, seen: tuple[int, int | None, int, str | None], *, sketches: bool, dense: bool
    ) -> DenseSnapshot:
        """:meth:`_synced` after :meth:`_seen`. A snapshot that lacks a column now wanted is reloaded whole, in
        this transaction; the text view and inverted lists still move forward by the deletion log."""
        max_id, min_del, max_del, sketch_codec = seen
        snap = self._snapshot
        wants = (self._sketches or sketches, self._dense or dense)  # held from now on, once loaded
        wider = wants != (self._sketches, self._dense)
        if snap is not None and not wider and max_id <= snap.version[0] and max_del == snap.version[1]:
            return snap
        held = (self.config.dense_dim, self.dense_codec)
        # read in this transaction: vacuum may have converted the rows since the held ones were loaded (the held
        # values are the same either way, colbert.local.sketch_codec)
        codec = _schema.sketch_codec_of(sketch_codec, self._path)
        sketch = (self.sketch_vectors if wants[0] else 0, self.config.multivector_dim, codec)
        text = self._text
        with _naming(self._path):  # a damaged sketch row's error names the file
            if snap is None or (min_del is not None and min_del > snap.version[1] + 1):
                snap = DenseSnapshot.load((max_id, max_del), conn, held, sketch, with_dense=wants[1])
                text = None  # the deletion log no longer reaches back to it: reloaded by the next text search
                self._lists.clear()  # likewise for the inverted lists
            else:
                dead = [r[0] for r in conn.execute("SELECT page_id FROM deletions WHERE seq > ?", (snap.version[1],))]
                version = (max(max_id, snap.version[0]), max_del)
                if text is not None:
                    text = text.apply(*load_text_units(conn, snap.version[0]), dead)
                    self._text_generation = text.generation
                self._lists.apply(version, self._stored_lists(conn), snap.version[0], dead)
                if wider:  # page ids are never reused: the whole load is as of ``version`` too
                    snap = DenseSnapshot.load(version, conn, held, sketch, with_dense=wants[1])
                else:
                    snap = snap.apply(
                        version, load_rows(conn, snap.version[0], held, sketch, with_dense=wants[1]), dead
                    )
        self._snapshot, self._text = snap, text
        self._sketches, self._dense = wants
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
        lists = self._stored_lists(conn)
        with self._sync_lock:  # a view is kept only when made for the newest snapshot and book
            newest = snap is self._snapshot and book is (self.cells if how.kind == "pooled_ivf" else self._book)
            view = self._lists.held(how.kind, snap, book, lists, newest)
        if how.kind == "pooled_ivf":
            assert isinstance(book, CellBook)
            return pooled_ivf_top(view, book, snap, q, how, self.options.nprobe, allowed)
        return ivf_top(view, book, q, how.candidates, self.options.nprobe, allowed)

    def _stored_lists(self, conn: sqlite3.Connection) -> Lists:
        """The reader of the stored inverted lists in ``conn``'s transaction (:func:`stored_lists`)."""
        return lambda kind, after: stored_lists(conn, kind, after, self._path, self._book)

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
        """Reclaim the space of deleted and replaced documents; (bytes on disk before, after)
        (:func:`colbert.local.vacuum.vacuum`)."""
        return vacuum(self)
