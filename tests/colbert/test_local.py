"""Embedded-backend specifics: the on-disk format checks, several handles on one index, bounded scans."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from colbert.errors import DimensionMismatchError, IndexFormatError, StoreClosedError
from colbert.local import LocalOptions, LocalStore
from colbert.local.dense import DenseRows, DenseSnapshot
from colbert.quantize import Codec
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, UnitRecord

CONFIG = CollectionConfig(dense_dim=8, multivector_dim=16, codec=Codec.FLOAT32)


def _no_sketch(m: int) -> tuple[np.ndarray, np.ndarray]:
    return np.empty((m, 0), np.int8), np.empty((m, 0), np.float32)


def _page(rng: np.random.Generator, page: int = 0) -> UnitRecord:
    mv = rng.normal(size=(10, 16)).astype(np.float32)  # (10, 16)
    mv /= np.linalg.norm(mv, axis=1, keepdims=True)
    return UnitRecord(unit=page, dense=rng.normal(size=8).astype(np.float32), multivector=mv)


def _set_meta(directory: Path, key: str, value: str) -> None:
    conn = sqlite3.connect(directory / "index.sqlite")
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))
    conn.close()


def test_format_version_and_sizes_are_checked(tmp_path: Path) -> None:
    LocalStore.create(tmp_path / "a", CONFIG).close()
    with pytest.raises(IndexFormatError, match="already exists"):
        LocalStore.create(tmp_path / "a", CONFIG)
    with pytest.raises(DimensionMismatchError, match="dense_dim=8"):
        LocalStore.open(tmp_path / "a", expected=CollectionConfig(dense_dim=128, multivector_dim=16))
    with pytest.raises(IndexFormatError, match="codec"):
        LocalStore.open(tmp_path / "a", expected=CollectionConfig(dense_dim=8, multivector_dim=16))
    _set_meta(tmp_path / "a", "format_version", "99")
    with pytest.raises(IndexFormatError, match="version 99"):
        LocalStore.open(tmp_path / "a")
    (tmp_path / "b").mkdir()
    with pytest.raises(IndexFormatError, match="missing"):
        LocalStore.open(tmp_path / "b")
    (tmp_path / "b" / "index.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(IndexFormatError):
        LocalStore.open(tmp_path / "b")


def test_closed_store_raises(tmp_path: Path) -> None:
    store = LocalStore.create(tmp_path / "a", CONFIG)
    store.close()
    store.close()
    with pytest.raises(StoreClosedError):
        store.add_document("x", [_page(np.random.default_rng(0))])


@pytest.mark.parametrize("retained", [1, 100_000])
def test_second_handle_follows_adds_and_deletes(tmp_path: Path, retained: int) -> None:
    """Handle B's in-memory first stage follows A's writes (incrementally, or by reload once pruned)."""
    rng = np.random.default_rng(1)
    options = LocalOptions(deletions_retained=retained)
    a = LocalStore.create(tmp_path / "a", CONFIG, options)
    b = LocalStore.open(tmp_path / "a", options=options)
    pages = {f"d{i}": _page(rng) for i in range(6)}
    for doc_id, rec in pages.items():
        a.add_document(doc_id, [rec])
    probe = pages["d3"]
    assert b.search(Query(probe.multivector[:3], probe.dense), SearchOptions(k=1))[0].doc_id == "d3"
    for doc_id in ("d3", "d1", "d4"):
        a.delete_document(doc_id)
    a.add_document("d9", [probe])
    hits = b.search(Query(probe.multivector[:3], probe.dense), SearchOptions(k=10))
    assert {h.doc_id for h in hits} == {"d0", "d2", "d5", "d9"}
    assert hits[0].doc_id == "d9"
    a.close()
    b.close()


def test_exhaustive_scan_in_small_blocks_matches_one_block(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    small = LocalStore.create(tmp_path / "s", CONFIG, LocalOptions(scan_block_pages=2))
    big = LocalStore.create(tmp_path / "b", CONFIG, LocalOptions(scan_block_pages=1000))
    for i in range(9):
        recs = [_page(rng, p) for p in range(2)]
        small.add_document(f"d{i}", recs)
        big.add_document(f"d{i}", recs)
    q = rng.normal(size=(5, 16)).astype(np.float32)
    a = small.search(Query(q, None), SearchOptions(k=7))
    b = big.search(Query(q, None), SearchOptions(k=7))
    assert [(h.doc_id, h.unit, h.score) for h in a] == [(h.doc_id, h.unit, h.score) for h in b]
    small.close()
    big.close()


def test_dense_snapshot_appends_deletes_and_compacts() -> None:
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(3000, 4)).astype(np.float32)  # (3000, 4)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)

    def held(lo: int, hi: int) -> DenseRows:
        return DenseRows(np.arange(lo, hi), rows[lo:hi], np.ones(hi - lo, np.float32), *_no_sketch(hi - lo))

    snap = DenseSnapshot.build((10, 0), 4, "float32", held(0, 10))
    old = snap
    snap = snap.apply((2000, 0), held(10, 2000), [])
    assert snap.n == 2000
    assert old.n == 10  # the older snapshot is untouched
    np.testing.assert_array_equal(old.unit_rows(np.arange(10)), rows[:10])
    snap = snap.apply((2000, 1), held(0, 0), range(0, 1500))
    assert snap.n_alive == 500  # more than half dead: compacted
    assert snap.n == 500
    np.testing.assert_array_equal(snap.ids, np.arange(1500, 2000))
    q = rows[1700]
    assert snap.top(q, 1)[0] == 1700
    assert set(snap.top(q, 5, snap.rows_of(np.array([1600, 1601, 5])))) == {1600, 1601}
