"""The residual codecs and the ivf first stage in the embedded index (issue 26 items 1-4): search scores exactly
the stored (decoded) values; the codebook is trained once and kept; the inverted lists follow adds, replaces and
deletes from another handle without a rebuild; a 1 % filter still returns k hits; hybrid works; a recode through
export/import keeps every document; Qdrant refuses the codecs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from colbert.catalog import Catalog
from colbert.codebook import train
from colbert.errors import CodecError, InvalidQueryError
from colbert.local import LocalOptions, LocalStore
from colbert.local.ivf import IvfSnapshot, ivf_top
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, UnitRecord
from colbert.transfer import export_collection, import_collection

D, DENSE = 16, 8


def topic_pages(seed: int, n_pages: int, tokens: int = 24, topics: int = 30) -> list[np.ndarray]:
    """Pages about 3 of ``topics`` topics each: their tokens are those topics' directions plus noise."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).standard_normal((topics, D))
    out = []
    for _ in range(n_pages):
        mine = rng.choice(topics, 3, replace=False)
        x = centres[mine[rng.integers(0, 3, tokens)]] + 0.3 * rng.standard_normal((tokens, D))
        out.append((x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32))
    return out


def record(mv: np.ndarray, text: str | None = None) -> UnitRecord:
    return UnitRecord(0, np.ones(DENSE, np.float32), mv, text=text)


def naive(q: np.ndarray, v: np.ndarray) -> float:
    return float((q.astype(np.float64) @ v.astype(np.float64).T).max(axis=1).sum())


# a residual codec's codebook: (bucket levels, dimensions per sub-vector); the pq codecs name 256 sub-centroids
BOOK_SHAPE = {"residual2": (4, 1), "residual1": (2, 1), "residualpq2": (256, 4), "residualpq1": (256, 8)}


@pytest.mark.parametrize("codec", list(BOOK_SHAPE))
def test_search_scores_the_stored_values(tmp_path: Path, codec: str) -> None:
    pages = topic_pages(1, 40)
    store = LocalStore.create(tmp_path / "c", CollectionConfig(DENSE, D, codec=codec))  # type: ignore[arg-type]
    for i, p in enumerate(pages):
        store.add_document(f"d{i}", [record(p)])
    book = store.codebook()
    assert book is not None
    assert (book.levels, book.width) == BOOK_SHAPE[codec]
    stored = {f"d{i}": store.get_unit(f"d{i}", 0).multivector for i in range(40)}  # type: ignore[union-attr]
    assert stored["d7"].shape == pages[7].shape
    q = pages[3][:6]
    hits = store.search(Query(q, None), SearchOptions(k=40, exhaustive=True))
    want = {d: naive(q, v) for d, v in stored.items()}
    assert len(hits) == 40
    for h in hits:
        assert h.score == pytest.approx(want[h.doc_id], abs=2e-5)
    assert [h.doc_id for h in hits[:5]] == sorted(want, key=lambda d: (-want[d], d))[:5]
    reopened = LocalStore.open(tmp_path / "c")  # the codebook blob (format 1, 2 or 3) read back
    assert reopened.codebook().to_bytes() == book.to_bytes()  # type: ignore[union-attr]
    store.close()
    reopened.close()


def test_codebook_is_trained_once_and_kept(tmp_path: Path) -> None:
    pages = topic_pages(2, 30)
    config = CollectionConfig(DENSE, D, codec="residual2")  # type: ignore[arg-type]
    store = LocalStore.create(tmp_path / "c", config)
    book = store.train_codebook(np.concatenate(pages), k=32)
    assert book.k == 32
    with pytest.raises(CodecError, match="trained already"):
        store.train_codebook(np.concatenate(pages))
    store.add_document("a", [record(pages[0])])
    other = LocalStore.open(tmp_path / "c")
    assert other.codebook() is not None
    assert other.codebook().to_bytes() == book.to_bytes()  # type: ignore[union-attr]
    other.add_document("b", [record(pages[1])])
    assert store.get_unit("b", 0) is not None
    store.close()
    other.close()
    plain = LocalStore.create(tmp_path / "f", CollectionConfig(DENSE, D))
    with pytest.raises(CodecError, match="no codebook"):
        plain.train_codebook(np.concatenate(pages))
    plain.add_document("a", [record(pages[0])])
    with pytest.raises(InvalidQueryError, match="residual codec"):
        plain.search(Query(pages[0], None), SearchOptions(k=1, first_stage="ivf"))
    with pytest.raises(ValueError, match="residual3"):
        LocalStore.create(tmp_path / "x", CollectionConfig(DENSE, D, codec="residual3"))  # type: ignore[arg-type]


def test_ivf_scores_are_the_centroid_interaction_when_every_centroid_is_probed() -> None:
    """Hand-built: with nprobe = K nothing is imputed, so the approximate score is Σ_i max over the unit's
    centroids of q_i · centroid (PLAID's centroid interaction), computed here exhaustively."""
    pages = topic_pages(3, 20)
    book = train(np.concatenate(pages), 4, k=16)
    lists = [np.unique(book.assign(p)).astype(np.uint16) for p in pages]
    snap = IvfSnapshot.build((20, 0), book.k, np.arange(1, 21), lists)
    q = pages[5][:4]
    ids, scores = ivf_top(snap, book, q, 20, nprobe=16, allowed=None)
    cs = q @ book.centroids.T
    want = {i + 1: float(cs[:, lists[i]].max(axis=1).sum()) for i in range(20)}
    assert sorted(ids.tolist()) == list(range(1, 21))
    for i, s in zip(ids.tolist(), scores.tolist(), strict=True):
        assert s == pytest.approx(want[i], abs=1e-5)
    assert ids.tolist() == sorted(want, key=lambda i: (-want[i], i))
    dead = snap.apply((20, 1), np.empty(0, np.int64), [], [6])
    assert 6 not in ivf_top(dead, book, q, 20, 16, None)[0].tolist()
    assert ivf_top(dead, book, q, 5, 16, np.array([6, 7, 8]))[0].tolist() == sorted([7, 8], key=lambda i: (-want[i], i))


@pytest.mark.parametrize("codec", ["residual2", "residualpq1"])  # the product-quantized codes keep centroid ids too
def test_ivf_finds_what_exhaustive_finds(tmp_path: Path, codec: str) -> None:
    pages = topic_pages(4, 200)
    store = LocalStore.create(tmp_path / "c", CollectionConfig(DENSE, D, codec=codec))  # type: ignore[arg-type]
    store.train_codebook(np.concatenate(pages))
    for i, p in enumerate(pages):
        store.add_document(f"d{i}", [record(p)])
    agree = 0
    for t in range(10):
        q = pages[t * 13][:8]
        exact = [h.doc_id for h in store.search(Query(q, None), SearchOptions(k=10, exhaustive=True))]
        ivf = [h.doc_id for h in store.search(Query(q, None), SearchOptions(k=10, candidates=60, first_stage="ivf"))]
        assert ivf[0] == exact[0] == f"d{t * 13}"
        agree += len(set(exact) & set(ivf))
    assert agree >= 95  # recall@10 ≥ 0.95 with 30 % of the units reranked


def test_filter_keeping_one_percent_still_returns_k(tmp_path: Path) -> None:
    pages = topic_pages(5, 1000, tokens=8)
    store = LocalStore.create(tmp_path / "c", CollectionConfig(DENSE, D, codec="residual2"))  # type: ignore[arg-type]
    store.train_codebook(np.concatenate(pages))
    for i, p in enumerate(pages):
        store.add_document(f"d{i}", [record(p)], {"keep": i % 100 == 0})
    q = pages[1][:4]  # a unit the filter drops: the probed lists favour units that are filtered out
    hits = store.search(Query(q, None), SearchOptions(k=10, candidates=10, first_stage="ivf", filter={"keep": True}))
    assert sorted(h.doc_id for h in hits) == sorted(f"d{i}" for i in range(0, 1000, 100))
    exact = store.search(Query(q, None), SearchOptions(k=10, exhaustive=True, filter={"keep": True}))
    assert [h.doc_id for h in hits] == [h.doc_id for h in exact]


def test_ivf_follows_writes_of_another_handle(tmp_path: Path) -> None:
    pages = topic_pages(6, 60)
    path = tmp_path / "c"
    writer = LocalStore.create(path, CollectionConfig(DENSE, D, codec="residual2"))  # type: ignore[arg-type]
    writer.train_codebook(np.concatenate(pages))
    for i, p in enumerate(pages[:40]):
        writer.add_document(f"d{i}", [record(p)])
    reader = LocalStore.open(path, options=LocalOptions(first_stage="ivf"))
    opts = SearchOptions(k=3, candidates=10)
    assert reader.search(Query(pages[5][:6], None), opts)[0].doc_id == "d5"  # loads the lists
    writer.add_document("new", [record(pages[50])])
    assert reader.search(Query(pages[50][:6], None), opts)[0].doc_id == "new"
    writer.add_document("d5", [record(pages[55])], replace=True)
    assert reader.search(Query(pages[55][:6], None), opts)[0].doc_id == "d5"
    assert "d5" not in [h.doc_id for h in reader.search(Query(pages[5][:6], None), opts)[:1]]
    writer.delete_document("new")
    assert "new" not in [h.doc_id for h in reader.search(Query(pages[50][:6], None), opts)]
    ivf = reader._lists.get("ivf")
    assert ivf is not None
    assert ivf.n == 42  # 40 + new + the replaced d5: appended, the old rows are tombstones (no rebuild)
    assert int(ivf.alive.sum()) == 40


def test_hybrid_with_ivf(tmp_path: Path) -> None:
    pages = topic_pages(7, 30)
    store = LocalStore.create(tmp_path / "c", CollectionConfig(DENSE, D, codec="residual2"))  # type: ignore[arg-type]
    for i, p in enumerate(pages):
        store.add_document(f"d{i}", [record(p, text=f"page about {'zebra' if i == 17 else 'lions'} number {i}")])
    hits = store.search(
        Query(pages[3][:5], None, text="zebra"), SearchOptions(k=5, candidates=10, mode="hybrid", first_stage="ivf")
    )
    ids = [h.doc_id for h in hits]
    assert "d17" in ids
    assert "d3" in ids


@pytest.mark.parametrize(("source", "target"), [("residual2", "float16"), ("float16", "residual1")])
def test_recode_through_export_import_keeps_every_document(tmp_path: Path, source: str, target: str) -> None:
    pages = topic_pages(8, 12)
    with Catalog(tmp_path / "a") as a:
        store = a.create("lib", CollectionConfig(DENSE, D, codec=source))  # type: ignore[arg-type]
        for i, p in enumerate(pages):
            store.add_document(f"d{i}", [record(p, text=f"t{i}")], {"i": i})
        export_collection(a, "lib", tmp_path / "lib.tar")
        summary = import_collection(a, tmp_path / "lib.tar", name="recoded", codec=target)
        assert (summary.documents, summary.units) == (12, 12)
        recoded = a.get("recoded")
        assert str(recoded.config.codec) == target
        for i in range(12):
            before, after = store.get_unit(f"d{i}", 0), recoded.get_unit(f"d{i}", 0)
            assert before is not None
            assert after is not None
            assert after.text == f"t{i}"
            assert recoded.get_document(f"d{i}").metadata == {"i": i}  # type: ignore[union-attr]
            bound = 0.02 if target == "float16" else 1.0  # float16 keeps the residual values; 1 bit is coarse
            assert np.abs(after.multivector - before.multivector).max() < bound
        q = pages[4][:5]
        assert recoded.search(Query(q, None), SearchOptions(k=1, exhaustive=True))[0].doc_id == "d4"
        with pytest.raises(CodecError, match="unknown codec"):
            import_collection(a, tmp_path / "lib.tar", name="bad", codec="residual3")


def test_qdrant_refuses_residual_codecs(tmp_path: Path) -> None:
    with (
        Catalog(tmp_path, backend="qdrant", qdrant_client=QdrantClient(":memory:")) as catalog,
        pytest.raises(CodecError, match="Qdrant backend cannot store codec residual2"),
    ):
        catalog.create("r", CollectionConfig(DENSE, D, codec="residual2"))  # type: ignore[arg-type]


def test_kill_9_mid_write_keeps_codes_lists_and_codebook_whole(tmp_path: Path) -> None:
    """The durability writer (tests/colbert/durability_writer.py) on a residual2 collection, killed at random:
    every acknowledged document is there, stored exactly as the codebook encodes its pages, and the centroid
    lists hold exactly the units there are."""
    import os
    import random
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    from tests.colbert.durability_writer import DENSE as W_DENSE
    from tests.colbert.durability_writer import DIM as W_DIM
    from tests.colbert.durability_writer import pages_for

    directory = tmp_path / "idx"
    LocalStore.create(directory, CollectionConfig(W_DENSE, W_DIM, codec="residual2")).close()  # type: ignore[arg-type]
    writer = Path(__file__).with_name("durability_writer.py")
    repo = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))}
    rnd, acked, start = random.Random(26), dict[str, int](), 0
    for _round in range(2):
        cmd = [sys.executable, str(writer), str(directory), str(start)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        time.sleep(rnd.uniform(0.05, 0.5))
        proc.send_signal(signal.SIGKILL)
        lines = [first, *proc.stdout.read().splitlines()]
        proc.stdout.close()
        proc.wait()
        for line in filter(None, (x.strip() for x in lines)):
            _, doc_id, version = line.split()
            acked[doc_id] = int(version[1:])
        start = max(int(d[1:]) for d in acked) + 1
    conn = sqlite3.connect(directory / "index.sqlite")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    pages = {r[0] for r in conn.execute("SELECT id FROM pages")}
    assert {r[0] for r in conn.execute("SELECT page_id FROM unit_centroids")} == pages
    conn.close()
    store = LocalStore.open(directory, options=LocalOptions(first_stage="ivf"))
    book = store.codebook()
    assert book is not None
    docs = {d.doc_id: d for d in store.list_documents(limit=10000)}
    for doc_id, version in acked.items():
        assert int(docs[doc_id].metadata["version"]) >= version
    for doc_id, info in docs.items():
        for rec in pages_for(int(info.metadata["version"])):
            got = store.get_unit(doc_id, rec.unit)
            assert got is not None
            want = book.decode(book.encode(rec.multivector), rec.multivector.shape[0])
            np.testing.assert_array_equal(got.multivector, want)
    probe = pages_for(int(docs["d0"].metadata["version"]))[0]
    # every page a candidate: the ivf lists are read, and the answer does not hang on the first stage's recall
    # (the codebook is trained on the first 40-token document, so its few centroids are shared by every page)
    every = SearchOptions(k=3, candidates=len(pages))
    assert store.search(Query(probe.multivector[:6], None), every)[0].doc_id == "d0"
    store.close()


def test_ivf_as_the_default_serves_residual_collections_and_dense_the_others(tmp_path: Path) -> None:
    """``LocalOptions.first_stage="ivf"`` is a process-wide default over collections of every codec: a collection
    without centroid lists answers as with ``dense``; asking ivf of it by name is still an error."""
    pages = topic_pages(7, 6)
    rng = np.random.default_rng(2)
    with LocalStore.create(tmp_path / "f", CollectionConfig(DENSE, D, codec="float16")) as store:
        for i, page in enumerate(pages):
            store.add_document(f"d{i}", [UnitRecord(0, rng.standard_normal(DENSE).astype(np.float32), page)])
    q = Query(pages[2][:5], rng.standard_normal(DENSE).astype(np.float32))
    path = tmp_path / "f"
    with LocalStore.open(path) as dense, LocalStore.open(path, options=LocalOptions(first_stage="ivf")) as ivf:
        opts = SearchOptions(k=3, candidates=4)
        assert ivf.search(q, opts) == dense.search(q, opts)
        with pytest.raises(InvalidQueryError, match="residual codec"):
            ivf.search(q, SearchOptions(k=3, candidates=4, first_stage="ivf"))
