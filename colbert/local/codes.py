"""The embedded index's codebook (residual codecs, :mod:`colbert.codebook`) and its per-unit centroid lists.

Two tables, added to format 3 without a version change (created at creation and on open, empty unless the
collection's codec is a residual one, so existing indexes keep opening)::

    codebook(id = 1, data BLOB, digest, tokens, created_at)
                        the collection's one codebook (``Codebook.to_bytes``), written by the transaction of
                        the first document (trained on that document's tokens) or by an explicit
                        ``LocalStore.train_codebook`` before any document; never changed afterwards (another
                        codebook means another collection: recode through export/import)
    unit_centroids(page_id PK, data BLOB)
                        the distinct centroid ids of a unit's tokens, ascending uint16: the inverted-file first
                        stage's postings (:mod:`colbert.local.ivf`), written and deleted with the unit

A writer that trained a codebook in parallel with another process's writer finds the other's row in its
transaction (``INSERT OR IGNORE`` then read back) and re-encodes its units with it before inserting them.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

import numpy as np

from colbert.codebook import Codebook
from colbert.errors import CodecError, IndexFormatError

__all__ = [
    "CODES_DDL",
    "RESTORE_HINT",
    "checked_lists",
    "damaged_lists",
    "digest",
    "distinct_centroids",
    "list_fault",
    "load_codebook",
    "store_codebook",
]

CODES_DDL = (
    "CREATE TABLE IF NOT EXISTS codebook (id INTEGER PRIMARY KEY CHECK (id = 1), data BLOB NOT NULL, "
    "digest TEXT NOT NULL, tokens INTEGER NOT NULL, created_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS unit_centroids (page_id INTEGER PRIMARY KEY, data BLOB NOT NULL)",
)

LISTS_HINT = (  # the lists are derived from the codes: a recode writes them afresh
    "rebuild them from the stored codes with `python -m service collections vacuum NAME --recode CODEC`, or restore "
    "the collection from an export (`python -m service collections import`)"
)
RESTORE_HINT = (
    "its answers cannot be trusted: restore the collection from an export (`python -m service collections import`) "
    "or delete and re-add the affected documents (vacuum and --recode read the same damaged codes)"
)


def digest(book: Codebook) -> str:
    return hashlib.sha256(book.to_bytes()).hexdigest()


def load_codebook(conn: sqlite3.Connection, path: Path) -> Codebook | None:
    """The stored codebook (None: not trained yet); ``IndexFormatError`` naming the file when it is damaged."""
    row = conn.execute("SELECT data, digest FROM codebook WHERE id = 1").fetchone()
    if row is None:
        return None
    data = bytes(row[0])
    if hashlib.sha256(data).hexdigest() != row[1]:
        raise IndexFormatError(f"{path}: the stored codebook is damaged (digest mismatch); {RESTORE_HINT}")
    try:
        return Codebook.from_bytes(data)
    except CodecError as exc:
        raise IndexFormatError(f"{path}: the stored codebook is damaged ({exc}); {RESTORE_HINT}") from exc


def store_codebook(conn: sqlite3.Connection, book: Codebook, tokens: int, path: Path) -> Codebook:
    """Store ``book`` unless a codebook is there (inside the caller's write transaction); the stored one."""
    data = book.to_bytes()
    conn.execute(
        "INSERT OR IGNORE INTO codebook (id, data, digest, tokens, created_at) VALUES (1, ?, ?, ?, ?)",
        (data, hashlib.sha256(data).hexdigest(), int(tokens), time.time()),
    )
    stored = load_codebook(conn, path)
    assert stored is not None
    return stored


def distinct_centroids(blob: bytes, n: int) -> bytes:
    """The ascending distinct centroid ids (uint16) of a residual blob's ``n`` tokens (its first 2·n bytes)."""
    ids = np.frombuffer(blob, dtype="<u2", count=n)
    return np.unique(ids).astype("<u2").tobytes()


def damaged_lists(path: Path, detail: str) -> IndexFormatError:
    """The error for ``unit_centroids`` rows that are not what :func:`distinct_centroids` writes."""
    return IndexFormatError(f"{path}: a stored centroid list (unit_centroids) is damaged ({detail}); {LISTS_HINT}")


def checked_lists(ids: np.ndarray, lists: list[np.ndarray], k: int, path: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """``ids`` (m,) and their centroid lists as loaded, once each list is known to be what
    :func:`distinct_centroids` writes: non-empty, strictly ascending ids below ``k``; else ``damaged_lists``. A
    damaged list would drop its unit from (or misplace it in) the ivf first stage: wrong answers, not an error."""
    fault = list_fault(ids, lists, k, "centroid", "codebook")
    if fault is not None:
        raise damaged_lists(path, fault)
    return ids, lists


def list_fault(
    ids: np.ndarray, lists: list[np.ndarray], k: int, entry: str, book: str, *, empty_ok: bool = False
) -> str | None:
    """What is wrong with the first of the units ``ids``' inverted-file ``lists`` that is not strictly ascending
    ``entry`` ids below ``k`` (non-empty unless ``empty_ok``), naming its unit; None when every list is. Checked
    over all the lists at once: per list, numpy's per-call cost was most of a first search's time at 1M units."""
    sizes = np.fromiter((c.size for c in lists), dtype=np.int64, count=len(lists))  # (m,)
    if not empty_ok and sizes.size and not sizes.all():
        return f"unit {int(ids[np.argmin(sizes)])}'s list holds no {entry}"
    if not sizes.any():
        return None
    every = np.concatenate(lists)  # (N,) uint16
    owner = lambda mask: int(np.repeat(ids, sizes)[np.argmax(mask)])  # noqa: E731 - the page id of the first hit
    if int(every.max()) >= k:
        return f"unit {owner(every >= k)}'s list names a {entry} outside the {book}'s {k}"
    falling = np.diff(every.astype(np.int32)) <= 0  # (N-1,) entry j+1 not above entry j ...
    starts = np.cumsum(sizes)[:-1]
    falling[starts[(starts > 0) & (starts < every.size)] - 1] = False  # ... within one list
    if falling.any():
        return f"unit {owner(np.append(False, falling))}'s list is not strictly ascending"
    return None
