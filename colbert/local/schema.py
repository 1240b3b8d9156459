"""On-disk layout of the embedded index (one SQLite file) and the checks made when it is opened.

Tables (format version 3; the pre-release versions 1 and 2 are not read: rebuild such an index from its
sources). For history's sake the tables keep the word *page* where
they mean *unit* (a page or a text/code chunk, see :mod:`colbert.store`)::

    meta(key, value)                       format name + version, sizes, codec, pool factor, task, unit kind,
                                            ocr (only when set: the writer's OCR default), created_at,
                                            dense_codec (how ``pages.dense`` is stored, colbert.local.dense_codec;
                                            absent: float32, every index written before the key),
                                            sketch_codec (how ``sketches.data`` is stored,
                                            colbert.local.sketch_codec; absent: float16, every index written
                                            before the key; ``vacuum`` converts those to int8),
                                            tokenizer_version (the :mod:`colbert.text` rules ``unit_fts`` was
                                            built by; absent: version 1, see :mod:`colbert.local.migrate`)
    documents(seq PK, doc_id UNIQUE, num_pages (= units), metadata JSON, created_at, content_hash,
              warnings JSON list or NULL)   indexed by content_hash (duplicate uploads are found by it);
                                            ``warnings`` added to format 3 without a version change
    pages(id PK AUTOINCREMENT, doc_id, page (= unit ordinal), metadata JSON, dense BLOB (dense_codec),
          kind ('page' | 'chunk'), UNIQUE(doc_id, page))
    unit_text(page_id PK, text)             a unit's text (page text layer, chunk text), when it has one
    unit_images(page_id PK, data BLOB)      a unit's image bytes (a page's PNG), when it has one
    multivectors(page_id PK, n, data BLOB, crc)
                                            codec'd (and pooled) rows, kept apart so that scans of ``pages``
                                            never touch the large blobs; ``crc``: zlib.crc32 of ``data``, checked
                                            by every read (:mod:`colbert.local.checksum`), added to format 3
                                            without a version change (NULL: written before, not checked)
    sketches(page_id PK, data BLOB)        the page's pooled first-stage sketch: ``sketch_vectors`` k-means
                                            centroids (k, multivector_dim), see colbert.local.sketch, in the
                                            ``sketch_codec``: int8 codes + a float32 scale per centroid (1,056 B,
                                            three rows a page), or float16 in older indexes (2,048 B, a page each)
    doc_fields(key, value, doc_id)          canonical JSON of each str/int/bool top-level metadata value,
                                            the index behind equality filters
    originals(doc_id PK, media_type, name, size, sha256, data BLOB)
                                            a document's original file (PDF, image, text/code), when kept;
                                            added to format 3 without a version change (created on open)
    deletions(seq PK AUTOINCREMENT, page_id)
                                            page ids removed, in commit order (the newest ``retain`` kept)
    codebook, unit_centroids                the residual codecs' codebook and each unit's distinct centroid
                                            ids (:mod:`colbert.local.codes`); added to format 3 without a
                                            version change (created on open)

``AUTOINCREMENT`` makes page ids grow with commit order and never be reused. So any open handle brings its
in-memory dense matrix up to date incrementally: pages with ``id`` above the highest it has loaded are new,
``deletions`` rows above the last ``seq`` it has applied are gone (if pruning has passed that ``seq``, it
reloads everything).

Why the multi-vector codes stay in this file rather than in an append-only codes file read through ``mmap`` (issue
26 item 3, "in SQLite — measure"; ``bench/code_reads.py`` at 100k pages on a shared 2-core machine, the table in
bench/README.md): fetching 400 random candidates' codes from a warm page cache was 2.6× (binary, ~12 KB/page) and
2.1× (residual2, ~25 KB/page) faster from such a file (2.9× and 2.6× with its offsets held in memory; medians of 25,
the layouts interleaved); from a cold cache no faster (the same bytes come off the disk); writing 10-page documents
with ``synchronous=FULL`` was 1.9× slower (a document then waits for two fsyncs, the file's and the WAL's). The
fetch is a small part of a rerank: scoring those 400 pages took 56 ms (binary) and 826 ms (residual2) beside 17 and
25 ms to fetch them, so the file would save ~15 % of a binary rerank and ~2 % of a residual one, at the price of a
second store kept in step with this one (torn tails after a crash, compaction by ``vacuum``, recode, export, other
processes remapping a growing file). Not done; the design, should the scorers get faster: codes appended and fsynced
before the transaction that commits their ``(offset, length)`` row, so a reader never sees half a page, and a
tombstone is the row's absence. The same bench shows SQLite itself faster with 64 KiB pages (1.5× / 1.4× on that
fetch, 2.3× / 1.3× on the writes: blobs without overflow chains), at +12–16 % bytes per page on disk; a WAL
database keeps the page size it was created with, so every index has SQLite's 4 KiB pages (the option that asked
for 64 KiB never took effect and is gone: the disk cost is permanent, the gain mostly hidden behind embedding).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from colbert import text
from colbert.errors import CodecError, DimensionMismatchError, IndexFormatError
from colbert.local.cells import CELLS_DDL
from colbert.local.codes import CODES_DDL
from colbert.local.dense_codec import check_dense_codec
from colbert.local.fts import FTS_DDL
from colbert.local.sketch_codec import NEW_SKETCH_CODEC, SKETCH_CODEC_KEY, SKETCH_CODECS
from colbert.quantize import Codec
from colbert.store import CollectionConfig

__all__ = [
    "DB_FILE",
    "DEFAULT_SKETCH_VECTORS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ORIGINALS_DDL",
    "TOKENIZER_KEY",
    "connect",
    "create_schema",
    "read_config",
    "read_dense_codec",
    "read_meta",
    "read_sketch_codec",
    "read_sketch_vectors",
    "read_tokenizer_version",
    "tokenizer_version",
]

FORMAT_NAME = "jev4-colbert-local"
FORMAT_VERSION = 3
DEFAULT_SKETCH_VECTORS = 8
DENSE_CODEC_KEY = "dense_codec"  # meta key; absent: float32 (see colbert.local.dense_codec)
SKETCH_CODEC_SQL = f"SELECT value FROM meta WHERE key = '{SKETCH_CODEC_KEY}'"
DB_FILE = "index.sqlite"
TOKENIZER_KEY = "tokenizer_version"  # meta key: the colbert.text rules the full-text index was built by
ORIGINALS_DDL = (
    "CREATE TABLE IF NOT EXISTS originals (doc_id TEXT PRIMARY KEY, media_type TEXT NOT NULL, name TEXT, "
    "size INTEGER NOT NULL, sha256 TEXT NOT NULL, data BLOB NOT NULL)"
)

_DDL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE documents (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL UNIQUE,
    num_pages INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    created_at REAL NOT NULL,
    content_hash TEXT,
    warnings TEXT
);
CREATE TABLE pages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL,
    page INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    dense BLOB NOT NULL,
    kind TEXT NOT NULL DEFAULT 'page',
    UNIQUE (doc_id, page)
);
CREATE TABLE unit_text (page_id INTEGER PRIMARY KEY, text TEXT NOT NULL);
CREATE TABLE unit_images (page_id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE multivectors (page_id INTEGER PRIMARY KEY, n INTEGER NOT NULL, data BLOB NOT NULL, crc INTEGER);
CREATE TABLE sketches (page_id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE doc_fields (
    key TEXT NOT NULL, value TEXT NOT NULL, doc_id TEXT NOT NULL, PRIMARY KEY (key, value, doc_id)
) WITHOUT ROWID;
CREATE INDEX doc_fields_by_doc ON doc_fields (doc_id);
CREATE INDEX documents_by_hash ON documents (content_hash);
CREATE TABLE deletions (seq INTEGER PRIMARY KEY AUTOINCREMENT, page_id INTEGER NOT NULL)
"""


def connect(path: Path, *, synchronous: str, busy_timeout_s: float, mmap_bytes: int) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit ``BEGIN``/``COMMIT``), WAL journal."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_s)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
    conn.execute(f"PRAGMA mmap_size={int(mmap_bytes)}")
    conn.execute("PRAGMA foreign_keys=OFF")
    return conn


def create_schema(
    conn: sqlite3.Connection,
    config: CollectionConfig,
    *,
    sketch_vectors: int = DEFAULT_SKETCH_VECTORS,
    dense_codec: str = "float32",
    sketch_codec: str = NEW_SKETCH_CODEC,
) -> None:
    """Write the tables and the meta rows in one transaction (a crash leaves no half-made index); ``sketch_codec``
    is int8 for every new index (float16 only to make an index as older versions wrote it, e.g. in tests)."""
    if sketch_codec not in SKETCH_CODECS:
        raise CodecError(f"unknown sketch codec {sketch_codec!r}; expected one of {list(SKETCH_CODECS)}")
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'meta'").fetchone()[0]:
            raise IndexFormatError("the database already holds an index")
        for statement in _DDL.strip().split(";\n"):
            conn.execute(statement)
        conn.execute(FTS_DDL)
        conn.execute(ORIGINALS_DDL)
        for statement in CODES_DDL + CELLS_DDL:
            conn.execute(statement)
        rows = {
            "format": FORMAT_NAME,
            "format_version": str(FORMAT_VERSION),
            "dense_dim": str(config.dense_dim),
            "multivector_dim": str(config.multivector_dim),
            "codec": str(Codec(config.codec)),
            "pool_factor": str(config.pool_factor),
            "task": config.task,
            "unit_kind": config.unit_kind,
            **({} if config.ocr is None else {"ocr": config.ocr}),
            "sketch_vectors": str(int(sketch_vectors)),
            DENSE_CODEC_KEY: check_dense_codec(dense_codec),
            **({} if sketch_codec == "float16" else {SKETCH_CODEC_KEY: sketch_codec}),  # absent: float16
            TOKENIZER_KEY: str(text.TOKENIZER_VERSION),
            "created_at": repr(time.time()),
        }
        conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", rows.items())
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def read_meta(conn: sqlite3.Connection, path: Path) -> dict[str, str]:
    """The meta rows; ``IndexFormatError`` for a file that is not an index of this format."""
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as exc:
        raise IndexFormatError(f"{path} is not an index of this format ({exc})") from exc
    if meta.get("format") != FORMAT_NAME:
        raise IndexFormatError(f"{path}: expected format {FORMAT_NAME!r}, found {meta.get('format')!r}")
    return meta


def read_config(conn: sqlite3.Connection, path: Path, expected: CollectionConfig | None) -> CollectionConfig:
    """The stored configuration; typed errors for a foreign file, another version, or another size."""
    meta = read_meta(conn, path)
    if meta.get("format_version") != str(FORMAT_VERSION):
        raise IndexFormatError(
            f"{path}: written by index format version {meta.get('format_version')}, "
            f"this code reads version {FORMAT_VERSION} (versions 1 and 2 predate the first release: rebuild the "
            "index from its source documents)"
        )
    try:
        config = CollectionConfig(
            dense_dim=int(meta["dense_dim"]),
            multivector_dim=int(meta["multivector_dim"]),
            codec=Codec(meta["codec"]),
            pool_factor=int(meta["pool_factor"]),
            task=meta.get("task", "retrieval"),  # older indexes: page collections of the retrieval task
            unit_kind=meta.get("unit_kind", "page"),
            ocr=meta.get("ocr"),  # absent: none set (every index written before collections had one)
        )
    except (KeyError, ValueError) as exc:
        raise IndexFormatError(f"{path}: damaged meta table ({exc!r})") from exc
    if expected is not None:
        if (expected.dense_dim, expected.multivector_dim) != (config.dense_dim, config.multivector_dim):
            raise DimensionMismatchError(
                f"{path} was built for dense_dim={config.dense_dim}, "
                f"multivector_dim={config.multivector_dim}; expected dense_dim={expected.dense_dim}, "
                f"multivector_dim={expected.multivector_dim}"
            )
        if expected != config:
            raise IndexFormatError(f"{path} was built with {config}, expected {expected}")
    return config


def read_sketch_vectors(conn: sqlite3.Connection, path: Path) -> int:
    """Centroids per page in the ``sketches`` table (fixed when the index was created)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'sketch_vectors'").fetchone()
    try:
        k = int(row[0])
    except (TypeError, ValueError) as exc:
        raise IndexFormatError(f"{path}: damaged meta table (sketch_vectors: {row!r})") from exc
    if k < 1:
        raise IndexFormatError(f"{path}: damaged meta table (sketch_vectors={k})")
    return k


def read_dense_codec(conn: sqlite3.Connection, path: Path) -> str:
    """How ``pages.dense`` is stored (:mod:`colbert.local.dense_codec`); float32 when the meta key is absent."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (DENSE_CODEC_KEY,)).fetchone()
    if row is None:
        return "float32"
    try:
        return check_dense_codec(str(row[0]))
    except CodecError as exc:
        raise IndexFormatError(f"{path}: damaged meta table ({DENSE_CODEC_KEY}={row[0]!r})") from exc


def sketch_codec_of(value: str | None, path: Path) -> str:
    """The sketch codec a meta value names (None: the key is absent, float16); ``IndexFormatError`` for a damaged
    value."""
    if value is None:
        return "float16"
    if value not in SKETCH_CODECS:
        raise IndexFormatError(f"{path}: damaged meta table ({SKETCH_CODEC_KEY}={value!r})")
    return value


def read_sketch_codec(conn: sqlite3.Connection, path: Path) -> str:
    """How ``sketches.data`` is stored, as of ``conn``'s transaction (``vacuum`` may convert float16 to int8, so
    a writer reads it in each write transaction and a reader in each sync)."""
    row = conn.execute(SKETCH_CODEC_SQL).fetchone()
    return sketch_codec_of(None if row is None else str(row[0]), path)


def tokenizer_version(value: str | None, path: Path) -> int:
    """The tokenizer version a meta value names (None: the key is absent, an index written before versions were
    stored: version 1, the only one released before); ``IndexFormatError`` for a damaged value."""
    if value is None:
        return 1
    try:
        version = int(value)
    except ValueError:
        version = 0
    if version < 1:
        raise IndexFormatError(f"{path}: damaged meta table ({TOKENIZER_KEY}={value!r})")
    return version


def read_tokenizer_version(conn: sqlite3.Connection, path: Path) -> tuple[int, bool]:
    """(the tokenizer version the full-text index was built by, whether the meta table records it)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (TOKENIZER_KEY,)).fetchone()
    return tokenizer_version(None if row is None else row[0], path), row is not None
