"""The full-text side of both backends, below the Store: FTS5 BM25 against a hand computation, hostile
queries as plain words, and Qdrant sparse vectors with the IDF modifier."""

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
from colbert.qdrant.sparse import AVGDL, K1, SPARSE_NAME, B, document_vector, query_vector, term_index
from colbert.store import UnitRecord
from colbert.text import tokens
from tests.colbert.store_backends import DENSE, F32, _unit

DOCS = {
    1: "The cat sat on the mat.",
    2: "A dog chased the cat; the cat ran.",
    3: "Error E-4711: disk quota exceeded (code X7200B).",
    4: "Quarterly revenue rose in the north region.",
    5: None,  # a unit without text (an image page)
}


def _bm25(term: str, doc: int, docs: dict[int, str]) -> float:
    """BM25 of one term as FTS5 computes it (k1 1.2, b 0.75, IDF floored at 1e-6), written out here."""
    lengths = {d: len(tokens(t)) for d, t in docs.items()}
    n_docs, avgdl = len(docs), sum(lengths.values()) / len(docs)
    df = sum(term in tokens(t) for t in docs.values())
    idf = max(math.log((n_docs - df + 0.5) / (df + 0.5)), 1e-6)
    tf = tokens(docs[doc]).count(term)
    return idf * tf * 2.2 / (tf + 1.2 * (1 - 0.75 + 0.75 * lengths[doc] / avgdl))


@pytest.fixture
def conn() -> sqlite3.Connection:
    c = sqlite3.connect(":memory:")
    c.execute(FTS_DDL)
    fts_add(c, list(DOCS.items()))
    return c


def test_bm25_equals_the_hand_computation(conn: sqlite3.Connection) -> None:
    texts = {d: t for d, t in DOCS.items() if t}
    ids, scores = fts_search(conn, "revenue north", 10)
    assert ids.tolist() == [4]
    assert scores[0] == pytest.approx(_bm25("revenue", 4, texts) + _bm25("north", 4, texts), rel=1e-5)
    ids, scores = fts_search(conn, "x7200b disk", 10)
    assert ids.tolist() == [3]
    assert scores[0] == pytest.approx(_bm25("x7200b", 3, texts) + _bm25("disk", 3, texts), rel=1e-5)
    # "cat": two of four texts hold it -> IDF ln(2.5/2.5) = 0, floored; doc 2 (tf 3) still ranks first
    ids, _ = fts_search(conn, "cat", 10)
    assert ids.tolist() == [2, 1]


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


def test_sparse_vectors_with_idf_in_qdrant() -> None:
    vec = document_vector("the cat the hat")
    assert vec is not None
    norm = K1 * (1 - B + B * 4 / AVGDL)
    weights = dict(zip(vec.indices, vec.values, strict=True))
    assert weights[term_index("the")] == pytest.approx(2 * (K1 + 1) / (2 + norm))
    assert weights[term_index("cat")] == pytest.approx(1 * (K1 + 1) / (1 + norm))
    assert document_vector(None) is None
    assert document_vector("***") is None
    assert query_vector("NEAR(x") is not None
    client = QdrantClient(":memory:")
    client.create_collection(
        "t", vectors_config={}, sparse_vectors_config={SPARSE_NAME: qm.SparseVectorParams(modifier=qm.Modifier.IDF)}
    )
    points = [qm.PointStruct(id=d, vector={SPARSE_NAME: document_vector(t)}, payload={}) for d, t in DOCS.items() if t]
    client.upsert("t", points)
    res = client.query_points("t", query=query_vector('"x7200b'), using=SPARSE_NAME, limit=10)
    assert [p.id for p in res.points] == [3]
    res = client.query_points("t", query=query_vector("cat"), using=SPARSE_NAME, limit=10)
    assert [p.id for p in res.points] == [2, 1]


def test_floored_terms_are_left_out_of_the_query_with_the_same_ranking(tmp_path: Path) -> None:
    """A word in at least half of the units has FTS5's floor IDF (1e-6): the store leaves it out of the MATCH,
    which keeps the ranking FTS5 gives with it (up to ~1e-6) and drops units matching nothing else; once the
    word is in fewer than half of the units (a new index version) it is searched again."""
    rng = np.random.default_rng(3)
    store = LocalStore.create(tmp_path / "s", F32)
    texts = {f"d{i}": f"common filler{i}" + (" rare" * i if i in (1, 2) else "") for i in range(8)}
    texts["only"] = "common"  # matches the query only through the floored word
    for doc, text in texts.items():
        store.add_document(
            doc, [UnitRecord(0, _unit(rng.normal(size=DENSE)), _unit(rng.normal(size=(4, 16))), text=text)]
        )
    hits = store.search(None, None, 20, mode="text", query_text="common rare")
    conn = sqlite3.connect(tmp_path / "s" / "index.sqlite")
    ids, scores = fts_search(conn, "common rare", 20)  # FTS5 with every term, independent of the store's filter
    docs = dict(conn.execute("SELECT id, doc_id FROM pages").fetchall())
    full = [(docs[int(i)], float(s)) for i, s in zip(ids, scores, strict=True)]
    informative_part = [(d, s) for d, s in full if s > 1e-5]
    assert [h.doc_id for h in hits] == [d for d, _ in informative_part]  # same order
    assert [h.score for h in hits] == pytest.approx([s for _, s in informative_part], abs=1e-5)
    assert [h.doc_id for h in hits] == ["d2", "d1"]
    assert "only" in {d for d, _ in full}  # FTS5 with the floored word returns it, at a score below 1e-5
    assert store.search(None, None, 20, mode="text", query_text="common")  # nothing else to search: kept
    for i in range(12):  # now "common" is in 9 of 21 units: informative again, at the new version
        unit = UnitRecord(0, _unit(rng.normal(size=DENSE)), _unit(rng.normal(size=(4, 16))), text=f"other{i}")
        store.add_document(f"e{i}", [unit])
    assert "only" in {h.doc_id for h in store.search(None, None, 30, mode="text", query_text="common rare")}
    conn.close()
    store.close()
