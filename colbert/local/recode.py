"""Recode an embedded collection: move every document to another multi-vector codec, swapped in atomically.

The new collection is built in a hidden staging directory (:meth:`LocalBackend.create_staging`'s kind) from the
old one's documents as stored — the same path an export + ``import --codec`` takes
(:meth:`LocalBackend.export_source` then :meth:`LocalBackend.restore`, without the file in between): ids,
metadata, ``created_at``, content hashes, warnings, units, texts, images and originals are copied as they are,
and only the multi-vectors (with their sketches, and a codebook for the residual codecs) are re-encoded. The dense
codec, the sketch width and the ``pooled_ivf`` cell book stay the collection's (the units are filed again).

All the while the old collection's write lock is held (:meth:`LocalHandle._exclusive`): a write already under
way (this process or another) refuses the recode with ``CollectionBusyError`` instead of waiting, and writes
that come later wait, so no write is lost between the copy and the swap. Searches go on against the old
collection. The swap is one ``renameat2(RENAME_EXCHANGE)`` of the two directories: a reader sees the old
collection or the new one, never neither, and a crash at any moment leaves the old collection in place (a hidden
leftover is swept at the next open). A writer of another process that waited on the lock writes into the old,
swapped-out file; the service's write path notices (``still_there``) and fails that upload. Other processes'
handles notice the new index file by its inode (:meth:`LocalBackend.is_stale`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import os
from typing import TYPE_CHECKING

from colbert.errors import CodecError, CollectionExistsError
from colbert.local.cells import load_cell_book, store_cell_book
from colbert.local.scan import damaged_codes

if TYPE_CHECKING:
    from pathlib import Path

    from colbert.local.backend import LocalBackend
    from colbert.local.store import LocalStore
    from colbert.quantize import Codec

__all__ = ["exchange_directories", "recode_collection"]

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def recode_collection(backend: LocalBackend, name: str, old: LocalStore, codec: Codec) -> int:
    """Rebuild collection ``name`` (open as ``old``) with ``codec`` and swap it in (module doc); the documents
    copied. ``old`` is closed afterwards (its directory is removed)."""
    config = dataclasses.replace(old.config, codec=codec)
    options = dataclasses.replace(backend.options, dense_codec=old.dense_codec, sketch_vectors=old.sketch_vectors)
    root = old.directory.parent
    copied = 0
    with old._exclusive(f"the recode of collection {name!r}"):
        key, staged = backend.new_staging(name, config, options, prefix=".recode")
        try:
            with old._read() as conn:
                cells = load_cell_book(conn, old._path)
            if cells is not None:  # kept: each restored unit is filed under them in its own transaction
                with staged._write() as conn:
                    store_cell_book(conn, cells, staged._path)
            source = backend.export_source(old)
            for doc in source.documents:
                try:
                    backend.restore(staged, doc, source.encoding, source.sketch_vectors)
                except CodecError as exc:  # the old collection's codes do not decode
                    raise damaged_codes(old._path, old.config.codec, exc) from exc
                copied += 1
            staged.close()
            if not (root / name).is_dir():
                raise CollectionExistsError(f"collection {name!r} was deleted while it was being recoded")
            exchange_directories(root / key, root / name)
        except BaseException:
            staged.close()
            backend.discard(key)
            raise
    old.close()
    backend.discard(key)  # now the old collection's files
    return copied


def exchange_directories(a: Path, b: Path) -> None:
    """Swap two directories in one atomic step (Linux ``renameat2`` with ``RENAME_EXCHANGE``); ``OSError`` where
    the system cannot (then nothing moved)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        raise OSError(f"this system has no renameat2: cannot swap {b} atomically")
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"cannot swap {a} and {b}: {os.strerror(err)}")
