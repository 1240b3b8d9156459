"""The ``pooled_ivf`` first stage of the embedded index: an inverted file over the pages' sketch centroids.

Every codec stores a sketch per page (``k`` k-means centroids of its tokens, :mod:`colbert.local.sketch`). A
collection-wide **cell book** (``K`` spherical k-means cells trained on a sample of those sketch centroids) files
each page under the distinct cells its ``k`` centroids fall in (``unit_cells``: at most ``k`` uint16 ids, ~4 for
a page of 4 topics). A search then (PLAID's candidate generation, applied to sketches instead of tokens):

1. scores every page by the cells it is filed under (:func:`colbert.local.ivf.ivf_top`: each query token probes its
   ``nprobe`` best cells; a page filed under none of them is imputed the token's best unprobed cell score, so every
   live, allowed page has a score and a selective filter still yields candidates) and keeps the best ``reach``;
2. scores those by their exact sketch score (:func:`colbert.local.sketch.sketch_scores`, what ``pooled`` computes
   for every page) and keeps the best ``candidates`` for the exact MaxSim rerank.

So the pages whose sketches are scored grow with ``reach``, not with the collection; what grows with it is one
pass of O(pages) bookkeeping (a zeroed score array and a top-``reach`` selection) and the probed lists' length.

Two tables, added to format 3 without a version change (created on open, empty until a cell book is trained)::

    cell_book(id = 1, data BLOB, digest, created_at)
                        the cells (:meth:`CellBook.to_bytes`), trained by :mod:`colbert.local.cell_training`
                        (``LocalStore.train_cells``, or by itself past ``LocalOptions.auto_cells_units`` live
                        units, :mod:`colbert.local.auto_cells`); replaced only by an automatic retraining
                        (once the default K is ``GROWTH`` = 2 × its K)
    unit_cells(page_id PK, data BLOB)
                        the ascending distinct cell ids (uint16) of a unit's sketch centroids, written in the unit's
                        own transaction (:func:`new_unit_cells`, called by every insert once a book exists) and deleted
                        with it; the units added before the book got theirs in the transaction that stored it

In memory: the same append-only inverted lists as the ``ivf`` stage (:class:`colbert.local.ivf.IvfSnapshot`, ~4
entries × 4 B + 9 B a page), over every page (a page without a cell row yet has an empty list: reachable, ranked
by imputation only: a training stores the book and every unit's row in one transaction, so only a training of an
older version interrupted midway, or a row removed by hand, leaves one; training again files it). A training that
files units already there (or replaces the book) bumps ``meta.cells_generation`` in the same transaction; a handle
that sees it change drops its held cell lists and reads the book again (new units need no such mark: they come
with their rows). A search ranks with the book of its own read transaction, and keeps the lists it built only
when they are the newest snapshot's and book's.
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from colbert.errors import IndexFormatError
from colbert.local.codes import list_fault
from colbert.local.sketch import quantize_sketches, widen_sketches

__all__ = [
    "CELLS_DDL",
    "CELLS_GENERATION_SQL",
    "DEFAULT_REACH",
    "CellBook",
    "assign_cells",
    "bump_generation",
    "cell_lists",
    "choose_cells",
    "load_cell_book",
    "load_cell_lists",
    "new_unit_cells",
    "packed_lists",
    "store_cell_book",
    "train_cell_book",
]

CELLS_DDL = (
    "CREATE TABLE IF NOT EXISTS cell_book (id INTEGER PRIMARY KEY CHECK (id = 1), data BLOB NOT NULL, "
    "digest TEXT NOT NULL, created_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS unit_cells (page_id INTEGER PRIMARY KEY, data BLOB NOT NULL)",
)
CELLS_GENERATION_SQL = "SELECT value FROM meta WHERE key = 'cells_generation'"  # bumped by each filing transaction
DEFAULT_REACH = 5000  # units sketch-scored after the cells (SearchOptions.prefetch overrides it): bench/README.md
_MAGIC = b"JEV4CELL1"
_ITERATIONS = 10
_SIMS = 1 << 22  # similarities per assignment GEMM (16 MiB of float32: 1,024 rows at K = 4,096)
# Stored books by digest: one parse per process, whatever the connection. Bounded, oldest parsed first out: a
# retrained collection leaves its old book here, and a handle keeps the book it uses (``LocalHandle.cells``).
_BOOKS: dict[str, CellBook] = {}
_BOOKS_KEPT = 16
_BOOKS_LOCK = threading.Lock()


@dataclass(frozen=True, eq=False)
class CellBook:
    """``K`` cells over sketch centroids: unit directions (K, D) float32 (a centroid's cell is the highest dot
    product with them) and each cell's mean member norm (K,), so ``centroids`` score as the members do."""

    units: npt.NDArray[np.float32]
    norms: npt.NDArray[np.float32]

    @property
    def k(self) -> int:
        return int(self.units.shape[0])

    @property
    def dim(self) -> int:
        return int(self.units.shape[1])

    @functools.cached_property
    def columns(self) -> npt.NDArray[np.float32]:
        """The unit directions transposed (D, K), contiguous: the assignment GEMM's right operand, made once."""
        return np.ascontiguousarray(self.units.T)

    @functools.cached_property
    def centroids(self) -> npt.NDArray[np.float32]:
        """(K, D) what a page filed under a cell is taken to hold there (what :func:`ivf_top` scores)."""
        out: npt.NDArray[np.float32] = self.units * self.norms[:, None]
        return out

    def to_bytes(self) -> bytes:
        head = _MAGIC + struct.pack("<II", self.k, self.dim)
        return head + self.units.astype("<f4").tobytes() + self.norms.astype("<f4").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> CellBook:
        if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 8:
            raise ValueError("not a cell book")
        k, d = struct.unpack_from("<II", data, len(_MAGIC))
        body = np.frombuffer(data, dtype="<f4", offset=len(_MAGIC) + 8)
        if not 1 <= k <= 65536 or body.size != k * d + k:
            raise ValueError(f"a cell book of K={k}, D={d} holds {body.size} values")
        return cls(body[: k * d].reshape(k, d).astype(np.float32), body[k * d :].astype(np.float32))


def choose_cells(vectors: int) -> int:
    """The default K for ``vectors`` sketch centroids: the power of two at or above √vectors, within [16, 65536]
    (1,024 at 100k pages × 8 centroids, 4,096 at 1M), and never more than the vectors."""
    k = 2 ** int(np.ceil(np.log2(max(np.sqrt(max(vectors, 1)), 1.0))))
    return int(min(max(16, k), 65536, max(1, vectors)))


def _unit(x: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    norms = np.sqrt(np.square(x).sum(axis=1)).astype(np.float32)
    return (x / np.maximum(norms, 1e-12)[:, None]).astype(np.float32), norms


def _nearest(units: npt.NDArray[np.float32], ct: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
    """Each row's cell: the highest dot product with the cells' unit directions, given transposed (D, K)."""
    out = np.empty(units.shape[0], dtype=np.int64)
    step = max(1, _SIMS // ct.shape[1])
    for start in range(0, units.shape[0], step):
        out[start : start + step] = (units[start : start + step] @ ct).argmax(axis=1)
    return out


def train_cell_book(
    vectors: npt.ArrayLike, k: int, *, seed: int = 0, between: Callable[[], None] | None = None
) -> CellBook:
    """Spherical k-means (``_ITERATIONS`` rounds from ``k`` distinct sampled rows) over sketch centroids (m, D);
    deterministic for a seed. An empty cell keeps its direction and gets the mean norm of all rows. ``between`` is
    called before each round (a stop request raises there)."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2 or not 1 <= k <= min(65536, x.shape[0]):
        raise ValueError(f"a cell book needs 1 <= K <= min(65536, rows); got K={k} for {x.shape[0]} rows")
    units, norms = _unit(x)
    rng = np.random.default_rng(seed)
    cells = units[rng.choice(units.shape[0], k, replace=False)].copy()
    for _ in range(_ITERATIONS):
        if between is not None:
            between()
        owner = _nearest(units, np.ascontiguousarray(cells.T))
        sums = np.zeros_like(cells)
        np.add.at(sums, owner, units)
        cells = np.where(np.abs(sums).sum(axis=1, keepdims=True) > 0, _unit(sums)[0], cells)
    owner = _nearest(units, np.ascontiguousarray(cells.T))
    count = np.bincount(owner, minlength=k)
    mean = np.bincount(owner, weights=norms, minlength=k) / np.maximum(count, 1)
    return CellBook(cells, np.where(count > 0, mean, norms.mean()).astype(np.float32))


def assign_cells(book: CellBook, sketches: npt.ArrayLike) -> list[bytes]:
    """Each page's ascending distinct cell ids (uint16 bytes) for sketches (P, k, D)."""
    return list(packed_lists(*cell_lists(book, sketches)))


def packed_lists(cells: npt.NDArray[np.uint16], ends: npt.NDArray[np.int64]) -> Iterator[bytes]:
    """Each page's ``unit_cells`` row (uint16 bytes) of lists packed as :func:`cell_lists` gives them, made one at a
    time as they are taken."""
    data = cells.astype("<u2").tobytes()
    start = 0
    for end in ends.tolist():
        yield data[2 * start : 2 * end]
        start = end


def cell_lists(book: CellBook, sketches: npt.ArrayLike) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.int64]]:
    """Every page's ascending distinct cell ids for sketches (P, k, D), packed: the lists concatenated (uint16)
    and each page's end offset in them (P,)."""
    s = np.asarray(sketches, dtype=np.float32)
    p, k, d = s.shape
    owner = np.sort(_nearest(_unit(s.reshape(p * k, d))[0], book.columns).reshape(p, k), axis=1)
    keep = np.ones_like(owner, dtype=bool)
    keep[:, 1:] = owner[:, 1:] != owner[:, :-1]  # (P, k) the first of each run of equal cells
    return owner[keep].astype(np.uint16), np.cumsum(keep.sum(axis=1), dtype=np.int64)


def load_cell_book(conn: sqlite3.Connection, path: Path | None = None) -> CellBook | None:
    """The stored cell book (None: not trained); ``IndexFormatError`` naming ``path`` (default: the connection's
    file) when damaged. Parsed once per digest."""
    row = conn.execute("SELECT digest FROM cell_book WHERE id = 1").fetchone()
    if row is None:
        return None
    with _BOOKS_LOCK:
        found = _BOOKS.get(row[0])
    if found is not None:
        return found
    data = bytes(conn.execute("SELECT data FROM cell_book WHERE id = 1").fetchone()[0])
    path = path or Path(conn.execute("PRAGMA database_list").fetchone()[2])
    if hashlib.sha256(data).hexdigest() != row[0]:
        raise IndexFormatError(f"{path}: the stored cell book is damaged (digest mismatch); {_RETRAIN}")
    try:
        book = CellBook.from_bytes(data)
    except ValueError as exc:
        raise IndexFormatError(f"{path}: the stored cell book is damaged ({exc}); {_RETRAIN}") from exc
    return _keep(row[0], book)


def _keep(digest: str, book: CellBook) -> CellBook:
    """The process's parsed book of ``digest``: the one kept already, else ``book``, kept now (the oldest let go
    past ``_BOOKS_KEPT``)."""
    with _BOOKS_LOCK:
        kept = _BOOKS.setdefault(digest, book)
        while len(_BOOKS) > _BOOKS_KEPT:
            del _BOOKS[next(iter(_BOOKS))]
    return kept


_RETRAIN = "delete the cell_book and unit_cells rows and train the cells again (LocalStore.train_cells)"


def store_cell_book(conn: sqlite3.Connection, book: CellBook, path: Path) -> CellBook:
    """Store ``book`` unless one is there (inside the caller's write transaction); the stored one (``book`` itself,
    or an equal book, when it was stored now)."""
    data = book.to_bytes()
    digest = hashlib.sha256(data).hexdigest()
    _keep(digest, book)  # so the stored one *is* ``book`` when it was stored now (or an equal one was)
    conn.execute(
        "INSERT OR IGNORE INTO cell_book (id, data, digest, created_at) VALUES (1, ?, ?, ?)",
        (data, digest, time.time()),
    )
    stored = load_cell_book(conn, path)
    assert stored is not None
    return stored


def bump_generation(conn: sqlite3.Connection) -> None:
    """Mark that units already in the collection were filed (a training's transaction): every handle's held cell
    lists are stale (they gave those units empty lists) and are rebuilt by its next ``pooled_ivf`` search."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('cells_generation', '1') "
        "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
    )


def new_unit_cells(conn: sqlite3.Connection, sketches: npt.NDArray[np.float16]) -> list[bytes] | None:
    """The ``unit_cells`` rows of units being inserted in the caller's transaction (None: no cell book yet).
    ``sketches``: their (P, k, D) float16 centroids (:class:`colbert.local.write.UnitRow`), filed by the values a
    handle holds for them (int8 codes and scales), as training files the units already there: a unit lands in the
    same cells whichever way it was filed."""
    book = load_cell_book(conn)
    if book is None:
        return None
    return assign_cells(book, widen_sketches(*quantize_sketches(sketches)))


def load_cell_lists(conn: sqlite3.Connection, after_id: int, k: int, path: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """Every unit above ``after_id`` (ids ascending) and its cell ids (empty: not filed yet), checked: ids
    strictly ascending below ``k`` (else ``IndexFormatError``: a damaged list would misplace its unit)."""
    rows = conn.execute(
        "SELECT p.id, c.data FROM pages p LEFT JOIN unit_cells c ON c.page_id = p.id WHERE p.id > ? ORDER BY p.id",
        (after_id,),
    ).fetchall()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    payloads = [b"" if r[1] is None else r[1] for r in rows]
    odd = next((i for i, data in enumerate(payloads) if len(data) % 2), None)
    lists = [] if odd is not None else [np.frombuffer(data, dtype="<u2") for data in payloads]
    fault = f"unit {ids[odd]}'s list is not whole cell ids" if odd is not None else None
    fault = fault or list_fault(ids, lists, k, "cell", "cell book", empty_ok=True)
    if fault is not None:
        raise IndexFormatError(f"{path}: a stored cell list (unit_cells) is damaged ({fault}); {_RETRAIN}")
    return ids, lists
