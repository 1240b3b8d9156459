"""A checksum per stored multi-vector blob, so that damage which keeps a blob's length is an error, not a score.

A flipped bit in a float16, int8 or binary blob, or an in-range centroid id in a residual one, still decodes: it
would be scored as if it were right. So ``multivectors.crc`` holds ``zlib.crc32`` of the row's ``data``, written
in the same statement as the blob (:func:`colbert.local.write.insert_document`), and every read of codes for
scoring or decoding passes its rows through :func:`check_codes`: the rerank and the exhaustive scan
(:mod:`colbert.local.scan`), ``get_unit``, and the export and recode (:func:`colbert.local.backend._documents`).
A mismatch raises ``IndexFormatError`` naming the index file, the document and the unit, and what to do; the
service maps it to 503 ``index_unavailable``.

Collections written before the column existed get it on open (:func:`ensure_crc_column`, from
:mod:`colbert.local.migrate`: an ``ALTER TABLE ... ADD COLUMN``, no rewrite) with NULL in every row: NULL means
"not known", and such rows are read unchecked, as before, until ``vacuum`` (:func:`add_missing_crcs`) or a recode
writes their checksums. Damage already there at that moment is then sealed in: the checksum guards against what
happens to a blob after it is known, not before.

Cost: one CRC-32 pass over the bytes read. The checksum is zlib's CRC-32 (the same polynomial and values as
``zlib.crc32``, so every stored checksum stays valid), computed by zlib-ng (``zlib_ng.crc32``: folded with
carry-less multiplies, ~15 GB/s on one core here against ~2 GB/s for the system zlib 1.2.13 that Python's
``zlib`` links; measured by ``bench/crc_cost.py``, which prints both). With the system zlib the check was ~40 % of
an int8 exhaustive scan's time once the kernel ran on AMX tiles (docs/notes/2026-12-07f/scorer.md).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from zlib_ng import zlib_ng

from colbert.errors import IndexFormatError
from colbert.local.codes import RESTORE_HINT

__all__ = ["CRC_BATCH", "add_missing_crcs", "check_codes", "code_crc", "ensure_crc_column"]

CRC_BATCH = 256  # rows checksummed per statement by add_missing_crcs (bounds its memory)


def code_crc(blob: bytes) -> int:
    """The checksum stored beside a multi-vector blob (unsigned 32-bit): zlib's CRC-32 of its bytes."""
    return zlib_ng.crc32(blob)


def check_codes(conn: sqlite3.Connection, rows: Iterable[tuple[int, bytes, int | None]]) -> None:
    """Raise ``IndexFormatError`` for the first ``(page id, blob, stored crc)`` whose blob does not match its
    checksum (a stored crc of None: written before checksums, not checked)."""
    for page_id, blob, crc in rows:
        if crc is not None and zlib_ng.crc32(blob) != crc:
            raise damaged_blob(conn, int(page_id))


def damaged_blob(conn: sqlite3.Connection, page_id: int) -> IndexFormatError:
    """The error for unit ``page_id``'s codes failing their checksum: names the file, the document and the unit."""
    where = conn.execute("PRAGMA database_list").fetchone()[2] or "the index"  # (seq, name, file) of main
    row = conn.execute("SELECT doc_id, page FROM pages WHERE id = ?", (page_id,)).fetchone()
    unit = f"unit {page_id}" if row is None else f"document {row[0]!r} unit {row[1]} (row {page_id})"
    return IndexFormatError(
        f"{where}: the stored multi-vector codes of {unit} are damaged (checksum mismatch); {RESTORE_HINT}"
    )


def ensure_crc_column(conn: sqlite3.Connection) -> None:
    """Give an index written before checksums its ``multivectors.crc`` column (NULL in every row). Another
    process may add it between the check and the ALTER: that one's error is the column existing."""
    if "crc" in {row[1] for row in conn.execute("PRAGMA table_info(multivectors)")}:
        return
    try:
        conn.execute("ALTER TABLE multivectors ADD COLUMN crc INTEGER")
    except sqlite3.OperationalError as exc:
        if "duplicate column" not in str(exc):
            raise


def add_missing_crcs(conn: sqlite3.Connection) -> int:
    """Write the checksum of every row that has none (inside the caller's write transaction); the rows done."""
    done, after = 0, -1
    while True:
        rows = conn.execute(
            "SELECT page_id, data FROM multivectors WHERE crc IS NULL AND page_id > ? ORDER BY page_id LIMIT ?",
            (after, CRC_BATCH),
        ).fetchall()
        if not rows:
            return done
        conn.executemany("UPDATE multivectors SET crc = ? WHERE page_id = ?", [(code_crc(d), i) for i, d in rows])
        done += len(rows)
        after = rows[-1][0]
