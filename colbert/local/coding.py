"""Units into rows under the collection's codec, for the residual codecs with the codebook's life cycle
(:mod:`colbert.local.codes`): trained on the first document's tokens (outside the write lock), stored by that
document's transaction, or found already stored by another writer (then the units are re-encoded with it)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from colbert.codebook import Codebook
from colbert.errors import CodecError
from colbert.local.codes import digest, load_codebook, store_codebook
from colbert.local.sketch import page_sketches
from colbert.local.write import UnitRow, stored_tokens, unit_row
from colbert.quantize import needs_codebook, train_codebook
from colbert.store import CollectionConfig, UnitRecord

__all__ = ["settle_codebook", "store_first_codebook", "trained_codebook", "unit_rows"]


def unit_rows(
    records: Sequence[UnitRecord],
    config: CollectionConfig,
    sketch_vectors: int,
    book: Codebook | None,
    dense_codec: str = "float32",
) -> tuple[list[UnitRow], Codebook | None]:
    """The units' rows with ``book`` (the stored codebook, None if none yet), and the codebook trained on these
    units' tokens when the codec needs one and none is stored (else None); dense vectors in ``dense_codec``."""
    trained = None
    mvs = [stored_tokens(r, config) for r in records]  # (m_i, d) each
    if book is None and needs_codebook(config.codec):
        book = trained = train_codebook(config.codec, np.concatenate(mvs))
    sketches = page_sketches(mvs, sketch_vectors)
    rows = [
        unit_row(r, config, sketch_vectors, book, dense_codec, mv, sk)
        for r, mv, sk in zip(records, mvs, sketches, strict=True)
    ]
    return rows, trained


def settle_codebook(
    conn: sqlite3.Connection,
    rows: list[UnitRow],
    records: Sequence[UnitRecord],
    trained: Codebook | None,
    config: CollectionConfig,
    sketch_vectors: int,
    path: Path,
    dense_codec: str = "float32",
) -> list[UnitRow]:
    """Inside the write transaction: store a freshly ``trained`` codebook, or re-encode the units with the one
    another writer stored first."""
    if trained is None:
        return rows
    stored = store_codebook(conn, trained, sum(r.n for r in rows), path)
    if digest(stored) == digest(trained):
        return rows
    return [unit_row(r, config, sketch_vectors, stored, dense_codec) for r in records]


def trained_codebook(config: CollectionConfig, tokens: np.ndarray, k: int | None) -> Codebook:
    """The residual codec's codebook trained on ``tokens`` (T, d); ``CodecError`` for a codec without one."""
    return train_codebook(config.codec, tokens, k=k)


def store_first_codebook(conn: sqlite3.Connection, book: Codebook, tokens: int, path: Path) -> None:
    """Inside a write transaction: store ``book``; ``CodecError`` when one is stored already (another codebook
    means re-encoding every unit: export and import into a new collection)."""
    if load_codebook(conn, path) is not None:
        raise CodecError(f"{path}: the codebook is trained already (export and import to retrain it)")
    store_codebook(conn, book, tokens, path)
