"""Bulk loading (:mod:`colbert.local.bulk`): many documents per transaction, each still all or nothing, the
same stored content as one ``add_document`` per document, and batched page sketches equal to per-page ones."""

from __future__ import annotations

import random
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

from colbert.errors import DimensionMismatchError, DocumentExistsError, InvalidDocumentError
from colbert.local import LocalStore
from colbert.local.bulk import add_documents
from colbert.local.sketch import page_sketch, page_sketches
from colbert.quantize import Codec
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, NewDocument, UnitRecord

sys.path.insert(0, str(Path(__file__).parent))
from durability_writer import DENSE, DIM, original_for, pages_for
from test_local_durability import check_whole, killed_round

CONFIG = CollectionConfig(dense_dim=DENSE, multivector_dim=DIM, codec=Codec.FLOAT32)
WRITER = Path(__file__).with_name("bulk_writer.py")


def _docs(versions: range) -> list[NewDocument]:
    return [NewDocument(f"d{v}", pages_for(v), {"version": v}, original=original_for(v)) for v in versions]


def test_page_sketches_equal_page_sketch_for_every_size() -> None:
    rng = np.random.default_rng(0)
    pages = [rng.normal(size=(n, DIM)).astype(np.float32) for n in (0, 1, 5, 8, 9, 40, 300, 41, 7, 120)]
    pages[6] *= 2.5  # norms other than 1 are kept per cluster
    got = page_sketches(pages, 8)
    assert len(got) == len(pages)
    for x, s in zip(pages, got, strict=True):
        assert s.shape == (8, DIM)
        assert s.dtype == np.float32
        np.testing.assert_allclose(s, page_sketch(x, 8), atol=1e-5)
    assert page_sketches([], 8) == []


@pytest.mark.parametrize("codec", [Codec.FLOAT32, Codec.INT8, Codec.RESIDUAL2])
def test_bulk_stores_what_add_document_stores(tmp_path: Path, codec: Codec) -> None:
    config = CollectionConfig(dense_dim=DENSE, multivector_dim=DIM, codec=codec)
    one, bulk = LocalStore.create(tmp_path / "one", config), LocalStore.create(tmp_path / "bulk", config)
    docs = _docs(range(1, 13))
    if codec == Codec.RESIDUAL2:  # the same codebook in both, so the codes can be compared
        sample = np.concatenate([r.multivector for d in docs for r in d.units])
        one.train_codebook(sample, k=16)
        bulk.train_codebook(sample, k=16)
    for d in docs:
        one.add_document(d.doc_id, d.units, d.metadata, original=d.original)
    infos = add_documents(bulk, docs)
    assert [i.doc_id for i in infos] == [d.doc_id for d in docs]
    assert bulk.count() == one.count()
    for d in docs:
        assert bulk.get_original(d.doc_id) == d.original
        for r in d.units:
            a, b = one.get_unit(d.doc_id, r.unit), bulk.get_unit(d.doc_id, r.unit)
            assert a is not None
            assert b is not None
            np.testing.assert_array_equal(a.multivector, b.multivector)
            assert (a.text, a.image) == (b.text, b.image)
    probe = pages_for(5)[1]
    exact = SearchOptions(k=10, exhaustive=True)
    q = Query(probe.multivector[:6], probe.dense)
    assert [(h.doc_id, h.unit, h.score) for h in one.search(q, exact)] == [
        (h.doc_id, h.unit, h.score) for h in bulk.search(q, exact)
    ]
    pooled = SearchOptions(k=5, candidates=20, first_stage="pooled")
    assert [(h.doc_id, h.unit) for h in one.search(q, pooled)] == [(h.doc_id, h.unit) for h in bulk.search(q, pooled)]
    one.close()
    bulk.close()


def test_residual_codebook_is_trained_on_the_whole_first_batch(tmp_path: Path) -> None:
    store = LocalStore.create(tmp_path / "r", CollectionConfig(dense_dim=DENSE, multivector_dim=DIM, codec="residual1"))
    docs = _docs(range(1, 9))
    add_documents(store, docs)
    book = store.codebook()
    assert book is not None
    tokens = sum(r.multivector.shape[0] for d in docs for r in d.units)
    assert store.count() == (len(docs), sum(len(d.units) for d in docs))
    for d in docs[:2]:  # every unit holds its tokens encoded by the stored codebook
        for r in d.units:
            got = store.get_unit(d.doc_id, r.unit)
            assert got is not None
            want = book.decode(book.encode(r.multivector), r.multivector.shape[0])  # K ≤ the shortlist: exact
            np.testing.assert_array_equal(got.multivector, want)
    conn = sqlite3.connect(tmp_path / "r" / "index.sqlite")
    trained_on = conn.execute("SELECT tokens FROM codebook").fetchone()[0]
    conn.close()
    assert trained_on == tokens  # the whole batch's tokens, not the first document's alone
    store.close()


def test_a_refused_batch_writes_nothing(tmp_path: Path) -> None:
    store = LocalStore.create(tmp_path / "idx", CONFIG)
    add_documents(store, _docs(range(1, 3)))
    before = store.count()
    with pytest.raises(DocumentExistsError, match="'d2'"):
        add_documents(store, _docs(range(2, 6)))
    with pytest.raises(InvalidDocumentError, match="twice"):
        add_documents(store, [*_docs(range(7, 9)), *_docs(range(7, 8))])
    bad = NewDocument("bad", [UnitRecord(0, np.ones(DENSE, np.float32), np.ones((3, DIM + 1), np.float32))])
    with pytest.raises(DimensionMismatchError):
        add_documents(store, [*_docs(range(10, 12)), bad])
    with pytest.raises(InvalidDocumentError, match="NewDocument"):
        add_documents(store, [("d20", pages_for(20))])  # type: ignore[list-item]
    assert store.count() == before
    assert store.get_document("d10") is None
    assert add_documents(store, []) == []
    newer = [NewDocument("d2", pages_for(30), {"version": 30}), *_docs(range(3, 5))]
    add_documents(store, newer, replace=True)
    assert store.get_document("d2").metadata == {"version": 30}  # type: ignore[union-attr]
    assert store.count()[0] == 4
    store.close()


def test_kill_9_mid_batch_keeps_whole_documents(tmp_path: Path) -> None:
    directory = tmp_path / "idx"
    LocalStore.create(directory, CONFIG).close()
    rnd = random.Random(99)
    acked: dict[str, int] = {}
    start = 0
    for _round in range(3):
        acked.update(killed_round(directory, start, rnd.uniform(0.05, 0.8), reader=None, writer=WRITER))
        start = (check_whole(directory, acked) // 3 + 1) * 3
