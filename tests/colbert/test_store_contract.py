"""One behavioural contract, run over every Store backend.

Backends: the embedded SQLite store, qdrant-client's local mode (``QdrantClient(":memory:")``), and a real
Qdrant server when ``QDRANT_URL`` is set (:mod:`tests.colbert.store_backends`). Expected rankings come from a
naive MaxSim loop written there.
"""

from __future__ import annotations

import numpy as np
import pytest

from colbert.errors import (
    DimensionMismatchError,
    DocumentExistsError,
    InvalidDocumentError,
    InvalidFilterError,
    InvalidQueryError,
    UnknownFilterKeyError,
)
from colbert.quantize import CODEBOOK_FREE, Codec
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, UnitRecord
from tests.colbert.store_backends import (
    DENSE,
    F32,
    Backend,
    D,
    _unit,
    expected_top,
    fill,
    make_page,
    naive_maxsim,
)


def test_add_get_list_count(backend: Backend) -> None:
    store = backend.make(F32)
    rng = np.random.default_rng(0)
    assert store.count() == (0, 0)
    assert store.get_document("doc-0") is None
    pages = fill(store, rng, docs=5)
    assert store.count() == (5, len(pages))
    info = store.get_document("doc-2")
    assert info is not None
    assert (info.doc_id, info.num_units, info.metadata) == ("doc-2", 3, {"lang": "de", "j": 2, "odd": False})
    listed = store.list_documents()
    assert [d.doc_id for d in listed] == [f"doc-{j}" for j in range(5)]
    assert [d.doc_id for d in store.list_documents(offset=1, limit=2)] == ["doc-1", "doc-2"]
    assert store.list_documents(offset=10) == []


def test_get_page_returns_stored_vectors(backend: Backend) -> None:
    store = backend.make(F32)
    rng = np.random.default_rng(1)
    pages = fill(store, rng, docs=3)
    got = store.get_unit("doc-2", 1)
    assert got is not None
    want = pages[("doc-2", 1)]
    np.testing.assert_allclose(got.multivector, want.multivector, atol=1e-6)
    np.testing.assert_allclose(got.dense, want.dense / np.linalg.norm(want.dense), atol=1e-6)
    assert dict(got.metadata) == {"rows": want.multivector.shape[0]}
    assert store.get_unit("doc-2", 7) is None
    assert store.get_unit("nope", 0) is None


@pytest.mark.parametrize("mode", ["rerank-all", "exhaustive", "no-dense"])
def test_search_equals_naive_maxsim(backend: Backend, mode: str) -> None:
    store = backend.make(F32)
    rng = np.random.default_rng(2)
    pages = fill(store, rng)
    for trial in range(3):
        key = list(pages)[trial * 5]
        q = pages[key].multivector[: 4 + trial]  # (Lq, D) a query drawn from one page
        if mode == "rerank-all":  # a first stage that keeps every page must not change the ranking
            hits = store.search(Query(q, _unit(rng.normal(size=DENSE))), SearchOptions(k=5, candidates=len(pages)))
        else:
            hits = store.search(
                Query(q, None if mode == "no-dense" else _unit(rng.normal(size=DENSE))),
                SearchOptions(k=5, exhaustive=mode == "exhaustive"),
            )
        want = expected_top(q, pages, 5)
        assert [(h.doc_id, h.unit) for h in hits] == [w[0] for w in want]
        np.testing.assert_allclose([h.score for h in hits], [w[1] for w in want], rtol=1e-5)
        assert hits[0].doc_id == key[0]
        assert hits[0].metadata["j"] == int(key[0].split("-")[1])


def test_first_stage_limits_rerank_to_dense_candidates(backend: Backend) -> None:
    store = backend.make(F32)
    rng = np.random.default_rng(3)
    pages = fill(store, rng)
    target = pages[("doc-5", 1)]
    q = target.multivector[:3]
    hits = store.search(Query(q, target.dense), SearchOptions(k=3, candidates=3))
    dense_top = sorted(pages, key=lambda key: -float(_unit(pages[key].dense) @ _unit(target.dense)))[:3]
    assert {(h.doc_id, h.unit) for h in hits} == set(dense_top)
    want = sorted(((key, naive_maxsim(q, pages[key].multivector)) for key in dense_top), key=lambda t: -t[1])
    assert [(h.doc_id, h.unit) for h in hits] == [w[0] for w in want]


def test_selective_filter_still_returns_k(backend: Backend) -> None:
    store = backend.make(F32)
    rng = np.random.default_rng(4)
    pages = fill(store, rng, docs=20)
    match = {key: rec for key, rec in pages.items() if key[0] in ("doc-4", "doc-8")}  # lang=en, j even, 3+3 pages
    q = pages[("doc-1", 0)].multivector[:4]
    far = -pages[("doc-4", 0)].dense  # a dense query that ranks the matching pages last overall
    hits = store.search(Query(q, far), SearchOptions.of(k=4, candidates=4, filter={"lang": "en", "odd": False, "j": 4}))
    assert {h.doc_id for h in hits} == {"doc-4"}
    assert len(hits) == 2  # doc-4 has 2 pages (1 + 4 % 3)
    hits = store.search(Query(q, far), SearchOptions.of(k=4, candidates=4, filter={"lang": "en", "odd": False}))
    en = {key: rec for key, rec in pages.items() if int(key[0].split("-")[1]) % 4 == 0}
    assert len(hits) == 4
    assert all(h.metadata["lang"] == "en" for h in hits)
    hits = store.search(Query(q, None), SearchOptions.of(k=4, filter={"lang": "en"}))
    assert [(h.doc_id, h.unit) for h in hits] == [w[0] for w in expected_top(q, en, 4)]
    assert len(match) == 5
    assert store.search(Query(q, far), SearchOptions.of(k=3, filter={"lang": "fr"})) == []
    assert store.search(Query(q, far), SearchOptions.of(k=3, filter={"odd": 1})) == []  # 1 is not true


def test_replace_and_delete_are_whole_documents(backend: Backend) -> None:
    store = backend.make(F32)
    rng = np.random.default_rng(5)
    pages = fill(store, rng, docs=6)
    with pytest.raises(DocumentExistsError):
        store.add_document("doc-2", [make_page(rng, 0)])
    new = [make_page(rng, 0), make_page(rng, 9)]
    info = store.add_document("doc-2", new, {"v": 2}, replace=True)
    assert (info.num_units, info.metadata) == (2, {"v": 2})
    assert store.count() == (6, len(pages) - 3 + 2)
    assert store.get_unit("doc-2", 1) is None
    got = store.get_unit("doc-2", 9)
    assert got is not None
    np.testing.assert_allclose(got.multivector, new[1].multivector, atol=1e-6)
    old_q = pages[("doc-2", 1)].multivector[:3]
    hits = store.search(Query(old_q, None), SearchOptions(k=20))
    assert ("doc-2", 1) not in {(h.doc_id, h.unit) for h in hits}
    assert [d.doc_id for d in store.list_documents()][-1] == "doc-2"
    assert store.delete_document("doc-2") is True
    assert store.delete_document("doc-2") is False
    assert store.get_document("doc-2") is None
    assert store.count() == (5, len(pages) - 3)
    hits = store.search(Query(new[1].multivector[:3], new[1].dense), SearchOptions(k=20, candidates=20))
    assert all(h.doc_id != "doc-2" for h in hits)


def test_reopen_keeps_data_and_checks_sizes(backend: Backend) -> None:
    store = backend.make(F32)
    rng = np.random.default_rng(6)
    pages = fill(store, rng, docs=4)
    again = backend.reopen(store)
    assert again.config == F32
    assert again.count() == (4, len(pages))
    q = pages[("doc-3", 0)].multivector[:3]
    assert again.search(Query(q, pages[("doc-3", 0)].dense), SearchOptions(k=1))[0].doc_id == "doc-3"
    with pytest.raises(DimensionMismatchError, match="dense_dim"):
        backend.reopen(again, expected=CollectionConfig(dense_dim=DENSE + 1, multivector_dim=D))


@pytest.mark.parametrize("codec", CODEBOOK_FREE)
def test_codecs_and_pooling(backend: Backend, codec: Codec) -> None:
    config = CollectionConfig(dense_dim=DENSE, multivector_dim=D, codec=codec, pool_factor=2)
    store = backend.make(config)
    rng = np.random.default_rng(7)
    recs = [make_page(rng, p, n=24) for p in range(3)]
    store.add_document("a", recs)
    stored = [store.get_unit("a", p) for p in range(3)]
    assert all(s is not None and s.multivector.shape[0] < 24 for s in stored)
    q = recs[1].multivector[:5]
    hits = store.search(Query(q, None), SearchOptions(k=3))
    want = sorted(((p, naive_maxsim(q, s.multivector)) for p, s in enumerate(stored) if s), key=lambda t: -t[1])
    assert [h.unit for h in hits] == [w[0] for w in want]
    tol = 1e-5 if backend.kind != "qdrant-server" or codec == Codec.FLOAT32 else 2e-2
    np.testing.assert_allclose([h.score for h in hits], [w[1] for w in want], rtol=tol, atol=tol)


def test_bad_input_is_typed(backend: Backend) -> None:
    store = backend.make(F32)
    rng = np.random.default_rng(8)
    good = make_page(rng, 0)
    with pytest.raises(InvalidDocumentError, match="units"):
        store.add_document("x", [])
    with pytest.raises(InvalidDocumentError, match="twice"):
        store.add_document("x", [good, good])
    with pytest.raises(DimensionMismatchError, match=r"\(n, 16\)"):
        store.add_document("x", [UnitRecord(0, good.dense, np.ones((3, D + 1), np.float32))])
    with pytest.raises(DimensionMismatchError, match=r"\(12,\)"):
        store.add_document("x", [UnitRecord(0, np.ones(5, np.float32), good.multivector)])
    with pytest.raises(InvalidDocumentError, match="NaN"):
        store.add_document("x", [UnitRecord(0, good.dense, np.full((2, D), np.nan, np.float32))])
    with pytest.raises(InvalidDocumentError, match="doc_id"):
        store.add_document("", [good])
    with pytest.raises(InvalidDocumentError, match="JSON"):
        store.add_document("x", [good], {"bad": object()})
    assert store.count() == (0, 0)
    store.add_document("x", [good])
    q = good.multivector[:2]
    with pytest.raises(InvalidQueryError, match="k must"):
        store.search(Query(q, good.dense), SearchOptions(k=0))
    with pytest.raises(InvalidQueryError, match="candidates"):
        store.search(Query(q, good.dense), SearchOptions(k=10, candidates=5))
    with pytest.raises(DimensionMismatchError):
        store.search(Query(np.ones((2, D + 1), np.float32), good.dense), SearchOptions())
    with pytest.raises(DimensionMismatchError):
        store.search(Query(q, np.ones(DENSE + 1, np.float32)), SearchOptions())
    with pytest.raises(InvalidFilterError, match="str, int or bool"):
        store.search(Query(q, good.dense), SearchOptions.of(filter={"lang": 1.5}))
    with pytest.raises(InvalidFilterError, match="key"):
        store.search(Query(q, good.dense), SearchOptions.of(filter={"a.b": "x"}))
    with pytest.raises(InvalidQueryError, match="limit"):
        store.list_documents(limit=0)


def test_delete_by_filter_refuses_keys_no_document_has_and_can_dry_run(backend: Backend) -> None:
    """A typo'd key under ``$ne``/``$exists: false`` matches every document by absence: refused, nothing
    deleted. ``dry_run`` answers what would go and deletes nothing."""
    store = backend.make(F32)
    rng = np.random.default_rng(21)
    for i, meta in enumerate([{"lang": "en", "tag": None}, {"lang": "de"}, {"lang": "en", "n": 3}]):
        store.add_document(f"d{i}", [make_page(rng, 0)], meta)
    for flt in ({"no_such_key": {"$ne": 1}}, {"no_such_key": {"$exists": False}}, {"lang": "en", "tag": {"$ne": 1}}):
        with pytest.raises(UnknownFilterKeyError, match="no document of this collection has the metadata key"):
            store.delete_documents(flt)
        with pytest.raises(UnknownFilterKeyError):
            store.delete_documents(flt, dry_run=True)
    assert store.count() == (3, 3)
    assert store.delete_documents({"lang": "en"}, dry_run=True) == ["d0", "d2"]
    assert store.count() == (3, 3)
    assert store.delete_documents({"n": {"$exists": False}}, dry_run=True) == ["d0", "d1"]  # a key one doc has
    assert store.delete_documents({"lang": {"$ne": "de"}}) == ["d0", "d2"]
    assert [d.doc_id for d in store.list_documents()] == ["d1"]
