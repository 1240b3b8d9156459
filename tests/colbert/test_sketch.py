"""The pooled first stage: page sketches (k-means centroids), their approximate MaxSim, and search through it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from colbert.errors import IndexFormatError, InvalidQueryError, StoreClosedError
from colbert.local import LocalOptions, LocalStore
from colbert.local import sketch as _sketch
from colbert.local.dense import DenseRows, DenseSnapshot
from colbert.local.sketch import page_sketch, pool_query, quantize_sketches, sketch_scores, widen_sketches
from colbert.quantize import Codec
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, UnitRecord

D = 16
CONFIG = CollectionConfig(dense_dim=D, multivector_dim=D, codec=Codec.FLOAT32)


def _unit(a: np.ndarray) -> np.ndarray:
    out: np.ndarray = (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)
    return out


def _clustered_page(rng: np.random.Generator, centers: np.ndarray, counts: list[int], page: int = 0) -> UnitRecord:
    """Tokens around ``centers`` (c, D) with ``counts[i]`` tokens near center i."""
    rows = [_unit(centers[i] + 0.3 * rng.normal(size=(n, D))) for i, n in enumerate(counts) if n]
    mv = np.concatenate(rows)[rng.permutation(sum(counts))]  # (n, D)
    return UnitRecord(unit=page, dense=_unit(mv.mean(axis=0)), multivector=mv)


def test_sketch_finds_clusters_and_is_deterministic() -> None:
    rng = np.random.default_rng(0)
    centers = _unit(rng.normal(size=(4, D)))
    page = _clustered_page(rng, centers, [40, 30, 20, 10])
    a = page_sketch(page.multivector, 4)
    assert a.shape == (4, D)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, page_sketch(page.multivector, 4))
    best = (a @ centers.T).max(axis=0)  # (4,) each true center has a centroid close to it
    assert np.all(best > 0.9), best
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)  # unit tokens: unit centroids


def test_sketch_keeps_token_norms_and_short_pages() -> None:
    rng = np.random.default_rng(1)
    x = 3.0 * _unit(rng.normal(size=(50, D)))
    np.testing.assert_allclose(np.linalg.norm(page_sketch(x, 5), axis=1), 3.0, rtol=1e-5)
    few = _unit(rng.normal(size=(3, D)))
    s = page_sketch(few, 8)  # fewer tokens than centroids: the tokens, repeated
    assert s.shape == (8, D)
    np.testing.assert_array_equal(s[:3], few)
    np.testing.assert_array_equal(s[3:6], few)
    q = _unit(rng.normal(size=(4, D)))
    exact = (q @ few.T).max(axis=1).sum()
    assert sketch_scores(*quantize_sketches(s[None]), q)[0] == pytest.approx(exact, abs=0.05)


def test_int8_sketches_round_trip_within_half_a_step() -> None:
    rng = np.random.default_rng(8)
    sketches = rng.normal(size=(5, 3, D)).astype(np.float32) * np.array([0.1, 1.0, 30.0])[None, :, None]
    sketches[2, 1] = 0.0  # an all-zero centroid: scale 0, decodes to zeros
    codes, scales = quantize_sketches(sketches)
    assert codes.dtype == np.int8
    assert codes.shape == (5, 3 * D)
    assert scales.dtype == np.float32
    assert scales.shape == (5, 3)
    np.testing.assert_allclose(scales, np.abs(sketches).max(axis=2) / 127, rtol=1e-6)
    back = widen_sketches(codes, scales)  # (5, 3, D)
    assert np.all(np.abs(back - sketches) <= 0.5 * scales[:, :, None] * (1 + 1e-5))
    np.testing.assert_array_equal(back[2, 1], 0.0)


@pytest.mark.parametrize("block", [1, 37, 1 << 21])
def test_sketch_scores_equal_maxsim_against_centroids(monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    monkeypatch.setattr(_sketch, "_BLOCK_ELEMENTS", block)
    rng = np.random.default_rng(2)
    k, pages = 6, 23
    sketches = _unit(rng.normal(size=(pages, k, D)))  # (P, k, D)
    q = _unit(rng.normal(size=(5, D)))  # (Lq, D)
    want = np.einsum("qd,pkd->pqk", q, sketches).max(axis=2).sum(axis=1)  # (P,)
    codes, scales = quantize_sketches(sketches)
    got = sketch_scores(codes, scales, q)
    assert got.shape == (pages,)
    held = widen_sketches(codes, scales)  # what is scored: exactly MaxSim against the held centroids
    np.testing.assert_allclose(got, np.einsum("qd,pkd->pqk", q, held).max(axis=2).sum(axis=1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got, want, atol=0.05)  # int8 rounding of 5 similarities
    assert np.argmax(got) == np.argmax(want) or abs(np.sort(want)[-1] - np.sort(want)[-2]) < 0.05


def test_pooled_query_weights_its_groups_by_size() -> None:
    rng = np.random.default_rng(7)
    centers = _unit(rng.normal(size=(2, D)))
    q = np.concatenate(
        [_unit(centers[0] + 0.05 * rng.normal(size=(6, D))), _unit(centers[1] + 0.05 * rng.normal(size=(2, D)))]
    )
    groups, weights = pool_query(q, 2)
    assert groups.shape == (2, D)
    assert sorted(weights.tolist()) == [2.0, 6.0]
    small, ones = pool_query(q[:2], 4)  # no more tokens than groups: unchanged
    np.testing.assert_array_equal(small, q[:2])
    np.testing.assert_array_equal(ones, [1.0, 1.0])
    sketches = _unit(rng.normal(size=(9, 3, D)))  # (P, k, D)
    held = quantize_sketches(sketches)
    exact = sketch_scores(*held, q)
    pooled = sketch_scores(*held, groups, weights)
    np.testing.assert_allclose(pooled, exact, atol=0.5)  # tight groups: close to the per-token sum
    want = np.einsum("gd,pkd->pgk", groups, sketches).max(axis=2) @ weights  # (P,)
    np.testing.assert_allclose(pooled, want, atol=0.1)


def test_snapshot_keeps_sketches_through_appends_and_compaction() -> None:
    rng = np.random.default_rng(3)
    k = 2
    dense = _unit(rng.normal(size=(3000, 4)))
    sketches = _unit(rng.normal(size=(3000, k, D)))  # (3000, k, D)
    codes, scales = quantize_sketches(sketches)

    def held(lo: int, hi: int) -> DenseRows:
        return DenseRows(np.arange(lo, hi), dense[lo:hi], np.ones(hi - lo, np.float32), codes[lo:hi], scales[lo:hi])

    snap = DenseSnapshot.build((10, 0), 4, "float32", held(0, 10))
    snap = snap.apply((2000, 0), held(10, 2000), [])
    snap = snap.apply((2000, 1), held(0, 0), range(0, 1500))
    assert snap.n == 500  # compacted
    np.testing.assert_array_equal(snap.rows.sketch, codes[1500:2000])
    np.testing.assert_array_equal(snap.rows.scales, scales[1500:2000])
    q = sketches[1700]  # (k, D): its own page is the best by approximate MaxSim
    assert snap.top_pooled(q, 1)[0] == 1700
    assert set(snap.top_pooled(q, 5, snap.rows_of(np.array([1600, 1601, 5])))) == {1600, 1601}
    bare = DenseRows(np.arange(1), dense[:1], np.ones(1, np.float32), codes[:1, :0], scales[:1, :0])
    with pytest.raises(ValueError, match="no sketches"):
        DenseSnapshot.build((1, 0), 4, "float32", bare).top_pooled(q, 1)


def test_best_returns_the_scores_it_ranked_by() -> None:
    """``best`` / ``best_pooled`` hand back the cosines / sketch scores of the ids they chose (the first stage's
    reported score), equal to scoring those rows again, and the ids of ``top`` / ``top_pooled``."""
    rng = np.random.default_rng(5)
    n, k = 400, 3
    dense = _unit(rng.normal(size=(n, 4)))
    codes, scales = quantize_sketches(_unit(rng.normal(size=(n, k, D))))
    held = DenseRows(np.arange(n) * 2, dense, np.ones(n, np.float32), codes, scales)
    snap = DenseSnapshot.build((2 * n, 0), 4, "float32", held)
    snap = snap.apply((2 * n, 1), held.take(np.arange(0)), [6, 8])  # two units deleted
    q, qd = _unit(rng.normal(size=(5, D))), _unit(rng.normal(size=4))
    for rows in (None, snap.rows_of(np.arange(0, 2 * n, 6))):
        ids, cos = snap.best(qd, 20, rows)
        np.testing.assert_array_equal(ids, snap.top(qd, 20, rows))
        np.testing.assert_allclose(cos, snap.cosines(qd, snap.rows_of(ids)), rtol=0, atol=1e-6)
        assert 6 not in ids
        assert 8 not in ids
        assert np.all(np.diff(cos) <= 0)
        ids, pooled = snap.best_pooled(q, 20, rows)
        np.testing.assert_array_equal(ids, snap.top_pooled(q, 20, rows))
        np.testing.assert_allclose(pooled, snap.pooled_scores(q, snap.rows_of(ids)), rtol=0, atol=1e-5)
        assert np.all(np.diff(pooled) <= 0)


def _corpus(store: LocalStore, rng: np.random.Generator, docs: int = 15) -> dict[tuple[str, int], UnitRecord]:
    centers = _unit(rng.normal(size=(10, D)))
    pages: dict[tuple[str, int], UnitRecord] = {}
    for j in range(docs):
        recs = []
        for p in range(2):
            counts = [0] * 10
            for t in rng.choice(10, 3, replace=False):
                counts[t] = int(rng.integers(2, 25))
            recs.append(_clustered_page(rng, centers, counts, p))
        store.add_document(f"d{j}", recs, {"even": j % 2 == 0, "j": j})
        pages.update({(f"d{j}", r.unit): r for r in recs})
    return pages


def _exact(q: np.ndarray, pages: dict[tuple[str, int], UnitRecord]) -> list[tuple[str, int]]:
    scores = {key: float((q @ rec.multivector.T).max(axis=1).sum()) for key, rec in pages.items()}
    return sorted(scores, key=lambda key: -scores[key])


def test_pooled_search_is_exact_over_its_candidates(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    store = LocalStore.create(tmp_path / "a", CONFIG, LocalOptions(sketch_vectors=4))
    pages = _corpus(store, rng)
    for key in [("d3", 0), ("d8", 1), ("d11", 0)]:
        q = pages[key].multivector[:6]
        everything = store.search(Query(q, None), SearchOptions(k=5, candidates=len(pages), first_stage="pooled"))
        assert [(h.doc_id, h.unit) for h in everything] == _exact(q, pages)[:5]
        narrow = store.search(Query(q, None), SearchOptions(k=5, candidates=8, first_stage="pooled"))
        assert (narrow[0].doc_id, narrow[0].unit) == key  # the source page survives an 8-candidate first stage
        exhaustive = store.search(Query(q, None), SearchOptions(k=5, exhaustive=True, first_stage="pooled"))
        assert [(h.doc_id, h.unit) for h in exhaustive] == _exact(q, pages)[:5]
    store.close()


def test_pooled_candidates_come_from_the_sketch_ranking(tmp_path: Path) -> None:
    """With candidates=k the result is the sketch top-k (reordered exactly), not the dense or exact top-k."""
    rng = np.random.default_rng(5)
    store = LocalStore.create(tmp_path / "a", CONFIG, LocalOptions(sketch_vectors=3))
    pages = _corpus(store, rng)
    q = pages[("d6", 1)].multivector[:5]
    keys = list(pages)
    sketches = np.stack([page_sketch(pages[key].multivector, 3) for key in keys])  # (P, 3, D)
    approx = sketch_scores(*quantize_sketches(sketches.astype(np.float16)), q)  # stored float16, held int8
    want = {keys[i] for i in np.argsort(-approx, kind="stable")[:4]}
    hits = store.search(Query(q, None), SearchOptions(k=4, candidates=4, first_stage="pooled"))
    assert {(h.doc_id, h.unit) for h in hits} == want
    store.close()


def test_sketches_are_held_only_once_a_pooled_search_asks(tmp_path: Path) -> None:
    """A handle whose default first stage is dense keeps no sketches in memory (1,056 bytes a page at the default
    8 × 128) until the first pooled search, which then answers as a handle opened for pooled search (which holds
    no dense rows)."""
    rng = np.random.default_rng(8)
    LocalStore.create(tmp_path / "a", CONFIG, LocalOptions(sketch_vectors=3)).close()
    plain = LocalStore.open(tmp_path / "a")
    pages = _corpus(plain, rng)
    pooled = LocalStore.open(tmp_path / "a", options=LocalOptions(first_stage="pooled"))
    sketch_bytes = len(pages) * 3 * (D + 4)  # int8 centroids and a float32 scale each
    dense_bytes = len(pages) * (4 * D + 4)  # float32 rows and their norms
    assert pooled.stats().memory_bytes - plain.stats().memory_bytes == sketch_bytes - dense_bytes
    q = pages[("d3", 1)].multivector[:5]
    opts = SearchOptions(k=4, candidates=4, first_stage="pooled")
    assert plain.search(Query(q, None), opts) == pooled.search(Query(q, None), opts)
    assert plain.stats().memory_bytes == pooled.stats().memory_bytes + dense_bytes  # plain holds both now
    plain.add_document("late", [pages[("d3", 1)]])  # kept in step with the sketches from now on
    assert {h.doc_id for h in plain.search(Query(q, None), opts)[:2]} == {"d3", "late"}
    for s in (plain, pooled):
        s.close()


def test_pooled_search_honours_filters_prefetch_and_deletes(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    store = LocalStore.create(tmp_path / "a", CONFIG, LocalOptions(sketch_vectors=4))
    other = LocalStore.open(tmp_path / "a")
    pages = _corpus(store, rng)
    q = pages[("d4", 0)].multivector[:6]
    hits = other.search(
        Query(q, None), SearchOptions.of(k=6, candidates=6, first_stage="pooled", filter={"even": False})
    )
    assert len(hits) == 6
    assert all(h.metadata["even"] is False for h in hits)
    # prefetch = candidates: the candidates are exactly the dense top-k, as with the dense first stage
    far = -pages[("d4", 0)].dense
    dense_hits = other.search(Query(q, far), SearchOptions(k=3, candidates=3))
    prefetched = other.search(Query(q, far), SearchOptions(k=3, candidates=3, first_stage="pooled", prefetch=3))
    assert [(h.doc_id, h.unit) for h in prefetched] == [(h.doc_id, h.unit) for h in dense_hits]
    assert other.search(Query(q, None), SearchOptions(k=1, first_stage="pooled"))[0].doc_id == "d4"
    store.delete_document("d4")
    store.add_document("new", [pages[("d4", 0)]])
    top = other.search(
        Query(q, None), SearchOptions(k=3, first_stage="pooled")
    )  # the second handle follows: d4 gone, "new" found
    assert top[0].doc_id == "new"
    assert "d4" not in {h.doc_id for h in top}
    grouped = other.search(
        Query(q, None),
        SearchOptions.of(k=6, candidates=6, first_stage="pooled", query_groups=2, filter={"even": False}),
    )
    assert grouped[0].doc_id == hits[0].doc_id
    assert all(h.metadata["even"] is False for h in grouped)
    bads = ({"first_stage": "sparse"}, {"first_stage": "pooled", "prefetch": 2}, {"query_groups": 0})
    for bad in bads:
        with pytest.raises(InvalidQueryError):
            other.search(Query(q, None), SearchOptions.of(k=3, candidates=5, **bad))  # type: ignore[arg-type]
    reopened = LocalStore.open(tmp_path / "a", options=LocalOptions(first_stage="pooled"))
    assert reopened.sketch_vectors == 4  # the index's own, not the default
    sketch_ranked = reopened.search(
        Query(q, far), SearchOptions(k=3, candidates=3)
    )  # pooled by default: query_dense is not used
    assert [h.doc_id for h in sketch_ranked] == [
        h.doc_id for h in other.search(Query(q, far), SearchOptions(k=3, candidates=3, first_stage="pooled"))
    ]
    assert [h.doc_id for h in sketch_ranked] != [
        h.doc_id for h in other.search(Query(q, far), SearchOptions(k=3, candidates=3))
    ]
    with pytest.raises(ValueError, match="first_stage"):
        LocalOptions(first_stage="sparse")
    assert reopened.stats().memory_bytes == 29 * (8 + 1 + 4 * (D + 4))  # ids, live mask, sketches: no dense rows
    assert reopened.search(Query(q, None), SearchOptions(k=1, first_stage="pooled"))[0].doc_id == "new"
    for s in (store, other, reopened):
        s.close()


def test_version_1_index_is_refused_with_a_rebuild_hint(tmp_path: Path) -> None:
    LocalStore.create(tmp_path / "a", CONFIG).close()
    conn = sqlite3.connect(tmp_path / "a" / "index.sqlite")
    with conn:
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'format_version'")
    conn.close()
    with pytest.raises(IndexFormatError, match=r"version 1\b.*rebuild"):
        LocalStore.open(tmp_path / "a")


@pytest.mark.parametrize("first_stage", ["dense", "pooled"])
def test_concurrent_candidate_reads_equal_one_connection(tmp_path: Path, first_stage: str) -> None:
    rng = np.random.default_rng(8)
    many = LocalStore.create(tmp_path / "a", CONFIG, LocalOptions(sketch_vectors=4, read_threads=4))
    pages = _corpus(many, rng, docs=20)  # 40 pages: 40 candidates are read by 4 connections
    one = LocalStore.open(tmp_path / "a", options=LocalOptions(read_threads=1))
    for key in [("d2", 0), ("d17", 1)]:
        q, dense = pages[key].multivector[:6], pages[key].dense
        a = many.search(Query(q, dense), SearchOptions(k=8, candidates=40, first_stage=first_stage))
        b = one.search(Query(q, dense), SearchOptions(k=8, candidates=40, first_stage=first_stage))
        assert [(h.doc_id, h.unit, h.score) for h in a] == [(h.doc_id, h.unit, h.score) for h in b]
        assert [(h.doc_id, h.unit) for h in a] == _exact(q, pages)[:8]
    assert many._readers is not None  # the concurrent path was taken
    many.close()
    assert many._readers is None
    with pytest.raises(StoreClosedError):
        many.search(Query(q, dense), SearchOptions(k=8, candidates=40, first_stage=first_stage))
    one.close()


def test_int8_block_decode_scores_like_page_decode(tmp_path: Path) -> None:
    """The rerank decodes int8 blocks at once; scores must equal MaxSim over ``get_unit``'s decoded vectors."""
    rng = np.random.default_rng(9)
    config = CollectionConfig(dense_dim=D, multivector_dim=D, codec=Codec.INT8)
    store = LocalStore.create(tmp_path / "a", config, LocalOptions(sketch_vectors=3, scan_block_pages=4))
    pages = _corpus(store, rng, docs=6)
    stored = {key: store.get_unit(*key) for key in pages}
    q = pages[("d1", 1)].multivector[:5]
    want = sorted(
        ((key, float((q @ rec.multivector.T).max(axis=1).sum())) for key, rec in stored.items() if rec is not None),
        key=lambda t: -t[1],
    )[:6]
    for hits in (
        store.search(Query(q, None), SearchOptions(k=6)),
        store.search(Query(q, None), SearchOptions(k=6, candidates=12, first_stage="pooled")),
    ):
        assert [(h.doc_id, h.unit) for h in hits] == [w[0] for w in want]
        np.testing.assert_allclose([h.score for h in hits], [w[1] for w in want], rtol=1e-5)
    store.close()
