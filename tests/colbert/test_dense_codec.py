"""The stored dense vector's codec (colbert.local.dense_codec): each codec keeps the direction within its stated
error, the first stage scores exactly the decoded stored rows, the choice is fixed at creation and kept in the
meta table, indexes without the key read as float32, and export/import moves the vectors between codecs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from colbert.catalog import Catalog
from colbert.errors import CodecError, IndexFormatError
from colbert.local import LocalOptions, LocalStore
from colbert.local.dense_codec import DENSE_CODECS, decode_dense, dense_bytes, encode_dense
from colbert.quantize import Codec
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, UnitRecord
from colbert.transfer import export_collection, import_collection

CONFIG = CollectionConfig(dense_dim=64, multivector_dim=16, codec=Codec.FLOAT32)


def _unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d)).astype(np.float32)  # (n, d)
    out: np.ndarray = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


@pytest.mark.parametrize("codec", DENSE_CODECS)
def test_round_trip_within_stated_error(codec: str) -> None:
    rng = np.random.default_rng(1)
    x = _unit_rows(rng, 50, 512)  # (50, 512)
    blob = b"".join(encode_dense(v, codec) for v in x)
    assert len(blob) == 50 * dense_bytes(codec, 512)
    got = decode_dense(blob, 50, 512, codec)  # (50, 512)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    if codec == "float32":
        np.testing.assert_array_equal(got, x)
    elif codec == "int8":  # each component within half a step of 1/127 of the largest, before renormalising
        steps = np.abs(x).max(axis=1, keepdims=True) / 127  # (50, 1)
        raw = np.clip(np.rint(x / steps), -127, 127) * steps
        assert np.all(np.abs(raw - x) <= steps / 2 + 1e-7)
        np.testing.assert_allclose(got, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-6)
        assert float(np.min(np.sum(got * x, axis=1))) > 0.999
    else:  # the signs, as a unit vector (numpy reference)
        np.testing.assert_allclose(got, np.where(x > 0, 1.0, -1.0) / np.sqrt(512), rtol=1e-6)


def test_wrong_sizes_and_names_are_typed_errors() -> None:
    with pytest.raises(CodecError, match="must be 64 bytes"):
        decode_dense(b"\0" * 63, 1, 64, "int8")
    with pytest.raises(CodecError, match="unknown dense codec 'int4'"):
        encode_dense(np.ones(8, np.float32), "int4")
    with pytest.raises(CodecError, match="expected one of"):
        LocalOptions(dense_codec="bf16")


def _fill(store: LocalStore, seed: int = 0, docs: int = 30) -> dict[str, UnitRecord]:
    rng = np.random.default_rng(seed)
    pages = {}
    for j in range(docs):
        page = UnitRecord(0, rng.normal(size=64).astype(np.float32), _unit_rows(rng, 6, 16))
        store.add_document(f"d{j}", [page])
        pages[f"d{j}"] = page
    return pages


@pytest.mark.parametrize("codec", ["int8", "binary"])
def test_first_stage_scores_the_stored_rows_exactly(tmp_path: Path, codec: str) -> None:
    with LocalStore.create(tmp_path / "c", CONFIG, LocalOptions(dense_codec=codec)) as store:
        pages = _fill(store)
        probe = pages["d7"]
        stored = store.get_unit("d7", 0)
        assert stored is not None
        unit = probe.dense / np.linalg.norm(probe.dense)
        np.testing.assert_array_equal(stored.dense, decode_dense(encode_dense(unit, codec), 1, 64, codec)[0])
        query = Query(probe.multivector[:3], probe.dense)
        hits = store.search(query, SearchOptions(k=5, candidates=5))
        # the dense signal of each hit is the cosine of the query with that unit's decoded stored row
        q = probe.dense / np.linalg.norm(probe.dense)
        for hit in hits:
            row = store.get_unit(hit.doc_id, 0)
            assert row is not None
            if "visual" in hit.signals:
                assert hit.signals["visual"].score == pytest.approx(float(row.dense @ q), abs=1e-5)
        # with every page a candidate the rerank equals exhaustive MaxSim, whatever the dense codec
        every = store.search(query, SearchOptions(k=5, candidates=30))
        exact = store.search(query, SearchOptions(k=5, exhaustive=True))
        assert [(h.doc_id, round(h.score, 5)) for h in every] == [(h.doc_id, round(h.score, 5)) for h in exact]


def test_choice_is_fixed_at_creation_and_old_indexes_read_float32(tmp_path: Path) -> None:
    LocalStore.create(tmp_path / "c", CONFIG, LocalOptions(dense_codec="int8")).close()
    with LocalStore.open(tmp_path / "c", options=LocalOptions(dense_codec="binary")) as store:
        assert store.dense_codec == "int8"  # the stored choice wins over the opening handle's option
        _fill(store, docs=3)
    conn = sqlite3.connect(tmp_path / "c" / "index.sqlite")
    assert conn.execute("SELECT length(dense) FROM pages").fetchall() == [(64,)] * 3
    conn.close()
    with LocalStore.create(tmp_path / "old", CONFIG) as store:  # float32, then the key removed: an older index
        _fill(store, docs=3)
    conn = sqlite3.connect(tmp_path / "old" / "index.sqlite")
    with conn:
        conn.execute("DELETE FROM meta WHERE key = 'dense_codec'")
    conn.close()
    with LocalStore.open(tmp_path / "old") as store:
        assert store.dense_codec == "float32"
        assert store.search(Query(np.eye(16, dtype=np.float32)[:2], np.ones(64, np.float32)), SearchOptions(k=2))
    conn = sqlite3.connect(tmp_path / "old" / "index.sqlite")
    with conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('dense_codec', 'int3')")
    conn.close()
    with pytest.raises(IndexFormatError, match="dense_codec='int3'"):
        LocalStore.open(tmp_path / "old")


def test_export_import_moves_dense_between_codecs(tmp_path: Path) -> None:
    source = Catalog(tmp_path / "a", local_options=LocalOptions(dense_codec="int8"))
    store = source.create("src", CONFIG)
    assert isinstance(store, LocalStore)
    _fill(store, docs=4)
    archive = tmp_path / "src.tar"
    export_collection(source, "src", archive)
    for codec in DENSE_CODECS:
        target = Catalog(tmp_path / codec, local_options=LocalOptions(dense_codec=codec))
        import_collection(target, archive, name="dst")
        copy = target.get("dst")
        for j in range(4):
            a, b = store.get_unit(f"d{j}", 0), copy.get_unit(f"d{j}", 0)
            assert a is not None
            assert b is not None
            want = decode_dense(encode_dense(a.dense, codec), 1, 64, codec)[0]  # int8 → codec of the target
            np.testing.assert_allclose(b.dense, want, atol=1e-6)
        target.close()
    source.close()
