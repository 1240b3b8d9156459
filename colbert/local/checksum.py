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

Cost: one ``crc32`` pass over the bytes read (~3.5 GB/s here; ``adler32`` is no faster). ``bench/crc_cost.py``:
a rerank of 400 candidates of ~755 tokens (read + score), CPU time, checked ÷ unchecked in one run on a shared
2-core Zen 3 — binary (4.6 MB of codes) 1.06–1.11×, int8 (38 MB) 1.12–1.18×, residual2 (9.9 MB) 1.09× (two runs).
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Iterable

from colbert.errors import IndexFormatError
from colbert.local.codes import RESTORE_HINT

__all__ = ["CRC_BATCH", "add_missing_crcs", "check_codes", "code_crc", "ensure_crc_column"]

CRC_BATCH = 256  # rows checksummed per statement by add_missing_crcs (bounds its memory)


def code_crc(blob: bytes) -> int:
    """The checksum stored beside a multi-vector blob (unsigned 32-bit)."""
    return zlib.crc32(blob)


def check_codes(conn: sqlite3.Connection, rows: Iterable[tuple[int, bytes, int | None]]) -> None:
    """Raise ``IndexFormatError`` for the first ``(page id, blob, stored crc)`` whose blob does not match its
    checksum (a stored crc of None: written before checksums, not checked)."""
    for page_id, blob, crc in rows:
        if crc is not None and zlib.crc32(blob) != crc:
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
