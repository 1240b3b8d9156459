"""A multi-vector blob damaged without changing its length (issue 26, "Bad input"): every stored blob carries a
checksum (:mod:`colbert.local.checksum`), so one flipped byte makes every read of the codes — the rerank, the
exhaustive scan, ``get_unit``, the export and the recode — an ``IndexFormatError`` naming the index file, the
document, the unit and the remedy, never an answer. Collections written before the checksums keep working
unchecked, and ``vacuum`` (or a recode) writes their checksums."""

from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path

import numpy as np
import pytest

from colbert.catalog import Catalog
from colbert.errors import IndexFormatError
from colbert.local import LocalStore
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig
from colbert.transfer import export_collection
from tests.colbert.test_recode import _fill
from tests.colbert.test_residual_store import DENSE, D, topic_pages

CODECS = ["float16", "int8", "binary", "residual2"]
QUERY = Query(topic_pages(5, 1)[0][:4], np.ones(DENSE, np.float32))
DAMAGED = r"index\.sqlite: the stored multi-vector codes of document 'd1' unit 0 \(row 3\) are damaged \(checksum"
REMEDY = "restore the collection from an export"


def flip_last_byte(db: Path, page_id: int) -> None:
    """XOR the blob's last byte (inside the codes for every codec: the residual codecs' ids come first)."""
    with sqlite3.connect(db) as conn:
        (blob,) = conn.execute("SELECT data FROM multivectors WHERE page_id = ?", (page_id,)).fetchone()
        damaged = bytes(blob[:-1]) + bytes([blob[-1] ^ 0x5A])
        conn.execute("UPDATE multivectors SET data = ? WHERE page_id = ?", (damaged, page_id))


def _strip_checksums(db: Path) -> None:
    """Make the file what an index written before the checksums is: no ``crc`` column."""
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE multivectors DROP COLUMN crc")


def _crcs(db: Path) -> list[tuple[int | None, int]]:
    with sqlite3.connect(db) as conn:
        return [(crc, zlib.crc32(data)) for crc, data in conn.execute("SELECT crc, data FROM multivectors")]


def _hits(store: LocalStore, **options: object) -> list[tuple[str, int, float]]:
    hits = store.search(QUERY, SearchOptions.of(k=6, candidates=6, **options))  # type: ignore[arg-type]
    return [(h.doc_id, h.unit, h.score) for h in hits]


@pytest.mark.parametrize("codec", CODECS)
def test_a_flipped_byte_is_an_error_for_every_read_of_the_codes(tmp_path: Path, codec: str) -> None:
    with Catalog(tmp_path) as catalog:
        _fill(catalog.create("lib", CollectionConfig(DENSE, D, codec=codec)), 3)  # type: ignore[arg-type]
        db = tmp_path / "collections" / "lib" / "index.sqlite"
        assert all(crc == actual for crc, actual in _crcs(db))  # written with every row
        flip_last_byte(db, 3)
        store = catalog.get("lib")
        assert isinstance(store, LocalStore)
        reads = {
            "rerank": lambda: _hits(store),
            "pooled rerank": lambda: _hits(store, first_stage="pooled"),
            "exhaustive": lambda: _hits(store, exhaustive=True),
            "hybrid": lambda: store.search(
                Query(QUERY.multivector, QUERY.dense, "alpha"), SearchOptions.of(k=6, mode="hybrid")
            ),
            "get_unit": lambda: store.get_unit("d1", 0),
            "export": lambda: export_collection(catalog, "lib", tmp_path / "lib.export"),
            "recode": lambda: catalog.recode("lib", "float32"),
        }
        for what, read in reads.items():
            with pytest.raises(IndexFormatError, match=DAMAGED) as caught:
                read()
            assert REMEDY in str(caught.value), what
        assert store.get_unit("d0", 0) is not None  # the other units still read
        assert store.search(Query(None, None, "alpha"), SearchOptions.of(k=3, mode="text"))  # BM25 reads no codes
        assert not (tmp_path / "lib.export").exists()
        assert str(catalog.get("lib").config.codec) == codec  # the recode left the collection as it was


@pytest.mark.parametrize("codec", ["int8", "residual2"])
def test_an_old_collection_without_checksums_searches_and_vacuum_adds_them(tmp_path: Path, codec: str) -> None:
    with Catalog(tmp_path) as catalog:
        store = catalog.create("lib", CollectionConfig(DENSE, D, codec=codec))  # type: ignore[arg-type]
        _fill(store, 3)
        assert isinstance(store, LocalStore)
        before = _hits(store), _hits(store, exhaustive=True), store.get_unit("d1", 0)
    db = tmp_path / "collections" / "lib" / "index.sqlite"
    _strip_checksums(db)
    with Catalog(tmp_path) as catalog:
        store = catalog.get("lib")  # the open adds the column, NULL in every row: read unchecked
        assert isinstance(store, LocalStore)
        assert {crc for crc, _ in _crcs(db)} == {None}
        assert (_hits(store), _hits(store, exhaustive=True)) == before[:2]
        unit = store.get_unit("d1", 0)
        assert unit is not None
        assert before[2] is not None
        np.testing.assert_array_equal(unit.multivector, before[2].multivector)
        catalog.vacuum("lib")
        assert all(crc == actual for crc, actual in _crcs(db))
        assert (_hits(store), _hits(store, exhaustive=True)) == before[:2]
        flip_last_byte(db, 3)
        with pytest.raises(IndexFormatError, match=DAMAGED):
            _hits(store, exhaustive=True)


def test_a_recode_writes_the_checksums_of_an_old_collection(tmp_path: Path) -> None:
    with Catalog(tmp_path) as catalog:
        _fill(catalog.create("lib", CollectionConfig(DENSE, D, codec="binary")), 3)  # type: ignore[arg-type]
    db = tmp_path / "collections" / "lib" / "index.sqlite"
    _strip_checksums(db)
    with Catalog(tmp_path) as catalog:
        catalog.get("lib")
        assert {crc for crc, _ in _crcs(db)} == {None}
        catalog.recode("lib", "int8")
        crcs = _crcs(db)
        assert len(crcs) == 6
        assert all(crc == actual for crc, actual in crcs)


def test_without_its_checksum_the_same_damage_would_be_scored(tmp_path: Path) -> None:
    """Why the checksum is needed: damage that keeps the length still decodes, and the scan scores it."""
    with Catalog(tmp_path) as catalog:
        _fill(catalog.create("lib", CollectionConfig(DENSE, D, codec="int8")), 3)  # type: ignore[arg-type]
    db = tmp_path / "collections" / "lib" / "index.sqlite"
    with Catalog(tmp_path) as catalog:
        store = catalog.get("lib")
        assert isinstance(store, LocalStore)
        exact = {(d, u): s for d, u, s in _hits(store, exhaustive=True)}
        with sqlite3.connect(db) as conn:  # every byte of one blob changed, its length kept, its checksum gone
            conn.execute("UPDATE multivectors SET data = zeroblob(length(data)), crc = NULL WHERE page_id = 3")
        damaged = {(d, u): s for d, u, s in _hits(store, exhaustive=True)}
    assert set(damaged) == set(exact)
    assert damaged[("d1", 0)] != exact[("d1", 0)]
    assert all(damaged[key] == exact[key] for key in exact if key != ("d1", 0))


def test_the_checksum_is_zlibs_crc32_at_every_length() -> None:
    """zlib-ng computes the stored checksum (speed); its values must stay the system zlib's, which every index written
    before computed: every folding width's edges (16/64-byte chunks, their tails, a page's blob) and empty."""
    from colbert.local.checksum import code_crc

    rng = np.random.default_rng(7)
    for n in (0, 1, 3, 15, 16, 17, 63, 64, 65, 127, 255, 256, 4095, 4096, 135_168, 135_171):
        blob = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert code_crc(blob) == zlib.crc32(blob), n
