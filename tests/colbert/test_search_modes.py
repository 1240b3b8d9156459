"""Search modes over both backends (one contract): BM25 text mode, hybrid fusion checked against a hand
computation (BM25 ranks + naive MaxSim ranks -> RRF), filters inside BM25, units without text, replace/delete
keeping the full-text index in step, and hostile query text."""

from __future__ import annotations

import numpy as np
import pytest

from colbert.errors import InvalidFilterError, InvalidQueryError
from colbert.hybrid import Fusion, fuse
from colbert.search import Query, SearchOptions
from colbert.store import Store, StoreLimits, UnitRecord
from tests.colbert.store_backends import DENSE, F32, Backend, _unit, naive_maxsim

TEXTS = {
    "inv": "Invoice X7200B total due by March",
    "rev": "Quarterly revenue rose in the north region",
    "err": "Error E4711 disk quota exceeded on the north server",
    "code": "def parse_page_selection(spec): return pages",
    "img": None,  # an image page: no text layer
}


def _filled(backend: Backend) -> tuple[Store, dict[str, UnitRecord]]:
    store = backend.make(F32)
    rng = np.random.default_rng(11)
    units = {}
    for i, (doc, text) in enumerate(TEXTS.items()):
        unit = UnitRecord(0, _unit(rng.normal(size=DENSE)), _unit(rng.normal(size=(8 + i, 16))), text=text)
        store.add_document(doc, [unit], {"group": "a" if i % 2 == 0 else "b", "i": i})
        units[doc] = unit
    return store, units


def test_text_mode_ranks_by_bm25(backend: Backend) -> None:
    store, _ = _filled(backend)
    hits = store.search(Query(text="north region"), SearchOptions(k=10, mode="text"))
    assert [h.doc_id for h in hits] == ["rev", "err"]  # rev holds both words, err one
    assert [h.signals["text"].rank for h in hits] == [1, 2]
    assert all(set(h.signals) == {"text"} and h.score == h.signals["text"].score for h in hits)
    assert [h.doc_id for h in store.search(Query(text="page selection"), SearchOptions(k=10, mode="text"))] == ["code"]
    assert [h.doc_id for h in store.search(Query(text="x7200b"), SearchOptions(k=10, mode="text"))] == ["inv"]
    assert store.search(Query(text="nothing-matches-zz"), SearchOptions(k=10, mode="text")) == []


@pytest.mark.parametrize("query", ['"north', "NEAR(north region)", "north*", "-north", "((north", "north)"])
def test_hostile_text_is_plain_words(backend: Backend, query: str) -> None:
    store, _ = _filled(backend)
    hits = store.search(Query(text=query), SearchOptions(k=10, mode="text"))
    assert {h.doc_id for h in hits} >= {"err", "rev"} - ({"rev"} if "region" not in query else set())
    assert {h.doc_id for h in hits} <= {"err", "rev"}


def test_hybrid_equals_the_hand_fusion(backend: Backend) -> None:
    store, units = _filled(backend)
    rng = np.random.default_rng(5)
    q = units["err"].multivector[:4] + 0.1 * rng.normal(size=(4, 16)).astype(np.float32)
    qd = _unit(rng.normal(size=DENSE))
    hits = store.search(
        Query(q, qd, "north quota"), SearchOptions(k=5, candidates=10, mode="hybrid", fusion=Fusion("rrf"))
    )
    # by hand: BM25 ranks from text mode, MaxSim ranks from a naive loop over all five units, RRF k=60
    text_hits = store.search(Query(text="north quota"), SearchOptions(k=10, mode="text"))
    text_rank = {h.doc_id: h.signals["text"].rank for h in text_hits}
    maxsim = {d: naive_maxsim(q, u.multivector) for d, u in units.items()}
    ms_rank = {d: r + 1 for r, d in enumerate(sorted(maxsim, key=lambda d: -maxsim[d]))}
    # text_weight (default 0.5) is BM25's share in both fusion methods: each list's reciprocal ranks count half
    fused = {d: 0.5 / (60 + ms_rank[d]) + (0.5 / (60 + text_rank[d]) if d in text_rank else 0.0) for d in units}
    want = sorted(fused, key=lambda d: (-fused[d], d))
    assert [h.doc_id for h in hits] == want
    for h in hits:
        assert h.score == pytest.approx(fused[h.doc_id], rel=1e-6)
        assert h.signals["maxsim"].rank == ms_rank[h.doc_id]
        assert h.signals["maxsim"].score == pytest.approx(maxsim[h.doc_id], abs=1e-4)
        assert ("text" in h.signals) == (h.doc_id in text_rank)
    # weighted (the default), by hand: each signal min-max normalised over the reranked units, 0.5 each; a unit
    # BM25 did not find has 0 for text
    bm25 = {h.doc_id: h.signals["text"].score for h in text_hits}

    def norm(scores: dict[str, float], d: str) -> float:
        lo, hi = min(scores.values()), max(scores.values())
        return 0.0 if d not in scores else (scores[d] - lo) / (hi - lo) if hi > lo else 1.0

    by_hand = {d: 0.5 * norm(bm25, d) + 0.5 * norm(maxsim, d) for d in units}
    weighted = store.search(Query(q, qd, "north quota"), SearchOptions(k=5, candidates=10, mode="hybrid"))
    assert [h.doc_id for h in weighted] == sorted(by_hand, key=lambda d: (-by_hand[d], d))
    for h in weighted:
        assert h.score == pytest.approx(by_hand[h.doc_id], abs=1e-4)


def test_filters_apply_inside_bm25_and_hybrid(backend: Backend) -> None:
    store, units = _filled(backend)
    hits = store.search(Query(text="north"), SearchOptions.of(k=10, mode="text", filter={"group": "a"}))
    assert [h.doc_id for h in hits] == ["err"]  # rev (group b) holds "north" too
    q = units["rev"].multivector[:3]
    hybrid = store.search(
        Query(q, units["rev"].dense, "north"),
        SearchOptions.of(k=10, candidates=10, mode="hybrid", filter={"i": {"$lt": 2}}),
    )
    assert {h.doc_id for h in hybrid} == {"inv", "rev"}


def test_replace_and_delete_keep_the_text_index_in_step(backend: Backend) -> None:
    store, units = _filled(backend)
    new = UnitRecord(0, units["rev"].dense, units["rev"].multivector, text="annual budget south")
    store.add_document("rev", [new], {"group": "b"}, replace=True)
    assert [h.doc_id for h in store.search(Query(text="region"), SearchOptions(k=10, mode="text"))] == []
    assert [h.doc_id for h in store.search(Query(text="budget"), SearchOptions(k=10, mode="text"))] == ["rev"]
    assert store.delete_document("err")
    assert store.search(Query(text="quota"), SearchOptions(k=10, mode="text")) == []
    assert store.delete_documents({"group": "b"}) == ["code", "rev"]
    assert store.search(Query(text="budget"), SearchOptions(k=10, mode="text")) == []


def test_bad_mode_and_missing_text(backend: Backend) -> None:
    store, units = _filled(backend)
    q = units["inv"].multivector
    with pytest.raises(InvalidQueryError, match="mode must be one of visual, text, hybrid"):
        store.search(Query(q, None), SearchOptions(k=3, mode="fuzzy"))
    for text in (None, "", "   "):
        with pytest.raises(InvalidQueryError, match="need query_text"):
            store.search(Query(q, None, text), SearchOptions(k=3, mode="hybrid"))
    with pytest.raises(InvalidQueryError, match="distinct words"):
        store.search(Query(text=" ".join(f"w{i}" for i in range(2000))), SearchOptions(k=3, mode="text"))


@pytest.mark.parametrize("method", ["rrf", "weighted"])
def test_text_weight_is_the_bm25_share_in_both_methods(method: str) -> None:
    """One meaning of text_weight: 0..1, BM25's share; MaxSim gets the rest (RRF's 0..100 multiplier is gone)."""
    assert Fusion(method, text_weight=0.3).weights == {"text": 0.3, "maxsim": 0.7}
    for bad in (-0.1, 1.5, 100, True, "0.5"):
        with pytest.raises(InvalidQueryError, match="share of BM25"):
            Fusion(method, text_weight=bad)  # type: ignore[arg-type]
    text, maxsim = {"a": 2.0, "b": 1.0}, {"b": 5.0, "a": 4.0}
    only_text = [u for u, _, _ in fuse(text, {}, maxsim, 2, Fusion(method, text_weight=1.0))]
    only_maxsim = [u for u, _, _ in fuse(text, {}, maxsim, 2, Fusion(method, text_weight=0.0))]
    assert (only_text, only_maxsim) == (["a", "b"], ["b", "a"])


def test_options_are_checked_once_when_built() -> None:
    """SearchOptions rejects what both backends used to check in their search preamble, before any store runs."""
    for bad, match in (
        ({"k": 0}, "k must be"),
        ({"k": 10, "candidates": 5}, "candidates must be"),
        ({"mode": "fuzzy"}, "mode must be one of"),
        ({"first_stage": "sparse"}, "first_stage"),
        ({"prefetch": 3}, "prefetch"),
        ({"query_groups": 0}, "query_groups"),
        ({"exhaustive": "yes"}, "exhaustive"),
    ):
        with pytest.raises(InvalidQueryError, match=match):
            SearchOptions(**bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidFilterError):
        SearchOptions.of(filter={"a.b": 1})
    small = StoreLimits(max_k=5)
    with pytest.raises(InvalidQueryError, match=r"1\.\.5"):
        SearchOptions(k=6, limits=small)
    wide = SearchOptions(k=6, candidates=6)
    with pytest.raises(InvalidQueryError, match=r"1\.\.5"):
        wide.under(small)  # a backend with lower limits re-checks options built against others
    assert wide.under(StoreLimits()) is wide


def test_hits_carry_unit_text_and_metadata_when_asked(backend: Backend) -> None:
    store, units = _filled(backend)
    plain = store.search(Query(text="north"), SearchOptions(k=10, mode="text"))
    assert plain
    assert all(h.text is None and h.unit_metadata is None for h in plain)
    asked = SearchOptions(k=10, mode="text", include_text=True, include_unit_metadata=True)
    hits = store.search(Query(text="north"), asked)
    assert [h.doc_id for h in hits] == [h.doc_id for h in plain]
    assert [h.text for h in hits] == [TEXTS[h.doc_id] for h in hits]
    assert all(h.unit_metadata == {} for h in hits)  # stored without unit metadata
    q = units["img"].multivector[:3]
    visual = store.search(Query(q, None), SearchOptions(k=5, include_text=True))
    assert {h.doc_id: h.text for h in visual} == {d: TEXTS[d] for d in TEXTS}  # None for the image page


def test_metadata_keys_names_the_keys_some_document_has(backend: Backend) -> None:
    store, units = _filled(backend)
    store.add_document("extra", [units["inv"]], {"empty": [], "none": None, "tags": ["x"]})
    assert store.metadata_keys(["group", "i", "tags", "empty", "none", "knd"]) == {"group", "i", "tags"}
    assert store.metadata_keys([]) == set()
