"""The embedded backend's collections: one directory each under ``<data_dir>/collections/``.

Creation builds the index in a hidden temporary directory and renames it into place, and deletion renames the
directory away before removing it; a rename is atomic, so after a crash a name either is a complete collection
or does not exist. An import is built the same way in a hidden ``.import-*`` directory
(:meth:`LocalBackend.create_staging`), renamed into place only when complete; a rename never replaces a
collection created meanwhile (the directory is not empty). A staging directory is ``flock``-ed by the process
building it until it is published or discarded; when a backend opens, the hidden directories nobody holds
(leftovers of a crash or ``kill -9``, whose locks died with their process) are removed, and those another
process is still building are left alone.
"""

from __future__ import annotations

import builtins
import fcntl
import json
import os
import re
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from colbert._validate import canonical_json
from colbert.backend import ExportSource, StoredDocument, StoredUnit, VacuumResult
from colbert.errors import CollectionExistsError, CollectionNotFoundError, ExportFormatError
from colbert.jobs import JobStore, Retention
from colbert.local import schema as _schema
from colbert.local.checksum import check_codes
from colbert.local.coding import settle_codebook, unit_rows
from colbert.local.dense_codec import decode_dense, encode_dense
from colbert.local.jobs import SqliteJobStore
from colbert.local.recode import recode_collection
from colbert.local.sketch import page_sketch
from colbert.local.sketch_codec import export_rows
from colbert.local.store import LocalOptions, LocalStore
from colbert.local.write import UnitRow, insert_document
from colbert.quantize import Codec, decode, encode, needs_codebook
from colbert.store import CollectionConfig, OriginalFile, Store, UnitRecord

__all__ = ["LocalBackend"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
VACUUM_NOTE = "full-text index merged, index file rebuilt (VACUUM), WAL truncated"


def _mine(store: Store) -> LocalStore:
    if not isinstance(store, LocalStore):  # a programming error: a store of another backend
        raise TypeError(f"the embedded backend was handed a {type(store).__name__}")
    return store


class LocalBackend:
    """Collections of one data directory (see the module doc). Thread-safety: the catalog serialises calls."""

    kind = "local"

    def __init__(self, data_dir: Path, options: LocalOptions | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.options = options or LocalOptions()
        self._root = self.data_dir / "collections"
        self._root.mkdir(parents=True, exist_ok=True)
        self._inodes: dict[str, int] = {}  # index file of each open store (another process may swap it)
        self._staging: dict[str, int] = {}  # key -> descriptor of its directory, flock-ed while it is built
        for leftover in self._root.glob(".*"):
            _remove_unless_held(leftover)

    # -- lifecycle ------------------------------------------------------------------------------------

    def create(self, name: str, config: CollectionConfig) -> Store:
        key, store = self.create_staging(name, config, prefix=".tmp")
        store.close()
        try:
            self.publish(key, name)
        except CollectionExistsError:
            self.discard(key)
            raise
        return self.open(name)

    def open(self, name: str) -> Store:
        path = self._root / name
        if not (path / _schema.DB_FILE).is_file():
            raise CollectionNotFoundError(f"no collection named {name!r}")
        self._inodes[name] = (path / _schema.DB_FILE).stat().st_ino  # before opening: a swap is then noticed
        return LocalStore.open(path, options=self.options)

    def exists(self, name: str) -> bool:
        return (self._root / name).exists()

    def names(self) -> builtins.list[str]:
        return [
            p.name
            for p in self._root.iterdir()
            if _NAME.fullmatch(p.name) and "__" not in p.name and (p / _schema.DB_FILE).is_file()
        ]

    def drop(self, name: str) -> bool:
        path = self._root / name
        if not path.exists():
            return False
        trash = self._root / f".trash-{name}-{uuid.uuid4().hex}"
        path.rename(trash)
        shutil.rmtree(trash)
        return True

    def is_stale(self, name: str, store: Store) -> bool:
        try:
            inode = (self._root / name / _schema.DB_FILE).stat().st_ino
        except FileNotFoundError:
            return True
        return inode != self._inodes.get(name)

    def disk_bytes(self, store: Store) -> int | None:
        return _mine(store).disk_bytes()

    def vacuum(self, name: str, store: Store) -> VacuumResult:
        before, after = _mine(store).vacuum()
        return VacuumResult(name, before, after, VACUUM_NOTE)

    def train_cells(self, store: Store, cells: int | None) -> tuple[int, int]:
        book, filed = _mine(store).train_cells(cells)
        return book.k, filed

    def cells(self, store: Store) -> int | None:
        return _mine(store).cell_count()

    def recode(self, name: str, store: Store, codec: Codec) -> VacuumResult:
        """Move the collection to ``codec`` (:mod:`colbert.local.recode`); ``store`` is closed."""
        local = _mine(store)
        was, before = local.config.codec, local.disk_bytes()
        copied = recode_collection(self, name, local, codec)
        after = sum(p.stat().st_size for p in (self._root / name).iterdir() if p.is_file())
        note = f"recoded {copied} documents from {was} to {codec} (a new index file, swapped in)"
        return VacuumResult(name, before, after, note)

    def create_staging(self, name: str, config: CollectionConfig, *, prefix: str = ".import") -> tuple[str, Store]:
        if (self._root / name).exists():
            raise CollectionExistsError(f"collection {name!r} already exists")
        return self.new_staging(name, config, self.options, prefix=prefix)

    def new_staging(
        self, name: str, config: CollectionConfig, options: LocalOptions, *, prefix: str
    ) -> tuple[str, LocalStore]:
        """A hidden, locked collection directory to build ``name`` in, whether or not ``name`` exists. Its store
        never trains cells by itself (``auto_cells_units`` 0): it is closed once built, which would stop one; the
        published collection trains them when a process next opens it (:mod:`colbert.local.auto_cells`)."""
        key = f"{prefix}-{name}-{uuid.uuid4().hex}"
        (self._root / key).mkdir()
        self._staging[key] = fd = os.open(self._root / key, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)  # another process's sweep leaves it alone while this one builds it
        try:
            return key, LocalStore.create(self._root / key, config, replace(options, auto_cells_units=0))
        except BaseException:
            self.discard(key)
            raise

    def publish(self, key: str, name: str) -> None:
        try:
            (self._root / key).rename(self._root / name)  # refuses a non-empty target: nobody's data is replaced
        except OSError as exc:
            raise CollectionExistsError(f"collection {name!r} already exists ({exc})") from exc
        self._release(key)

    def discard(self, key: str) -> None:
        shutil.rmtree(self._root / key, ignore_errors=True)
        self._release(key)

    def _release(self, key: str) -> None:
        fd = self._staging.pop(key, None)
        if fd is not None:
            os.close(fd)  # drops the flock

    def job_store(self, *, busy_timeout_s: float, retention: Retention | None) -> JobStore:
        return SqliteJobStore(self.data_dir / "jobs.sqlite", busy_timeout_s=busy_timeout_s, retention=retention)

    def close(self) -> None:
        """Nothing is held beyond the stores, which the catalog closes."""

    # -- transfer -------------------------------------------------------------------------------------

    def export_source(self, store: Store) -> ExportSource:
        local = _mine(store)
        if needs_codebook(local.config.codec):  # the codes mean nothing without the codebook: export the values
            return ExportSource(Codec.FLOAT32, local.sketch_vectors, _documents(local, decoded=True))
        return ExportSource(Codec(local.config.codec), local.sketch_vectors, _documents(local))

    def restore(self, store: Store, doc: StoredDocument, encoding: Codec, sketch_vectors: int | None) -> None:
        local = _mine(store)
        codec = Codec(local.config.codec)
        if needs_codebook(codec):
            _restore_recoded(local, doc, encoding)
            return
        dim = local.config.multivector_dim
        rows = []
        for u in doc.units:
            blob = u.mv if encoding is codec else encode(decode(u.mv, u.rows, dim, encoding), codec)
            if u.sketch is None or sketch_vectors != local.sketch_vectors:
                sketch = page_sketch(decode(blob, u.rows, dim, codec), local.sketch_vectors).astype(np.float16)
            else:  # the export's float16 centroids (their size checked by colbert._export_checks)
                sketch = np.frombuffer(u.sketch, dtype=np.float16).reshape(local.sketch_vectors, dim)
            metadata = canonical_json(u.metadata)
            dense = encode_dense(np.frombuffer(u.dense, dtype=np.float32), local.dense_codec)
            rows.append(UnitRow(u.unit, u.kind, metadata, dense, u.rows, blob, sketch, u.text, u.image))
        with local._write() as conn:
            _insert_restored(conn, doc, rows, local._path)


def _restore_recoded(local: LocalStore, doc: StoredDocument, encoding: Codec) -> None:
    """Restore into a residual-codec collection: the stored values re-encoded with its codebook (trained on this
    document when it has none yet); the sketches are recomputed from the residual-coded values."""
    dim = local.config.multivector_dim
    records = [
        UnitRecord(
            u.unit,
            np.frombuffer(u.dense, dtype=np.float32),
            decode(u.mv, u.rows, dim, encoding),
            kind=u.kind,
            text=u.text,
            metadata=u.metadata,
            image=u.image,
        )
        for u in doc.units
    ]
    plain = replace(local.config, pool_factor=1)  # the export holds the pooled rows already
    rows, trained = unit_rows(records, plain, local.sketch_vectors, local.codebook(), local.dense_codec)
    with local._write() as conn:
        rows = settle_codebook(
            conn, rows, records, trained, plain, local.sketch_vectors, local._path, local.dense_codec
        )
        _insert_restored(conn, doc, rows, local._path)


def _insert_restored(conn: sqlite3.Connection, doc: StoredDocument, rows: list[UnitRow], path: Path) -> None:
    if conn.execute("SELECT 1 FROM documents WHERE doc_id = ?", (doc.doc_id,)).fetchone():
        raise ExportFormatError(f"document {doc.doc_id!r} appears twice in the export")
    codec = _schema.read_sketch_codec(conn, path)
    insert_document(
        conn, doc.doc_id, rows, doc.metadata, doc.content_hash, doc.original, doc.warnings, sketch_codec=codec
    )
    conn.execute("UPDATE documents SET created_at = ? WHERE doc_id = ?", (doc.created_at, doc.doc_id))


def _remove_unless_held(leftover: Path) -> None:
    """Remove a hidden leftover unless a live process holds its lock (it is building it)."""
    try:
        fd = os.open(leftover, os.O_RDONLY)
    except OSError:
        return  # gone meanwhile
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return
    finally:
        os.close(fd)
    shutil.rmtree(leftover, ignore_errors=True)


def _documents(store: LocalStore, *, decoded: bool = False) -> Iterator[StoredDocument]:
    """Every document of an embedded collection as stored (``decoded``: multi-vectors as float32 values), from
    one read snapshot."""
    with store._read() as conn:
        docs = conn.execute(
            "SELECT doc_id, metadata, created_at, content_hash, warnings FROM documents ORDER BY seq"
        ).fetchall()
        for doc_id, metadata, created_at, content_hash, warnings in docs:
            rows = conn.execute(
                "SELECT p.page, p.kind, p.metadata, p.dense, m.n, m.data, t.text, i.data, s.data, p.id, m.crc "
                "FROM pages p JOIN multivectors m ON m.page_id = p.id LEFT JOIN unit_text t ON t.page_id = p.id "
                "LEFT JOIN unit_images i ON i.page_id = p.id LEFT JOIN sketches s ON s.page_id = p.id "
                "WHERE p.doc_id = ? ORDER BY p.page",
                (doc_id,),
            ).fetchall()
            check_codes(conn, ((r[9], r[5], r[10]) for r in rows))  # an export never carries damaged codes
            sketches = _export_sketches(store, conn, [r[8] for r in rows])
            units = [
                StoredUnit(
                    unit=int(r[0]),
                    kind=str(r[1]),
                    metadata=json.loads(r[2]),
                    dense=decode_dense(r[3], 1, store.config.dense_dim, store.dense_codec).tobytes(),
                    rows=int(r[4]),
                    mv=store.decoded(r[5], int(r[4])).tobytes() if decoded else bytes(r[5]),
                    text=r[6],
                    image=None if r[7] is None else bytes(r[7]),
                    sketch=sketch,
                )
                for r, sketch in zip(rows, sketches, strict=True)
            ]
            found = conn.execute("SELECT data, media_type, name FROM originals WHERE doc_id = ?", (doc_id,)).fetchone()
            original = None if found is None else OriginalFile(bytes(found[0]), found[1], found[2])
            noted = () if warnings is None else tuple(json.loads(warnings))
            yield StoredDocument(doc_id, json.loads(metadata), float(created_at), content_hash, units, original, noted)


def _export_sketches(store: LocalStore, conn: sqlite3.Connection, stored: list[bytes | None]) -> list[bytes | None]:
    """A document's stored sketch rows as exports carry them: float16 (k, d) (:func:`export_rows`)."""
    codec = _schema.read_sketch_codec(conn, store._path)
    k, d = store.sketch_vectors, store.config.multivector_dim
    out: list[bytes | None] = []
    for data in stored:
        out.append(None if data is None else export_rows(bytes(data), 1, k, d, codec)[0])
    return out
