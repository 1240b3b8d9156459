"""Rich metadata filters: one parser, the same semantics on every backend, at every search stage, and
delete-by-filter. Expected sets are written out by hand and also checked against :func:`colbert.filters.matches`
(the reference semantics)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from colbert.errors import InvalidFilterError
from colbert.filters import matches, parse_filter
from colbert.local import LocalStore
from colbert.search import Query, SearchOptions
from tests.colbert.store_backends import DENSE, F32, NO_SERVER, Backend, _unit, make_page
from tests.colbert.test_filter_semantics import CASES, META


@pytest.fixture(
    params=[
        "local",
        "qdrant-memory",
        pytest.param(
            "qdrant-server",
            marks=[pytest.mark.qdrant_server, pytest.mark.skipif(not os.environ.get("QDRANT_URL"), reason=NO_SERVER)],
        ),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b = Backend(request.param, tmp_path)
    yield b
    b.cleanup()


def _filled(backend: Backend) -> Any:
    store = backend.make(F32)
    rng = np.random.default_rng(7)
    for doc_id, meta in META.items():
        store.add_document(doc_id, [make_page(rng, 0), make_page(rng, 1)], meta)
    return store, rng


@pytest.mark.parametrize(("flt", "want"), CASES, ids=[str(c[0]) for c in CASES])
def test_reference_semantics(flt: dict[str, Any], want: set[str]) -> None:
    assert {d for d, m in META.items() if matches(parse_filter(flt), m)} == want


def test_every_case_on_every_stage(backend: Backend) -> None:
    store, rng = _filled(backend)
    q = make_page(rng, 0).multivector[:4]
    far = _unit(rng.normal(size=DENSE))
    for flt, want in CASES:
        exhaustive = {h.doc_id for h in store.search(Query(q, None), SearchOptions.of(k=50, filter=flt))}
        assert exhaustive == want, flt
        # a 2-candidate first stage still returns every matching page: the filter runs inside it
        first = store.search(Query(q, far), SearchOptions.of(k=2, candidates=2, filter=flt))
        assert {h.doc_id for h in first} <= want, flt
        assert len(first) == min(2, 2 * len(want)), flt
        if isinstance(store, LocalStore):
            pooled = store.search(Query(q, far), SearchOptions.of(k=2, candidates=2, filter=flt, first_stage="pooled"))
            assert {h.doc_id for h in pooled} <= want, flt
            assert len(pooled) == min(2, 2 * len(want)), flt


def test_delete_by_filter(backend: Backend) -> None:
    store, rng = _filled(backend)
    assert store.delete_documents({"lang": "en", "year": {"$lt": 2024}}) == ["a", "e"]
    assert store.get_document("a") is None
    assert store.get_document("e") is None
    assert {d.doc_id for d in store.list_documents()} == {"b", "c", "d", "f"}
    assert store.delete_documents({"lang": "xx"}) == []
    q = make_page(rng, 0).multivector[:3]
    assert {h.doc_id for h in store.search(Query(q, None), SearchOptions(k=50))} == {"b", "c", "d", "f"}
    with pytest.raises(InvalidFilterError, match="at least one condition"):
        store.delete_documents({})


MALFORMED: list[tuple[Any, str]] = [
    ({"year": {"$gte": "2020"}}, "needs a finite number"),
    ({"year": {"$gt": True}}, "needs a finite number"),
    ({"year": {"$lt": float("nan")}}, "needs a finite number"),
    ({"tag": {"$in": []}}, r"needs a list of 1\.\.1024"),
    ({"tag": {"$in": "x"}}, "needs a list"),
    ({"tag": {"$in": [1.5]}}, "must be a str, int or bool"),
    ({"tag": {"$regex": "x"}}, "unknown filter operator '\\$regex'"),
    ({"tag": {}}, "empty object"),
    ({"tag": {"$exists": 1}}, "needs true or false"),
    ({"score": 0.5}, "use a range"),
    ({"a.b": 1}, "filter key must match"),
    ({"lang\n": "en"}, "filter key must match"),  # Python's $ matches before a final newline: not a key
    (["lang", "en"], "must be a JSON object"),
]


def test_malformed_filters_are_typed_errors(backend: Backend) -> None:
    store, rng = _filled(backend)
    q = make_page(rng, 0).multivector[:3]
    for flt, message in MALFORMED:
        with pytest.raises(InvalidFilterError, match=message):
            store.search(Query(q, None), SearchOptions.of(k=3, filter=flt))
        with pytest.raises(InvalidFilterError, match=message):
            store.delete_documents(flt)
