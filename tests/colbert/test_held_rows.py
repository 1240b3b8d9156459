"""The first stage holds dense rows in the collection's dense codec and sketches as int8, and scores what it holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from colbert.local import LocalOptions, LocalStore
from colbert.local import dense as _dense
from colbert.local import dense_codec as _codec
from colbert.local import sketch as _sketch
from colbert.local.dense import DenseRows, DenseSnapshot
from colbert.local.dense_codec import DENSE_CODECS, decode_dense, encode_dense, held_cosines, held_dense
from colbert.local.sketch import quantize_sketches, sketch_scores
from colbert.quantize import Codec
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, UnitRecord

DIM = 40  # not a multiple of 8: the binary codec's padding bits must not count


def _unit(a: np.ndarray) -> np.ndarray:
    out: np.ndarray = (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)
    return out


@pytest.mark.parametrize("codec", DENSE_CODECS)
def test_held_rows_score_as_their_decoded_rows(codec: str) -> None:
    """Cosines over the held codes equal the decoded unit rows' (what the first stage scored before), and the
    top-k over every held row is the exhaustive top-k over the decoded ones."""
    rng = np.random.default_rng(0)
    units = _unit(rng.normal(size=(300, DIM)))
    blob = b"".join(encode_dense(u, codec) for u in units)
    codes, norms = held_dense(blob, 300, DIM, codec)
    want_dtype = {"float32": np.float32, "int8": np.int8, "binary": np.uint8}[codec]
    assert codes.dtype == want_dtype
    assert codes.shape == (300, DIM if codec != "binary" else 5)
    decoded = decode_dense(blob, 300, DIM, codec)  # (300, DIM) unit rows
    q = _unit(rng.normal(size=DIM))
    np.testing.assert_allclose(held_cosines(codes, norms, codec, DIM, q), decoded @ q, rtol=1e-5, atol=1e-6)
    ids = np.arange(300) * 3 + 1
    snap = DenseSnapshot.build((900, 0), DIM, codec, _rows(ids, codes, norms))
    exact = ids[np.argsort(-(decoded @ q), kind="stable")[:10]]
    got = snap.top(q, 10)
    np.testing.assert_array_equal(np.sort(got), np.sort(exact))
    np.testing.assert_array_equal(snap.unit_rows(np.arange(300)), decoded)


def test_int8_rows_keep_a_known_nearest_neighbour() -> None:
    """Hand-built: the query is one stored row plus a small perturbation; every codec ranks that row first."""
    rng = np.random.default_rng(1)
    units = _unit(rng.normal(size=(500, DIM)))
    q = _unit(units[123] + 0.01 * rng.normal(size=DIM))
    for codec in DENSE_CODECS:
        codes, norms = held_dense(b"".join(encode_dense(u, codec) for u in units), 500, DIM, codec)
        snap = DenseSnapshot.build((500, 0), DIM, codec, _rows(np.arange(500), codes, norms))
        assert snap.top(q, 1)[0] == 123, codec


def _rows(ids: np.ndarray, codes: np.ndarray, norms: np.ndarray) -> DenseRows:
    m = ids.shape[0]
    return DenseRows(ids, codes, norms, np.empty((m, 0), np.int8), np.empty((m, 0), np.float32))


@pytest.mark.parametrize(("codec", "dense_bytes"), [("float32", 4 * DIM + 4), ("int8", DIM + 4), ("binary", 5 + 4)])
def test_memory_per_page_is_the_held_form(tmp_path: Path, codec: str, dense_bytes: int) -> None:
    config = CollectionConfig(dense_dim=DIM, multivector_dim=16, codec=Codec.FLOAT32)
    store = LocalStore.create(tmp_path / "a", config, LocalOptions(dense_codec=codec, sketch_vectors=4))
    rng = np.random.default_rng(2)
    for j in range(6):
        store.add_document(f"d{j}", [UnitRecord(0, _unit(rng.normal(size=DIM)), _unit(rng.normal(size=(20, 16))))])
    base = store.stats().memory_bytes
    assert base == 6 * (8 + 1 + dense_bytes)  # id, live flag, the held row
    pooled = LocalStore.open(tmp_path / "a", options=LocalOptions(first_stage="pooled"))
    sketches = 6 * 4 * (16 + 4)  # int8 centroids and their float32 scales
    assert pooled.stats().memory_bytes == base - 6 * dense_bytes + sketches  # no dense rows: it never reads them
    q, dq = _unit(rng.normal(size=(3, 16))), _unit(rng.normal(size=DIM))
    assert pooled.search(Query(q, dq), SearchOptions(k=2, candidates=3, first_stage="dense"))  # loads them
    assert pooled.stats().memory_bytes == base + sketches
    store.close()
    pooled.close()


def test_chunked_load_equals_one_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The snapshot read a few rows at a time (as at a million pages) answers as one read at once."""
    config = CollectionConfig(dense_dim=DIM, multivector_dim=16, codec=Codec.FLOAT32)
    store = LocalStore.create(tmp_path / "a", config, LocalOptions(dense_codec="int8", sketch_vectors=3))
    rng = np.random.default_rng(3)
    for j in range(11):
        recs = [UnitRecord(p, _unit(rng.normal(size=DIM)), _unit(rng.normal(size=(12, 16)))) for p in range(2)]
        store.add_document(f"d{j}", recs)
    q = _unit(rng.normal(size=(4, 16)))
    dq = _unit(rng.normal(size=DIM))
    opts = [SearchOptions(k=5, candidates=6, first_stage=s) for s in ("dense", "pooled")]
    whole = LocalStore.open(tmp_path / "a")
    want = [whole.search(Query(q, dq), o) for o in opts]
    monkeypatch.setattr(_dense, "_LOAD_CHUNK", 3)
    chunked = LocalStore.open(tmp_path / "a")
    assert [chunked.search(Query(q, dq), o) for o in opts] == want
    assert chunked.stats().memory_bytes == whole.stats().memory_bytes
    for s in (store, whole, chunked):
        s.close()


@pytest.mark.parametrize("codec", DENSE_CODECS)
def test_a_row_subset_is_gathered_block_by_block(codec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scores over ``rows`` (a filter's or the live pages) equal the scores of those rows copied out first (up to
    float32 summation order: BLAS may order a long and a short product differently)."""
    monkeypatch.setattr(_codec, "_SCORE_BLOCK_ROWS", 7)
    monkeypatch.setattr(_sketch, "_WIDEN_ELEMENTS", 5 * 3 * 16)  # 5 pages of 3 × 16 per block
    rng = np.random.default_rng(4)
    units = _unit(rng.normal(size=(60, DIM)))
    codes, norms = held_dense(b"".join(encode_dense(u, codec) for u in units), 60, DIM, codec)
    rows = rng.permutation(60)[:23]
    q = _unit(rng.normal(size=DIM))
    want = held_cosines(codes[rows], norms[rows], codec, DIM, q)
    np.testing.assert_allclose(held_cosines(codes, norms, codec, DIM, q, rows), want, rtol=1e-6, atol=1e-7)
    sk_codes, sk_scales = quantize_sketches(rng.normal(size=(60, 3, 16)))
    tokens = _unit(rng.normal(size=(4, 16)))
    got = sketch_scores(sk_codes, sk_scales, tokens, None, rows)
    np.testing.assert_array_equal(got, sketch_scores(sk_codes[rows], sk_scales[rows], tokens))
