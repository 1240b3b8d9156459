"""Bring an embedded index of format version 2 up to version 3, in one transaction.

Version 3 stores all of a unit in the index file: its kind, its text and its image (version 2 kept vectors
only; the service kept page images as files under ``<data_dir>/page-images/<collection>/<sha256(doc id)[:40]>/
<page>.png``). The migration adds the columns and tables, and, when given that folder of the collection
(``legacy_images``), imports each stored page's PNG into ``unit_images``; pages without a file simply have no
image (as before). Everything happens in one ``BEGIN IMMEDIATE`` transaction: a crash leaves version 2 intact
and the next open migrates again. The full-text index (``unit_fts``, :mod:`colbert.local.fts`) is created empty by
the migration, and built from the stored texts when a version-3 index lacks it. Concurrent openers serialise
on the write lock; the second one finds version 3 and does nothing. The folder itself is removed by the caller
once the migration has committed.

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

import hashlib
import logging
import sqlite3
import time
from pathlib import Path

from colbert import text
from colbert.errors import IndexFormatError
from colbert.local.fts import FTS_DDL, fts_add, fts_rebuild
from colbert.local.schema import FORMAT_VERSION, ORIGINALS_DDL, TOKENIZER_KEY, read_meta, read_tokenizer_version

__all__ = ["legacy_image_path", "migrate"]

log = logging.getLogger(__name__)
_SET_TOKENIZER = f"INSERT OR REPLACE INTO meta (key, value) VALUES ('{TOKENIZER_KEY}', ?)"

_V2_TO_V3 = """
ALTER TABLE documents ADD COLUMN content_hash TEXT;
ALTER TABLE pages ADD COLUMN kind TEXT NOT NULL DEFAULT 'page';
CREATE TABLE unit_text (page_id INTEGER PRIMARY KEY, text TEXT NOT NULL);
CREATE TABLE unit_images (page_id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS documents_by_hash ON documents (content_hash)
"""


def legacy_image_path(folder: Path, doc_id: str, page: int) -> Path:
    """Where format-2 deployments kept a page's PNG inside its collection's image folder."""
    return folder / hashlib.sha256(doc_id.encode("utf-8")).hexdigest()[:40] / f"{page}.png"


def migrate(conn: sqlite3.Connection, path: Path, legacy_images: Path | None) -> int:
    """Migrate the index behind ``conn`` (autocommit mode) to the current version; returns the number of page
    images imported (0 when there was nothing to do)."""
    version = read_meta(conn, path).get("format_version")
    if version == str(FORMAT_VERSION):
        _ensure_fts(conn)
        _ensure_tokenizer(conn, path)
        _ensure_hash_index(conn)
        conn.execute(ORIGINALS_DDL)  # a version-3 index written before originals were kept
        return 0
    if version != "2":
        return 0  # read_config names the unsupported version
    conn.execute("BEGIN IMMEDIATE")
    try:
        if read_meta(conn, path).get("format_version") != "2":  # another process migrated it meanwhile
            conn.execute("ROLLBACK")
            return 0
        for statement in _V2_TO_V3.strip().split(";\n"):
            conn.execute(statement)
        conn.execute(FTS_DDL)  # version 2 had no text: an empty full-text index
        conn.execute(_SET_TOKENIZER, (str(text.TOKENIZER_VERSION),))
        conn.execute(ORIGINALS_DDL)
        imported = _import_images(conn, legacy_images) if legacy_images is not None else 0
        conn.execute("UPDATE meta SET value = ? WHERE key = 'format_version'", (str(FORMAT_VERSION),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return imported


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


def _import_images(conn: sqlite3.Connection, folder: Path) -> int:
    if not folder.is_dir():
        return 0
    imported = 0
    for page_id, doc_id, page in conn.execute("SELECT id, doc_id, page FROM pages").fetchall():
        file = legacy_image_path(folder, doc_id, page)
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise IndexFormatError(f"cannot import page image {file} into {folder.parent}: {exc}") from exc
        conn.execute("INSERT INTO unit_images (page_id, data) VALUES (?, ?)", (page_id, data))
        imported += 1
    return imported
