"""The full-text side of both backends: the embedded BM25 and Qdrant's sparse vectors with the IDF modifier
against one hand computation (Lucene's IDF, always positive), hostile queries as plain words to FTS5."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from colbert.local import LocalStore
from colbert.local.fts import FTS_DDL, fts_add, fts_delete, fts_search, match_expression
from colbert.qdrant.sparse import AVGDL, SPARSE_NAME, document_vector, query_vector, term_index
from colbert.search import Query, SearchOptions
from colbert.store import UnitRecord
from colbert.text import tokens
from tests.colbert.bm25_reference import reference_bm25
from tests.colbert.store_backends import DENSE, F32, _unit

DOCS = {
    1: "The cat sat on the mat.",
    2: "A dog chased the cat; the cat ran.",
    3: "Error E-4711: disk quota exceeded (code X7200B).",
    4: "Quarterly revenue rose in the north region.",
    5: None,  # a unit without text (an image page)
}


def _bm25(term: str, doc: int, docs: dict[int, str], avgdl: float | None = None) -> float:
    """BM25 of one term (k1 1.2, b 0.75, Lucene's IDF ln(1 + (N - n + 0.5) / (n + 0.5))), written out here;
    ``avgdl`` None: the texts' average length (the embedded backend), else fixed (the Qdrant backend)."""
    lengths = {d: len(tokens(t)) for d, t in docs.items()}
    n_docs = len(docs)
    avgdl = sum(lengths.values()) / len(docs) if avgdl is None else avgdl
    df = sum(term in tokens(t) for t in docs.values())
    idf = math.log(1 + (n_docs - df + 0.5) / (df + 0.5))
    tf = tokens(docs[doc]).count(term)
    return idf * tf * 2.2 / (tf + 1.2 * (1 - 0.75 + 0.75 * lengths[doc] / avgdl))


@pytest.fixture
def conn() -> sqlite3.Connection:
    c = sqlite3.connect(":memory:")
    c.execute(FTS_DDL)
    fts_add(c, list(DOCS.items()))
    return c


def test_bm25_equals_the_hand_computation(tmp_path: Path, conn: sqlite3.Connection) -> None:
    texts = {d: t for d, t in DOCS.items() if t}
    rng = np.random.default_rng(0)
    store = LocalStore.create(tmp_path / "s", F32)
    for d, t in DOCS.items():
        store.add_document(
            f"u{d}", [UnitRecord(0, _unit(rng.normal(size=DENSE)), _unit(rng.normal(size=(2, 16))), text=t)]
        )
    for query, doc in (("revenue north", 4), ("x7200b disk", 3)):
        hits = store.search(Query(text=query), SearchOptions(k=10, mode="text"))
        assert [h.doc_id for h in hits] == [f"u{doc}"]
        want = sum(_bm25(t, doc, texts) for t in tokens(query))
        assert hits[0].score == pytest.approx(want, rel=1e-6)
    # "cat": two of four texts hold it. FTS5's IDF ln(2.5/2.5) = 0 was floored to 1e-6; Lucene's is ln 2
    hits = store.search(Query(text="cat"), SearchOptions(k=10, mode="text"))
    assert [h.doc_id for h in hits] == ["u2", "u1"]
    assert [h.score for h in hits] == pytest.approx([_bm25("cat", 2, texts), _bm25("cat", 1, texts)], rel=1e-6)
    assert hits[1].score > 0.5
    assert fts_search(conn, "cat", 10)[0].tolist() == [2, 1]  # FTS5's postings: the same units
    store.close()
    vec = document_vector("the cat the hat")
    assert vec is not None
    norm = 1.2 * (1 - 0.75 + 0.75 * 4 / AVGDL)
    weights = dict(zip(vec.indices, vec.values, strict=True))
    assert weights[term_index("the")] == pytest.approx(2 * 2.2 / (2 + norm))
    assert weights[term_index("cat")] == pytest.approx(1 * 2.2 / (1 + norm))
    assert document_vector(None) is None
    assert document_vector("***") is None
    assert query_vector("NEAR(x") is not None


def test_qdrant_sparse_scores_are_the_same_bm25(conn: sqlite3.Connection) -> None:
    """Qdrant's IDF modifier is the embedded backend's IDF: sparse scores equal the hand computation with the
    fixed AVGDL (the one difference from the embedded backend, which uses the live average)."""
    texts = {d: t for d, t in DOCS.items() if t}
    client = QdrantClient(":memory:")
    client.create_collection(
        "t", vectors_config={}, sparse_vectors_config={SPARSE_NAME: qm.SparseVectorParams(modifier=qm.Modifier.IDF)}
    )
    points = [qm.PointStruct(id=d, vector={SPARSE_NAME: document_vector(t)}, payload={}) for d, t in DOCS.items() if t]
    client.upsert("t", points)
    res = client.query_points("t", query=query_vector('"x7200b'), using=SPARSE_NAME, limit=10)
    assert [p.id for p in res.points] == [3]
    assert res.points[0].score == pytest.approx(_bm25("x7200b", 3, texts, AVGDL), rel=1e-5)
    res = client.query_points("t", query=query_vector("cat"), using=SPARSE_NAME, limit=10)
    assert [p.id for p in res.points] == [2, 1]
    by_hand = [_bm25("cat", 2, texts, AVGDL), _bm25("cat", 1, texts, AVGDL)]
    assert [p.score for p in res.points] == pytest.approx(by_hand, rel=1e-5)


@pytest.mark.parametrize(
    "query",
    ['"unbalanced', "NEAR(cat mat)", "cat*", "-cat", "cat)", "((cat", "cat AND NOT dog", "text:cat", "^cat", "'"],
)
def test_hostile_queries_are_plain_words(conn: sqlite3.Connection, query: str) -> None:
    ids, _ = fts_search(conn, query, 10)  # never an sqlite3.OperationalError
    expected = set()
    for word in tokens(query):
        expected |= {d for d, t in DOCS.items() if t and word in tokens(t)}
    assert set(ids.tolist()) == expected


def test_no_tokens_no_results(conn: sqlite3.Connection) -> None:
    assert match_expression("*** ---") is None
    assert fts_search(conn, "*** ---", 10)[0].size == 0


def test_filter_inside_bm25_and_delete(conn: sqlite3.Connection) -> None:
    ids, _ = fts_search(conn, "cat", 10, ("SELECT 1", []))
    assert ids.tolist() == [1]
    fts_delete(conn, [(2, DOCS[2]), (5, None)])
    assert fts_search(conn, "cat", 10)[0].tolist() == [1]
    assert fts_search(conn, "dog", 10)[0].size == 0
    # after the delete the statistics are those of a fresh index over the rest
    fresh = sqlite3.connect(":memory:")
    fresh.execute(FTS_DDL)
    fts_add(fresh, [(d, t) for d, t in DOCS.items() if d != 2])
    for q in ("cat mat", "error code", "the"):
        assert fts_search(conn, q, 10)[1].tolist() == pytest.approx(fts_search(fresh, q, 10)[1].tolist())


def test_the_readme_query_finds_text_on_a_two_document_collection(tmp_path: Path) -> None:
    """Issue 25: with FTS5's IDF every word held by half of a small collection was dropped, so the README's
    example query found nothing in text mode. Every word counts now: the page about revenue by region comes
    first, both documents that share a query word are found, scores are far from 0 (they printed as 0.0000)."""
    rng = np.random.default_rng(3)
    store = LocalStore.create(tmp_path / "s", F32)
    texts = {
        "report": "Quarterly report. Revenue by region: the north region had the highest revenue this quarter.",
        "notes": "Release notes: which settings changed in this release, and the highest supported version.",
    }
    for doc, text in texts.items():
        unit = UnitRecord(0, _unit(rng.normal(size=DENSE)), _unit(rng.normal(size=(4, 16))), text=text)
        store.add_document(doc, [unit])
    hits = store.search(Query(text="Which region had the highest revenue?"), SearchOptions(k=10, mode="text"))
    assert [h.doc_id for h in hits] == ["report", "notes"]
    assert hits[1].score > 0.1
    assert hits[0].score > 2 * hits[1].score
    want = reference_bm25(tmp_path / "s" / "index.sqlite", "Which region had the highest revenue?", 10)
    assert [h.score for h in hits] == pytest.approx([s for _, _, s in want], rel=1e-6)
    store.close()


def test_the_readme_query_finds_text_in_the_samples(tmp_path: Path) -> None:
    """The README's command searches samples/report.pdf (3 pages) for "Which region had the highest revenue?":
    "the" and "revenue" are on every page and "region" on 2 of 3, so FTS5's IDF counted none of them (scores
    ~1e-6, printed as 0.0000). Now the two pages naming a region come first, with real scores."""
    pymupdf = pytest.importorskip("pymupdf")
    samples = Path(__file__).resolve().parents[2] / "samples" / "report.pdf"
    with pymupdf.open(samples) as pdf:
        pages = [page.get_text() for page in pdf]
    rng = np.random.default_rng(4)
    store = LocalStore.create(tmp_path / "s", F32)
    units = [
        UnitRecord(p + 1, _unit(rng.normal(size=DENSE)), _unit(rng.normal(size=(4, 16))), text=t)
        for p, t in enumerate(pages)
    ]
    store.add_document("report", units)
    query = "Which region had the highest revenue?"
    hits = store.search(Query(text=query), SearchOptions(k=10, mode="text"))
    assert len(hits) == 3
    assert all(h.score > 0.05 for h in hits)
    with_region = {p + 1 for p, t in enumerate(pages) if "region" in tokens(t)}
    assert {h.unit for h in hits[: len(with_region)]} == with_region
    want = reference_bm25(tmp_path / "s" / "index.sqlite", query, 10)
    assert [h.score for h in hits] == pytest.approx([s for _, _, s in want], rel=1e-6)
    store.close()
