"""Search modes over both backends (one contract): BM25 text mode, hybrid fusion checked against a hand
computation (BM25 ranks + naive MaxSim ranks -> RRF), filters inside BM25, units without text, replace/delete
keeping the full-text index in step, and hostile query text."""

from __future__ import annotations

import numpy as np
import pytest

from colbert.errors import InvalidQueryError
from colbert.hybrid import Fusion
from colbert.store import Store, UnitRecord
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
    hits = store.search(None, None, 10, mode="text", query_text="north region")
    assert [h.doc_id for h in hits] == ["rev", "err"]  # rev holds both words, err one
    assert [h.signals["text"].rank for h in hits] == [1, 2]
    assert all(set(h.signals) == {"text"} and h.score == h.signals["text"].score for h in hits)
    assert [h.doc_id for h in store.search(None, None, 10, mode="text", query_text="page selection")] == ["code"]
    assert [h.doc_id for h in store.search(None, None, 10, mode="text", query_text="x7200b")] == ["inv"]
    assert store.search(None, None, 10, mode="text", query_text="nothing-matches-zz") == []


@pytest.mark.parametrize("query", ['"north', "NEAR(north region)", "north*", "-north", "((north", "north)"])
def test_hostile_text_is_plain_words(backend: Backend, query: str) -> None:
    store, _ = _filled(backend)
    hits = store.search(None, None, 10, mode="text", query_text=query)
    assert {h.doc_id for h in hits} >= {"err", "rev"} - ({"rev"} if "region" not in query else set())
    assert {h.doc_id for h in hits} <= {"err", "rev"}


def test_hybrid_equals_the_hand_fusion(backend: Backend) -> None:
    store, units = _filled(backend)
    rng = np.random.default_rng(5)
    q = units["err"].multivector[:4] + 0.1 * rng.normal(size=(4, 16)).astype(np.float32)
    qd = _unit(rng.normal(size=DENSE))
    hits = store.search(q, qd, 5, candidates=10, mode="hybrid", query_text="north quota", fusion=Fusion("rrf"))
    # by hand: BM25 ranks from text mode, MaxSim ranks from a naive loop over all five units, RRF k=60
    text_hits = store.search(None, None, 10, mode="text", query_text="north quota")
    text_rank = {h.doc_id: h.signals["text"].rank for h in text_hits}
    maxsim = {d: naive_maxsim(q, u.multivector) for d, u in units.items()}
    ms_rank = {d: r + 1 for r, d in enumerate(sorted(maxsim, key=lambda d: -maxsim[d]))}
    fused = {d: 1 / (60 + ms_rank[d]) + (1 / (60 + text_rank[d]) if d in text_rank else 0.0) for d in units}
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
    weighted = store.search(q, qd, 5, candidates=10, mode="hybrid", query_text="north quota")
    assert [h.doc_id for h in weighted] == sorted(by_hand, key=lambda d: (-by_hand[d], d))
    for h in weighted:
        assert h.score == pytest.approx(by_hand[h.doc_id], abs=1e-4)


def test_filters_apply_inside_bm25_and_hybrid(backend: Backend) -> None:
    store, units = _filled(backend)
    hits = store.search(None, None, 10, mode="text", query_text="north", filter={"group": "a"})
    assert [h.doc_id for h in hits] == ["err"]  # rev (group b) holds "north" too
    q = units["rev"].multivector[:3]
    hybrid = store.search(
        q, units["rev"].dense, 10, candidates=10, mode="hybrid", query_text="north", filter={"i": {"$lt": 2}}
    )
    assert {h.doc_id for h in hybrid} == {"inv", "rev"}


def test_replace_and_delete_keep_the_text_index_in_step(backend: Backend) -> None:
    store, units = _filled(backend)
    new = UnitRecord(0, units["rev"].dense, units["rev"].multivector, text="annual budget south")
    store.add_document("rev", [new], {"group": "b"}, replace=True)
    assert [h.doc_id for h in store.search(None, None, 10, mode="text", query_text="region")] == []
    assert [h.doc_id for h in store.search(None, None, 10, mode="text", query_text="budget")] == ["rev"]
    assert store.delete_document("err")
    assert store.search(None, None, 10, mode="text", query_text="quota") == []
    assert store.delete_documents({"group": "b"}) == ["code", "rev"]
    assert store.search(None, None, 10, mode="text", query_text="budget") == []


def test_bad_mode_and_missing_text(backend: Backend) -> None:
    store, units = _filled(backend)
    q = units["inv"].multivector
    with pytest.raises(InvalidQueryError, match="mode must be one of visual, text, hybrid"):
        store.search(q, None, 3, mode="fuzzy")
    for text in (None, "", "   "):
        with pytest.raises(InvalidQueryError, match="need query_text"):
            store.search(q, None, 3, mode="hybrid", query_text=text)
    with pytest.raises(InvalidQueryError, match="distinct words"):
        store.search(None, None, 3, mode="text", query_text=" ".join(f"w{i}" for i in range(2000)))
