"""``vacuum`` of the embedded index (:meth:`colbert.local.handle.LocalHandle.vacuum`): reclaim the space of deleted
and replaced documents and bring old rows to the current stored forms, in place, while readers go on."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from colbert.errors import StoreBusyError, StoreClosedError
from colbert.local.checksum import add_missing_crcs
from colbert.local.sketch_codec import convert_to_int8

if TYPE_CHECKING:
    from colbert.local.handle import LocalHandle

__all__ = ["vacuum"]


def vacuum(store: LocalHandle) -> tuple[int, int]:
    """Reclaim the space of deleted and replaced documents; (bytes on disk before, after).

    Checksums the multi-vector blobs written before checksums (:mod:`colbert.local.checksum`), stores float16
    sketches as int8 (:mod:`colbert.local.sketch_codec`: the values held are the same), merges the
    full-text index's segments, rebuilds the file (SQLite ``VACUUM``: free pages are dropped; rowids, so the
    in-memory first stage, are kept) and truncates the WAL. Holds the write lock meanwhile
    (other writers wait, up to ``busy_timeout_s`` in other processes); readers go on. Needs free disk space
    about the size of the index while it runs."""
    before = store.disk_bytes()
    with store._write() as conn:  # a transaction of its own: VACUUM cannot run inside one
        add_missing_crcs(conn)
        convert_to_int8(conn, store.sketch_vectors, store.config.multivector_dim)  # float16 sketches: half the disk
    with store._write_lock:
        if store._closed:
            raise StoreClosedError(f"the store at {store.directory} is closed")
        conn = store._writer
        try:
            conn.execute("INSERT INTO unit_fts (unit_fts) VALUES ('optimize')")
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            raise StoreBusyError(
                f"{store.directory}: vacuum could not take the write lock within "
                f"busy_timeout_s={store.options.busy_timeout_s} s ({exc}); retry later"
            ) from exc
    return before, store.disk_bytes()
