"""The ``pooled_ivf`` first stage (issue 26 item 2; :mod:`colbert.local.cells`): an inverted file over the pages'
sketch centroids, for every codec. Its scores are the exact sketch scores (a numpy reference); on hand-built topic
pages it finds what exhaustive MaxSim finds; a 1 % filter still returns k hits; adds, replaces and deletes (in
another process too) reach it without a rebuild; asked of a collection without cells it is a typed error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from colbert.errors import (
    CollectionNotFoundError,
    FirstStageUnavailableError,
    IndexFormatError,
    InvalidDocumentError,
)
from colbert.local import LocalOptions, LocalStore
from colbert.local.cells import CellBook, assign_cells, choose_cells, load_cell_book, train_cell_book
from colbert.local.codes import list_fault
from colbert.local.modes import FirstStage
from colbert.local.sketch import widen_sketches
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig
from tests.colbert.test_residual_store import DENSE, D, record, topic_pages

REPO = Path(__file__).resolve().parents[2]


def _store(path: Path, pages: list[np.ndarray], codec: str = "int8", **meta: object) -> LocalStore:
    store = LocalStore.create(path, CollectionConfig(DENSE, D, codec=codec))  # type: ignore[arg-type]
    for i, p in enumerate(pages):
        store.add_document(f"d{i}", [record(p)], {"keep": i % 100 == 0} if meta.get("filtered") else {})
    return store


def test_cell_book_trains_assigns_and_round_trips() -> None:
    x = np.concatenate(topic_pages(1, 40))
    book = train_cell_book(x, 16, seed=3)
    assert (book.k, book.dim) == (16, D)
    assert np.allclose(np.linalg.norm(book.units, axis=1), 1, atol=1e-5)
    again = CellBook.from_bytes(book.to_bytes())
    assert np.array_equal(again.units, book.units)
    assert np.array_equal(again.norms, book.norms)
    cells = assign_cells(book, x[:24].reshape(3, 8, D))
    want = (x[:24] @ book.units.T).argmax(axis=1).reshape(3, 8)  # each centroid's best cell, by brute force
    assert [np.frombuffer(c, "<u2").tolist() for c in cells] == [sorted(set(w.tolist())) for w in want]
    assert [choose_cells(n) for n in (1, 800_000, 8_000_000)] == [1, 1024, 4096]
    with pytest.raises(ValueError, match="cell book"):
        CellBook.from_bytes(b"JEV4CELL1" + b"\x02\x00\x00\x00\x04\x00\x00\x00" + b"\x00" * 12)


@pytest.mark.parametrize("codec", ["binary", "int8", "residual2"])
def test_scores_are_the_sketch_scores_and_reach_everything_finds_the_pooled_ranking(tmp_path: Path, codec: str) -> None:
    pages = topic_pages(2, 60)
    store = _store(tmp_path / "c", pages, codec)
    book, filed = store.train_cells(k=8)
    assert (book.k, filed) == (8, 60)
    q = pages[7][:5]
    with store._read() as conn:
        snap, _ = store._views_for(conn, sketches=True)
        everything = FirstStage("pooled_ivf", 60, prefetch=60)  # every page reached: the pooled ranking
        ids, scores = store._first_stage(conn, snap, q, None, None, everything)
        pooled, _ = store._first_stage(conn, snap, q, None, None, FirstStage("pooled", 60))
    held = snap.rows
    sketch = widen_sketches(held.sketch, held.scales).astype(np.float64)  # (P, k, D) what the sketches score as
    want = np.einsum("qd,pkd->pqk", q.astype(np.float64), sketch).max(axis=2).sum(axis=1)  # (P,)
    by_id = dict(zip(snap.ids.tolist(), want.tolist(), strict=True))
    assert len(ids) == 60
    assert np.allclose(scores, [by_id[i] for i in ids.tolist()], atol=1e-4)
    assert ids.tolist() == pooled.tolist()
    store.close()


def test_finds_what_exhaustive_finds_with_units_filed_before_and_after_training(tmp_path: Path) -> None:
    pages = topic_pages(4, 300)
    store = _store(tmp_path / "c", pages[:200])
    store.train_cells()  # the 200 units there are filed by the training, the next 100 by their own writes
    for i, p in enumerate(pages[200:], start=200):
        store.add_document(f"d{i}", [record(p)])
    with store._read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM unit_cells").fetchone()[0] == 300
    agree = 0
    for t in range(10):
        q = pages[t * 29][:8]
        exact = [h.doc_id for h in store.search(Query(q, None), SearchOptions(k=10, exhaustive=True))]
        opts = SearchOptions(k=10, candidates=60, first_stage="pooled_ivf", prefetch=90)
        found = [h.doc_id for h in store.search(Query(q, None), opts)]
        assert found[0] == exact[0] == f"d{t * 29}"
        agree += len(set(exact) & set(found))
    assert agree >= 95  # recall@10 ≥ 0.95 with 20 % of the units reranked, 30 % sketch-scored
    store.close()


def test_filter_keeping_one_percent_still_returns_k(tmp_path: Path) -> None:
    pages = topic_pages(5, 1000, tokens=8)
    store = _store(tmp_path / "c", pages, filtered=True)
    store.train_cells(k=16)
    q = pages[1][:4]  # a unit the filter drops: the probed cells favour units that are filtered out
    opts = SearchOptions(k=10, candidates=10, first_stage="pooled_ivf", prefetch=10, filter={"keep": True})
    hits = store.search(Query(q, None), opts)
    assert sorted(h.doc_id for h in hits) == sorted(f"d{i}" for i in range(0, 1000, 100))
    exact = store.search(Query(q, None), SearchOptions(k=10, exhaustive=True, filter={"keep": True}))
    assert [h.doc_id for h in hits] == [h.doc_id for h in exact]
    store.close()


_WRITER = """
import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from tests.colbert.test_residual_store import record, topic_pages
from colbert.local import LocalStore
pages = topic_pages(6, 60)
store = LocalStore.open(Path({path!r}))
store.add_document("new", [record(pages[50])])
store.add_document("d5", [record(pages[55])], replace=True)
store.delete_document("d9")
store.close()
"""


def test_follows_adds_replaces_and_deletes_of_another_process(tmp_path: Path) -> None:
    pages = topic_pages(6, 60)
    path = tmp_path / "c"
    _store(path, pages[:40]).close()
    reader = LocalStore.open(path, options=LocalOptions(first_stage="pooled_ivf"))
    reader.train_cells(k=8)
    opts = SearchOptions(k=3, candidates=10, prefetch=20)
    assert reader.search(Query(pages[9][:6], None), opts)[0].doc_id == "d9"  # loads the lists
    subprocess.run([sys.executable, "-c", _WRITER.format(repo=str(REPO), path=str(path))], check=True, timeout=120)
    assert reader.search(Query(pages[50][:6], None), opts)[0].doc_id == "new"
    assert reader.search(Query(pages[55][:6], None), opts)[0].doc_id == "d5"
    assert "d9" not in [h.doc_id for h in reader.search(Query(pages[9][:6], None), opts)]
    view = reader._lists.get("pooled_ivf")
    assert view is not None
    assert (view.n, int(view.alive.sum())) == (42, 40)  # new + the replaced d5 appended; old d5, d9 tombstones
    with reader._read() as conn:  # the other process filed its units in their own transactions
        assert conn.execute("SELECT COUNT(*) FROM unit_cells").fetchone()[0] == 40
    reader.close()


def test_without_cells_asked_is_an_error_and_the_default_falls_back_to_pooled(tmp_path: Path) -> None:
    pages = topic_pages(7, 30)
    store = _store(tmp_path / "c", pages)
    q = Query(pages[3][:5], None)
    with pytest.raises(FirstStageUnavailableError, match="train-cells"):
        store.search(q, SearchOptions(k=3, first_stage="pooled_ivf"))
    store.close()
    default = LocalStore.open(tmp_path / "c", options=LocalOptions(first_stage="pooled_ivf"))
    assert default.search(q, SearchOptions(k=3, candidates=5))[0].doc_id == "d3"
    assert default.stats().ivf_memory_bytes == 0  # served by the pooled scan: no lists
    empty = LocalStore.create(tmp_path / "e", CollectionConfig(DENSE, D))
    with pytest.raises(InvalidDocumentError, match="no units"):
        empty.train_cells()
    empty.close()
    default.close()


def test_training_twice_keeps_the_book_and_a_damaged_book_is_named(tmp_path: Path) -> None:
    pages = topic_pages(8, 30)
    store = _store(tmp_path / "c", pages)
    store.train_cells(k=4)
    again, filed = LocalStore.open(tmp_path / "c").train_cells(k=16)
    assert (again.k, filed) == (4, 0)
    with store._write() as conn:
        conn.execute("UPDATE cell_book SET digest = 'x'")
    with pytest.raises(IndexFormatError, match="cell book is damaged"):
        LocalStore.open(tmp_path / "c")
    store.close()


def test_hybrid_with_pooled_ivf(tmp_path: Path) -> None:
    pages = topic_pages(9, 30)
    store = LocalStore.create(tmp_path / "c", CollectionConfig(DENSE, D))
    for i, p in enumerate(pages):
        store.add_document(f"d{i}", [record(p, text=f"page about {'zebra' if i == 17 else 'lions'} number {i}")])
    store.train_cells(k=8)
    opts = SearchOptions(k=5, candidates=10, mode="hybrid", first_stage="pooled_ivf")
    ids = [h.doc_id for h in store.search(Query(pages[3][:5], None, text="zebra"), opts)]
    assert "d17" in ids
    assert "d3" in ids
    store.close()


@pytest.mark.parametrize("data", [b"\x01", b"\x05\x00\x02\x00", b"\xff\x00"])  # odd length, falling, ≥ K
def test_a_damaged_cell_list_is_named(tmp_path: Path, data: bytes) -> None:
    pages = topic_pages(10, 20)
    store = _store(tmp_path / "c", pages)
    store.train_cells(k=8)
    with store._write() as conn:
        conn.execute("UPDATE unit_cells SET data = ? WHERE page_id = 3", (data,))
    with pytest.raises(IndexFormatError, match=r"cell list \(unit_cells\) is damaged \(unit 3's list"):
        store.search(Query(pages[0][:4], None), SearchOptions(k=3, first_stage="pooled_ivf"))
    store.close()


def test_list_faults_are_found_over_all_lists_at_once_and_name_their_unit() -> None:
    """The one check of the cell and centroid lists: a list may start below where the one before it ended, and
    an empty list (a unit not filed yet) is allowed only for cells."""
    as_u2 = lambda *xs: [np.array(x, dtype="<u2") for x in xs]  # noqa: E731
    ids = np.array([11, 12, 13, 14])
    assert list_fault(ids, as_u2([1, 3], [], [0, 2], [5]), 6, "cell", "cell book", empty_ok=True) is None
    assert (
        list_fault(ids, as_u2([1, 3], [], [0, 2], [5]), 6, "centroid", "codebook") == "unit 12's list holds no centroid"
    )
    falling = list_fault(ids, as_u2([1, 3], [], [2, 2], [5]), 6, "cell", "cell book", empty_ok=True)
    assert falling == "unit 13's list is not strictly ascending"
    outside = list_fault(ids, as_u2([1], [], [0, 2], [6]), 6, "cell", "cell book", empty_ok=True)
    assert outside == "unit 14's list names a cell outside the cell book's 6"
    assert list_fault(ids[:2], as_u2([], []), 6, "cell", "cell book", empty_ok=True) is None


@pytest.mark.parametrize("nprobe", [1, 2, 6])
def test_ivf_top_is_the_imputed_score_ranking_ties_to_the_lowest_ids(nprobe: int) -> None:
    """Hand-built lists with many units filed alike (equal scores): every ``count`` returns the first ``count``
    units of the reference ranking (score descending, then page id), whether or not enough lists were probed
    to fill it, and a 1-in-8 filter returns exactly the allowed units' ranking."""
    from colbert.local.ivf import IvfSnapshot, ivf_top

    rng = np.random.default_rng(11)
    units = rng.standard_normal((6, D)).astype(np.float32)
    book = CellBook(units / np.linalg.norm(units, axis=1, keepdims=True), np.ones(6, np.float32))
    lists = [np.unique(rng.choice(6, rng.integers(1, 3), replace=False)).astype(np.uint16) for _ in range(40)]
    ids = np.arange(1, 41) * 3  # page ids need not be dense
    snap = IvfSnapshot.build((120, 0), 6, ids, lists)
    q = rng.standard_normal((3, D)).astype(np.float32)
    cs = q @ book.centroids.T  # (3, 6)
    order = np.argsort(-cs, axis=1)
    probed = order[:, :nprobe]
    floor = cs[np.arange(3), order[:, min(nprobe, 5)]]  # the best unprobed cell's score
    want = {}
    for i, unit in zip(ids.tolist(), lists, strict=True):
        imputed = [[floor[t]] if nprobe < 6 else [] for t in range(3)]  # every cell probed: nothing imputed
        per = [max(imputed[t] + [cs[t, c] for c in unit.tolist() if c in probed[t]]) for t in range(3)]
        want[i] = round(float(sum(per)), 4)
    ranking = sorted(want, key=lambda i: (-want[i], i))
    for count in (1, 5, 13, 40):
        got, scores = ivf_top(snap, book, q, count, nprobe, None)
        assert got.tolist() == ranking[:count], count
        assert np.allclose(scores, [want[i] for i in ranking[:count]], atol=1e-3)
    allowed = ids[::8]
    got, _ = ivf_top(snap, book, q, 3, nprobe, allowed)
    assert got.tolist() == [i for i in ranking if i in set(allowed.tolist())][:3]


def test_units_filed_by_a_later_training_reach_a_reader_that_held_the_lists(tmp_path: Path) -> None:
    """A reader's lists built while units were not filed yet (a training under way) give them empty lists; the
    training's filing transactions mark it, and the reader's next search rebuilds the lists."""
    pages = topic_pages(12, 200)
    trainer = _store(tmp_path / "c", pages)
    trainer.train_cells(k=16)
    with trainer._write() as conn:  # as if the training had not filed d7 yet
        conn.execute("DELETE FROM unit_cells WHERE page_id = (SELECT id FROM pages WHERE doc_id = 'd7')")
    reader = LocalStore.open(tmp_path / "c")
    opts = SearchOptions(k=1, candidates=1, first_stage="pooled_ivf", prefetch=1)
    q = Query(pages[7][:8], None)
    assert reader.search(q, opts)[0].doc_id != "d7"  # reached by imputation only: outranked
    assert trainer.train_cells() == (trainer.cells, 1)
    assert reader.search(q, opts)[0].doc_id == "d7"
    reader.close()
    trainer.close()


def test_a_recode_keeps_the_cells_and_files_every_unit(tmp_path: Path) -> None:
    from colbert.catalog import Catalog

    pages = topic_pages(13, 40)
    with Catalog(tmp_path) as catalog:
        store = catalog.create("lib", CollectionConfig(DENSE, D, codec="float16"))  # type: ignore[arg-type]
        for i, p in enumerate(pages):
            store.add_document(f"d{i}", [record(p)])
        book, _ = store.train_cells(k=8)  # type: ignore[attr-defined]
        catalog.recode("lib", "binary")
        recoded = catalog.get("lib")
        assert isinstance(recoded, LocalStore)
        with recoded._read() as conn:
            assert conn.execute("SELECT COUNT(*) FROM unit_cells").fetchone()[0] == 40
        assert recoded.train_cells()[1] == 0  # nothing left to file
        assert recoded.cells is not None
        assert recoded.cells.to_bytes() == book.to_bytes()
        opts = SearchOptions(k=3, candidates=10, first_stage="pooled_ivf", prefetch=20)
        assert recoded.search(Query(pages[11][:8], None), opts)[0].doc_id == "d11"


def test_a_unit_filed_by_its_own_write_is_in_the_cells_training_would_give_it(tmp_path: Path) -> None:
    """Both file a unit by the sketch a handle holds (int8 codes and scales), not by the float16 centroids: a
    centroid near a cell boundary would otherwise land in different cells depending on when it was filed."""
    pages = topic_pages(5, 200)
    store = _store(tmp_path / "c", pages[:100])
    book, _ = store.train_cells(k=256)
    for i, p in enumerate(pages[100:], start=100):
        store.add_document(f"d{i}", [record(p)])
    assert_filed_under(store, book)
    store.close()


def assert_filed_under(store: LocalStore, book: CellBook) -> None:
    """``book`` is the stored cell book, every live unit has its cell row, and it is the one ``book`` gives the
    unit's held sketch (all read in one transaction)."""
    with store._read() as conn:
        snap, _ = store._views_for(conn, sketches=True)
        stored = {int(i): bytes(c) for i, c in conn.execute("SELECT page_id, data FROM unit_cells")}
        assert load_cell_book(conn) is book
    expected = assign_cells(book, widen_sketches(snap.rows.sketch[snap.alive], snap.rows.scales[snap.alive]))
    assert stored == {int(i): c for i, c in zip(snap.ids[snap.alive], expected, strict=True)}


def test_the_catalog_trains_cells_through_its_backend(tmp_path: Path) -> None:
    """``Catalog.train_cells`` (what the service calls): the embedded backend trains and files; Qdrant, which has no
    such first stage, refuses with the typed error the service answers as 422 ``first_stage_unavailable``.
    ``Catalog.cells`` (what the service asks before a search): K once trained, also for a handle opened before the
    training (another process's), None before and always on Qdrant."""
    from qdrant_client import QdrantClient

    from colbert.catalog import Catalog

    with Catalog(tmp_path / "local") as catalog, Catalog(tmp_path / "local") as other:
        store = catalog.create("lib", CollectionConfig(DENSE, D))
        for i, p in enumerate(topic_pages(3, 12)):
            store.add_document(f"d{i}", [record(p)])
        assert (catalog.cells("lib"), other.cells("lib")) == (None, None)  # other's handle opened now
        assert catalog.train_cells("lib", 4) == (4, 12)
        assert catalog.train_cells("lib") == (4, 0)
        assert (catalog.cells("lib"), other.cells("lib")) == (4, 4)
        with pytest.raises(CollectionNotFoundError):
            catalog.cells("nothing")
    with Catalog(tmp_path / "q", backend="qdrant", qdrant_client=QdrantClient(":memory:")) as catalog:
        catalog.create("q", CollectionConfig(DENSE, D))
        assert catalog.cells("q") is None
        with pytest.raises(FirstStageUnavailableError, match="embedded backend's"):
            catalog.train_cells("q")
