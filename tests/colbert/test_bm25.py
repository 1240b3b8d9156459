"""The embedded backend's in-memory BM25 (colbert.local.bm25) against a plain-Python BM25 over the stored texts
(tests/colbert/bm25_reference.py; FTS5 gives the postings): same units, same order, same scores — after adds,
deletes, replaces, another handle's writes, a rebuild, with filters, ties at the cut and any cache size — and
every word of a query counts, however common (Lucene's IDF)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from colbert.local import LocalStore
from colbert.local import bm25 as _bm25
from colbert.local.bm25 import PostingCache, TextUnits
from colbert.local.options import LocalOptions
from colbert.search import Query, SearchOptions
from colbert.store import UnitRecord
from tests.colbert.bm25_reference import reference_bm25
from tests.colbert.store_backends import DENSE, F32, _unit

WORDS = [f"w{i}" for i in range(30)]


def _text(rng: np.random.Generator) -> str | None:
    roll = rng.random()
    if roll < 0.1:
        return None  # an image page: no text layer
    if roll < 0.15:
        return "*** --- ()"  # text without a single token: FTS5 does not index it
    n = int(rng.integers(1, 25))
    return " ".join(WORDS[min(int(rng.zipf(1.4)) - 1, len(WORDS) - 1)] for _ in range(n))


def _add(store: LocalStore, rng: np.random.Generator, doc: str, pages: int, group: int) -> None:
    units = [
        UnitRecord(p, _unit(rng.normal(size=DENSE)), _unit(rng.normal(size=(3, 16))), text=_text(rng))
        for p in range(pages)
    ]
    store.add_document(doc, units, metadata={"group": group}, replace=True)


def _fts5(db: Path, query: str, limit: int, flt: dict[str, Any] | None = None) -> list[tuple[str, int, float]]:
    return reference_bm25(db, query, limit, flt)


def _same(
    store: LocalStore, db: Path, rng: np.random.Generator, queries: int = 25, flt: dict[str, Any] | None = None
) -> None:
    for _ in range(queries):
        query = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 5))))
        limit = int(rng.integers(1, 40))
        hits = store.search(Query(text=query), SearchOptions.of(k=limit, mode="text", filter=flt, candidates=limit))
        want = _fts5(db, query, limit, flt)
        assert [(h.doc_id, h.unit) for h in hits] == [(d, u) for d, u, _ in want], query
        assert [h.score for h in hits] == pytest.approx([s for _, _, s in want], rel=1e-6), query


def _generation(store: LocalStore) -> int:
    store.search(Query(text="w0"), SearchOptions(k=1, mode="text"))  # brings the store's text view up to date
    assert store._text is not None
    return store._text.generation


@pytest.mark.parametrize("cache_bytes", [0, 600, 64 << 20])
def test_in_memory_bm25_equals_fts5_through_every_kind_of_write(
    tmp_path: Path, cache_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_bm25, "_REBUILD_DEAD", 8)  # so that this small index is rebuilt too
    rng = np.random.default_rng(cache_bytes)
    options = LocalOptions(term_cache_bytes=cache_bytes)
    store = LocalStore.create(tmp_path / "s", F32, options)
    db = tmp_path / "s" / "index.sqlite"
    for i in range(20):
        _add(store, rng, f"d{i}", int(rng.integers(1, 5)), i % 3)
    _same(store, db, rng)
    _same(store, db, rng, flt={"group": {"$in": [0, 2]}})
    for i in range(0, 20, 3):  # replaces: new unit ids, the old ones deleted
        _add(store, rng, f"d{i}", int(rng.integers(1, 5)), i % 3)
    store.delete_document("d1")
    _same(store, db, rng)
    other = LocalStore.open(tmp_path / "s", options=options)  # another handle's writes, seen by the next search
    for i in range(20, 26):
        _add(other, rng, f"d{i}", 3, 1)
    other.delete_document("d2")
    _same(store, db, rng)
    _same(store, db, rng, flt={"group": 1})
    generation = _generation(store)
    for i in range(3, 26):  # most units dead: the text view is rebuilt (a new generation)
        store.delete_document(f"d{i}")
    _add(store, rng, "late", 4, 0)
    _same(store, db, rng)
    assert _generation(store) > generation
    if cache_bytes:
        assert 0 < store._postings.nbytes <= cache_bytes
    other.close()
    store.close()


def test_ties_at_the_cut_go_to_the_lower_ids(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    store = LocalStore.create(tmp_path / "s", F32)
    for i in range(12):  # identical texts: identical scores
        unit = UnitRecord(0, _unit(rng.normal(size=DENSE)), _unit(rng.normal(size=(3, 16))), text="alpha beta")
        store.add_document(f"t{i:02d}", [unit])
    other = UnitRecord(0, _unit(rng.normal(size=DENSE)), _unit(rng.normal(size=(3, 16))), text="beta")
    store.add_document("x", [other])
    for limit in (1, 5, 12, 13):
        hits = store.search(Query(text="alpha"), SearchOptions(k=limit, mode="text", candidates=limit))
        assert [h.doc_id for h in hits] == [f"t{i:02d}" for i in range(min(limit, 12))]
        want = _fts5(tmp_path / "s" / "index.sqlite", "alpha", limit)
        assert [h.doc_id for h in hits] == [d for d, _, _ in want]
    store.close()


def test_a_cache_entry_read_by_a_newer_view_serves_an_older_one() -> None:
    """Two searches at two index versions share the cache: the older one sees only its own units."""
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE VIRTUAL TABLE unit_fts USING fts5(terms, content='', "
        "tokenize=\"unicode61 remove_diacritics 0 categories 'L* N* M* Co'\")"
    )
    conn.executemany("INSERT INTO unit_fts (rowid, terms) VALUES (?, ?)", [(1, "a b"), (4, "a a"), (9, "a")])
    new = TextUnits.build(0, np.array([1, 4, 9]), np.array([2, 2, 1]))
    old = TextUnits.build(0, np.array([1, 4]), np.array([2, 2]))
    cache = PostingCache(1 << 20)
    rows, tf = cache.postings(conn, new, "a")
    assert (rows.tolist(), tf.tolist()) == ([0, 1, 2], [1, 2, 1])
    rows, tf = cache.postings(conn, old, "a")  # served from the newer entry, cut to the older view's rows
    assert (rows.tolist(), tf.tolist()) == ([0, 1], [1, 2])
    conn.close()


def test_a_write_extends_cached_postings_instead_of_rereading_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After another handle's write, a cached term's entry gains the new units holding it (FTS5 rowid seek + their
    stored text) without re-reading its list; past _EXTEND_MAX such units the list is read again. Same ranking
    as FTS5 either way."""
    monkeypatch.setattr(_bm25, "_EXTEND_MAX", 3)
    rng = np.random.default_rng(7)
    store = LocalStore.create(tmp_path / "s", F32)
    db = tmp_path / "s" / "index.sqlite"
    for i in range(15):
        _add(store, rng, f"d{i}", 3, 0)
    query = "w1 w2 w5"
    _same_query(store, db, query)
    reads = store._postings.reads
    other = LocalStore.open(tmp_path / "s")
    unit = UnitRecord(0, _unit(rng.normal(size=DENSE)), _unit(rng.normal(size=(3, 16))), text="w1 w1 w2 x y")
    other.add_document("new", [unit])
    _same_query(store, db, query)
    assert store._postings.reads == reads  # extended, not re-read
    for i in range(4):  # 4 new units hold w5: more than _EXTEND_MAX, so w5's list is read again
        unit = UnitRecord(0, _unit(rng.normal(size=DENSE)), _unit(rng.normal(size=(3, 16))), text=f"w5 z{i}")
        other.add_document(f"many{i}", [unit])
    _same_query(store, db, query)
    assert store._postings.reads == reads + 1
    other.close()
    store.close()


def _same_query(store: LocalStore, db: Path, query: str) -> None:
    hits = store.search(Query(text=query), SearchOptions(k=50, mode="text", candidates=50))
    want = _fts5(db, query, 50)
    assert [(h.doc_id, h.unit) for h in hits] == [(d, u) for d, u, _ in want]
    assert [h.score for h in hits] == pytest.approx([s for _, _, s in want], rel=1e-6)


def test_a_word_on_most_units_still_counts(tmp_path: Path) -> None:
    """FTS5's IDF is <= 0 for a word that half of the units hold (floored at 1e-6): on a small collection most
    words of a query counted for nothing, and units matching only them scored ~1e-6. Lucene's IDF keeps every
    word positive: a unit holding the common word twice outranks one holding it once, scores are O(0.1..1)."""
    rng = np.random.default_rng(5)
    store = LocalStore.create(tmp_path / "s", F32, LocalOptions(term_cache_bytes=0))
    db = tmp_path / "s" / "index.sqlite"
    for doc, text in (("twice", "common common x"), ("once", "common y z"), ("other", "common rare1 w")):
        unit = UnitRecord(0, _unit(rng.normal(size=DENSE)), _unit(rng.normal(size=(3, 16))), text=text)
        store.add_document(doc, [unit])
    hits = store.search(Query(text="common"), SearchOptions(k=10, mode="text"))
    assert [h.doc_id for h in hits] == ["twice", "once", "other"]
    assert all(h.score > 0.05 for h in hits), [h.score for h in hits]
    _same_query(store, db, "common rare1")
    _same_query(store, db, "common")
    store.close()
