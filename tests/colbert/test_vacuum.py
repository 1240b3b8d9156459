"""Disk space of deleted documents is reclaimed (issue 13, item 9): ``Catalog.vacuum`` / ``LocalStore.vacuum``
shrink the files, and every search answers exactly as before the vacuum."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qdrant_client import QdrantClient

from colbert.catalog import Catalog
from colbert.search import Query, SearchOptions
from colbert.store import UnitRecord
from tests.colbert.store_backends import F32, make_page


def _searches(store: object, queries: list[np.ndarray]) -> list[list[tuple[str, int, float]]]:
    out = []
    for q in queries:
        for text, kwargs in ((None, {"exhaustive": True}), ("alpha beta", {"mode": "text"})):
            hits = store.search(Query(q, None, text), SearchOptions(k=10, **kwargs))  # type: ignore[attr-defined]
            out.append([(h.doc_id, h.unit, h.score) for h in hits])
    return out


def test_vacuum_reclaims_deleted_space_and_keeps_results(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    with Catalog(tmp_path) as catalog:
        store = catalog.create("lib", F32)
        image = rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes()  # incompressible stand-in for a PNG
        for j in range(12):
            units = []
            for u in range(3):
                page = make_page(rng, u, n=200)
                units.append(UnitRecord(u, page.dense, page.multivector, text=f"alpha beta page {j} {u}", image=image))
            store.add_document(f"doc-{j}", units, {"j": j})
        for j in range(0, 12, 4):  # keep doc-0, doc-4, doc-8 with a replace, so replaced space is reclaimed too
            page = make_page(rng, 0, n=200)
            store.add_document(f"doc-{j}", [UnitRecord(0, page.dense, page.multivector, text="alpha")], replace=True)
        for j in range(12):
            if j % 4:
                store.delete_document(f"doc-{j}")
        queries = [make_page(rng, 0, n=4).multivector for _ in range(3)]
        before_results = _searches(store, queries)
        full = catalog.disk_bytes("lib")
        assert full is not None
        assert full > 12 * 3 * 200_000  # the deleted images are still in the file
        result = catalog.vacuum("lib")
        assert result.bytes_before is not None
        assert result.bytes_after is not None
        assert result.bytes_after < result.bytes_before / 5, result
        assert catalog.disk_bytes("lib") == result.bytes_after
        assert _searches(store, queries) == before_results
        assert [d.doc_id for d in store.list_documents()] == ["doc-0", "doc-4", "doc-8"]
        # writes go on after a vacuum, and another handle (a restarted process) reads the same
        store.add_document("later", [make_page(rng, 0)])
        assert store.count() == (4, 4)
        store.delete_document("later")
    with Catalog(tmp_path) as again:
        reopened = again.get("lib")
        assert _searches(reopened, queries) == before_results
        assert reopened.count() == (3, 3)


def test_qdrant_reports_unknown_size(tmp_path: Path) -> None:
    with Catalog(tmp_path, backend="qdrant", qdrant_client=QdrantClient(":memory:")) as catalog:
        catalog.create("q", F32)
        assert catalog.disk_bytes("q") is None
        result = catalog.vacuum("q")
        assert (result.bytes_before, result.bytes_after) == (None, None)
        assert "vacuum optimizer" in result.note
