"""``Store.update_metadata`` over every backend: the document's metadata changes (reads, hits, filters) and its
units do not (same vectors, text, image, unit count, created_at, content hash)."""

from __future__ import annotations

import numpy as np
import pytest

from colbert.errors import DocumentNotFoundError, InvalidDocumentError
from colbert.search import Query, SearchOptions
from colbert.store import StoreLimits, UnitRecord
from tests.colbert.store_backends import F32, Backend, make_page


def test_update_metadata_changes_metadata_only(backend: Backend) -> None:
    store = backend.make(F32)
    rng = np.random.default_rng(3)
    page = make_page(rng, 0)
    units = [UnitRecord(0, page.dense, page.multivector, text="hello", image=b"PNG" * 10), make_page(rng, 1)]
    before = store.add_document("a", units, {"lang": "en", "year": 2024}, content_hash="sha256:x")
    store.add_document("b", [make_page(rng, 0)], {"lang": "en"})
    stored_before = [store.get_unit("a", u) for u in (0, 1)]

    after = store.update_metadata("a", {"lang": "de", "tags": ["x"]})
    assert after is not None
    assert (after.doc_id, after.metadata, after.num_units) == ("a", {"lang": "de", "tags": ["x"]}, 2)
    assert (after.created_at, after.content_hash) == (before.created_at, "sha256:x")
    got = store.get_document("a")
    assert got is not None
    assert got.metadata == {"lang": "de", "tags": ["x"]}
    for old, unit in zip(stored_before, (0, 1), strict=True):
        new = store.get_unit("a", unit)
        assert old is not None
        assert new is not None
        np.testing.assert_array_equal(new.multivector, old.multivector)
        np.testing.assert_array_equal(new.dense, old.dense)
        assert (new.text, new.image, new.kind) == (old.text, old.image, old.kind)
    q = units[0].multivector[:2]
    assert {h.doc_id for h in store.search(Query(q, None), SearchOptions.of(k=5, filter={"lang": "de"}))} == {"a"}
    assert {h.doc_id for h in store.search(Query(q, None), SearchOptions.of(k=5, filter={"lang": "en"}))} == {"b"}
    assert (
        store.search(Query(q, None), SearchOptions.of(k=5, filter={"year": 2024})) == []
    )  # the old key is gone from the filter index
    hits = store.search(Query(q, None), SearchOptions.of(k=5, filter={"lang": "de"}))
    assert all(h.metadata == {"lang": "de", "tags": ["x"]} for h in hits)
    assert store.count() == (2, 3)


def test_update_metadata_of_a_missing_document_and_bad_metadata(backend: Backend) -> None:
    store = backend.make(F32)
    with pytest.raises(DocumentNotFoundError, match="no document 'nope' in collection"):
        store.update_metadata("nope", {"a": 1})
    store.add_document("a", [make_page(np.random.default_rng(0), 0)], {"k": "v"})
    with pytest.raises(InvalidDocumentError):
        store.update_metadata("a", {"x": float("nan")})
    with pytest.raises(InvalidDocumentError):
        store.update_metadata("a", {"big": "x" * (StoreLimits().max_metadata_bytes + 1)})
    assert store.get_document("a").metadata == {"k": "v"}  # type: ignore[union-attr]
