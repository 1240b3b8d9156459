"""The first stage's default candidate count grows with the collection (colbert.search.default_candidates): the
rule's values, how an options object resolves it, and the embedded backend reranking the grown count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import colbert.search as search
from colbert.errors import InvalidQueryError
from colbert.local import LocalStore
from colbert.search import DEFAULT_CANDIDATES, Query, SearchOptions, default_candidates
from colbert.store import CollectionConfig, StoreLimits, UnitRecord
from tests.colbert.store_backends import DENSE, D, _unit


def test_the_rule_keeps_200_up_to_100k_units_then_grows_as_the_0_6th_power() -> None:
    assert [default_candidates(n) for n in (None, 0, 1, 50_000, 100_000)] == [DEFAULT_CANDIDATES] * 5
    assert default_candidates(1_000_000) == round(200 * 10**0.6) == 796
    assert default_candidates(2_000_000) == round(200 * 20**0.6) == 1_207
    sizes = [100_000, 100_001, 250_000, 500_000, 1_000_000, 10_000_000]
    grown = [default_candidates(n) for n in sizes]
    assert grown == sorted(grown)
    assert grown[0] == 200 < grown[2]


def test_options_resolve_the_default_within_k_prefetch_and_the_limit() -> None:
    assert SearchOptions(candidates=300).candidates_for(1_000_000) == 300  # given: as given, whatever the size
    assert SearchOptions().candidates_for(1_000_000) == 796
    assert SearchOptions(k=1_000).candidates_for(10) == 1_000  # never fewer than k
    assert SearchOptions(prefetch=500).candidates_for(1_000_000) == 500  # never more than the units narrowed to
    assert SearchOptions(limits=StoreLimits(max_candidates=600)).candidates_for(1_000_000) == 600
    assert SearchOptions().candidates_for(None) == DEFAULT_CANDIDATES  # size not known (the Qdrant backend)
    with pytest.raises(InvalidQueryError, match=r"prefetch must be None or an int >= k \(10\), got 5"):
        SearchOptions(prefetch=5)
    with pytest.raises(InvalidQueryError, match=r"candidates must be None or an int"):
        SearchOptions(candidates=2.5)  # type: ignore[arg-type]


def _ladder(path: Path, units: int, best: int) -> tuple[LocalStore, np.ndarray]:
    """A store whose units' dense cosine to the query falls with their number (unit i is the i-th nearest) and
    whose multi-vectors are random but for unit ``best``, which holds the query's tokens: the exact MaxSim top-1
    is ``best``, which the dense first stage ranks ``best``-th. Returns the store and the query's tokens."""
    rng = np.random.default_rng(3)
    store = LocalStore.create(path, CollectionConfig(multivector_dim=D, dense_dim=DENSE, codec="float32"))
    q = _unit(rng.normal(size=(4, D)))
    for i in range(units):
        angle = 1.2 * i / units
        dense = np.zeros(DENSE, dtype=np.float32)
        dense[0], dense[1] = np.cos(angle), np.sin(angle)
        tokens = q if i == best else _unit(rng.normal(size=(6, D)))
        store.add_document(f"u{i:03d}", [UnitRecord(0, dense, tokens)])
    return store, q


def test_the_embedded_backend_reranks_the_grown_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scaled down (10 candidates up to 20 units) so that a test can hold a collection past the threshold: at 80
    units the default is round(10 * 4**0.6) = 23 candidates, which reach the unit the dense stage ranks 15th, where
    the base 10 do not (and did not, before the default grew)."""
    monkeypatch.setattr(search, "DEFAULT_CANDIDATES", 10)
    monkeypatch.setattr(search, "_GROWTH_FROM", 20)
    assert default_candidates(80) == 23
    store, q = _ladder(tmp_path / "c", 80, best=15)
    query = Query(q, np.eye(DENSE, dtype=np.float32)[0])
    try:
        fixed = store.search(query, SearchOptions(k=1, candidates=10, first_stage="dense"))
        grown = store.search(query, SearchOptions(k=1, first_stage="dense"))
        exact = store.search(query, SearchOptions(k=1, exhaustive=True))
    finally:
        store.close()
    assert [h.doc_id for h in exact] == ["u015"]
    assert [h.doc_id for h in grown] == ["u015"]
    assert [h.doc_id for h in fixed] != ["u015"]
