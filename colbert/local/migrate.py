"""Keep an embedded index usable by this code when it is opened.

Format version 3 is the only one read (version 2, with page images as files beside the index, lived nine days
before the first release and is no longer migrated: ``read_config`` names the version it found). Small
additions made to version 3 (the full-text index, the originals table, the content-hash index, the documents'
``warnings`` column, the multi-vector checksums' column: :mod:`colbert.local.checksum`) are created when missing.

The full-text index holds :mod:`colbert.text` tokens, and a unit is removed from it by the tokens its stored text
gives *now* (:func:`colbert.local.fts.fts_delete`), so it must have been built by the rules of this code. The meta
key ``tokenizer_version`` names the rules it was built by (absent: version 1, the only one released before the
key existed; it is then recorded, nothing rebuilt). An index built by older rules is rebuilt when opened: FTS5's
``'delete-all'``, every stored unit text indexed again, the new version written — one ``BEGIN IMMEDIATE``
transaction, so a crash leaves the old index intact (the next open rebuilds again) and a reader in another
process sees the old index or the new one, never a half-built one. An index built by *newer* rules is refused
(``IndexFormatError``): older code would corrupt it. The rebuild costs one tokenisation of every stored text,
~0.75 ms per unit of 2,100 characters (~1.3 minutes per 100k pages; measured on a shared 2-core machine), and
holds the write lock meanwhile: the open waits, other processes' writers wait up to their ``busy_timeout_s`` (then
``StoreBusyError``, retry), readers go on with the old index. A handle that was already open when another
process rebuilt the index notices at its next read or write (:class:`colbert.local.handle.LocalHandle`).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from colbert import text
from colbert.errors import IndexFormatError
from colbert.local.cells import CELLS_DDL
from colbert.local.checksum import ensure_crc_column
from colbert.local.codes import CODES_DDL
from colbert.local.fts import FTS_DDL, fts_add, fts_rebuild
from colbert.local.schema import FORMAT_VERSION, ORIGINALS_DDL, TOKENIZER_KEY, read_meta, read_tokenizer_version

__all__ = ["migrate"]

log = logging.getLogger(__name__)
_SET_TOKENIZER = f"INSERT OR REPLACE INTO meta (key, value) VALUES ('{TOKENIZER_KEY}', ?)"


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the version-3 index behind ``conn`` (autocommit mode) up to date (module doc); other versions are
    left to ``read_config``, which names them."""
    if read_meta(conn, path).get("format_version") != str(FORMAT_VERSION):
        return
    _ensure_fts(conn)
    _ensure_tokenizer(conn, path)
    _ensure_hash_index(conn)
    _ensure_warnings(conn)
    ensure_crc_column(conn)  # NULL in the rows written before: read unchecked until vacuum fills them
    conn.execute(ORIGINALS_DDL)  # a version-3 index written before originals were kept
    for statement in CODES_DDL + CELLS_DDL:  # ... or before the residual codecs (or the cells) existed
        conn.execute(statement)


def _ensure_fts(conn: sqlite3.Connection) -> None:
    """Give a version-3 index written before the full-text index existed its ``unit_fts`` table, built from the
    stored unit texts, in one transaction (nothing to do when it exists)."""
    exists = "SELECT 1 FROM sqlite_master WHERE name = 'unit_fts'"
    if conn.execute(exists).fetchone():
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not conn.execute(exists).fetchone():  # another process may have built it meanwhile
            conn.execute(FTS_DDL)
            fts_add(conn, conn.execute("SELECT page_id, text FROM unit_text").fetchall())
            conn.execute(_SET_TOKENIZER, (str(text.TOKENIZER_VERSION),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _ensure_tokenizer(conn: sqlite3.Connection, path: Path) -> None:
    """Record the tokenizer version of an index without one (version 1), and rebuild the full-text index of
    one built by older rules, in one transaction (module docstring)."""
    current = text.TOKENIZER_VERSION
    found, recorded = read_tokenizer_version(conn, path)
    if found > current:
        raise _newer(path, found, current)
    if found == current and recorded:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        found, recorded = read_tokenizer_version(conn, path)  # another process may have done it meanwhile
        if found > current:
            raise _newer(path, found, current)
        rebuilt, started = None, time.perf_counter()
        if found != current:
            rebuilt = fts_rebuild(conn)
        if found != current or not recorded:
            conn.execute(_SET_TOKENIZER, (str(current),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    if rebuilt is not None:
        log.warning(
            "%s: full-text index rebuilt from %d stored unit texts for tokenizer version %d (it was built by "
            "version %d) in %.1f s",
            path,
            rebuilt,
            current,
            found,
            time.perf_counter() - started,
        )
    elif not recorded:
        log.info("%s: recorded tokenizer version %d (an index written before versions were stored)", path, found)


def _newer(path: Path, found: int, current: int) -> IndexFormatError:
    return IndexFormatError(
        f"{path}: its full-text index was built by tokenizer version {found}, newer than this code's "
        f"{current}; open it with the newer version of the software (older rules would corrupt it)"
    )


def _ensure_hash_index(conn: sqlite3.Connection) -> None:
    """Give a version-3 index written before duplicate detection its ``documents_by_hash`` index."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'documents_by_hash'").fetchone():
        return
    conn.execute("CREATE INDEX IF NOT EXISTS documents_by_hash ON documents (content_hash)")


def _ensure_warnings(conn: sqlite3.Connection) -> None:
    """Give a version-3 index written before documents kept warnings its ``documents.warnings`` column (NULL:
    none). Another process may add it between the check and the ALTER: that one's error is the column existing."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(documents)")}
    if "warnings" in columns:
        return
    try:
        conn.execute("ALTER TABLE documents ADD COLUMN warnings TEXT")
    except sqlite3.OperationalError as exc:
        if "duplicate column" not in str(exc):
            raise
