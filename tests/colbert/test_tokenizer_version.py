"""The tokeniser's version stored with an index (colbert.text.TOKENIZER_VERSION): an embedded index built by older
rules is rebuilt when opened, in one transaction; an index without the key is version 1; a handle open across
another process's rebuild follows it; older code refuses an index built by newer rules. "New rules" are simulated
by a tokeniser that also splits digits from letters (``w12`` → ``w``, ``12``) under version 2."""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient

from colbert import text
from colbert.errors import IndexFormatError
from colbert.local import LocalStore
from colbert.local import bm25 as _bm25
from colbert.local import fts as _fts
from colbert.local import migrate as _migrate
from colbert.local.fts import FTS_DDL, fts_add
from colbert.qdrant import QdrantStore
from colbert.qdrant import sparse as _sparse
from colbert.search import Query, SearchOptions
from colbert.store import Store, UnitRecord
from tests.colbert.bm25_reference import reference_bm25
from tests.colbert.store_backends import DENSE, F32, _unit

OLD_TOKENS = text.tokens
WORDS = ["w12", "w3", "x7200b", "ab12", "cd3", "alpha", "beta9", "gamma", "12", "7200"]
QUERIES = ["12", "w", "7200", "x7200b", "ab12 gamma", "beta9 cd3", "3 b", "alpha 12 w3"]


def _new_tokens(s: str) -> list[str]:
    """Version 2 of the rules: version 1's tokens, with digits split from letters, and without ``gamma`` (so that
    some texts lose every token)."""
    return [part for t in OLD_TOKENS(s) for part in re.findall(r"\d+|\D+", t) if t != "gamma"]


Rules = Callable[[int], None]


@pytest.fixture
def rules(monkeypatch: pytest.MonkeyPatch) -> Rules:
    """``rules(2)`` makes every module that tokenises use the new rules under version 2; ``rules(1)`` goes back."""

    def use(version: int) -> None:
        fn = OLD_TOKENS if version == 1 else _new_tokens
        monkeypatch.setattr(text, "TOKENIZER_VERSION", version)
        for module in (text, _fts, _bm25, _sparse):
            monkeypatch.setattr(module, "tokens", fn)

    return use


def _units(rng: np.random.Generator, pages: int) -> list[UnitRecord]:
    units = []
    for p in range(pages):
        roll = rng.random()
        body = " ".join(rng.choice(WORDS, rng.integers(1, 12)))
        body = None if roll < 0.1 else "*** ---" if roll < 0.15 else "gamma gamma" if roll < 0.25 else body
        units.append(UnitRecord(p, _unit(rng.normal(size=DENSE)), _unit(rng.normal(size=(3, 16))), text=body))
    return units


def _add(store: Store, rng: np.random.Generator, doc: str, pages: int) -> None:
    store.add_document(doc, _units(rng, pages), replace=True)


def _fill(directory: Path, seed: int = 0, docs: int = 12) -> None:
    """An index with history: adds in separate transactions, replaces and deletes."""
    rng = np.random.default_rng(seed)
    with LocalStore.create(directory, F32) as store:
        for i in range(docs):
            _add(store, rng, f"d{i}", int(rng.integers(1, 5)))
        for i in range(0, docs, 4):
            _add(store, rng, f"d{i}", int(rng.integers(1, 5)))
        store.delete_document("d1")


def _db(directory: Path) -> sqlite3.Connection:
    return sqlite3.connect(directory / "index.sqlite")


def _meta_version(directory: Path) -> str | None:
    with _db(directory) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'tokenizer_version'").fetchone()
    return None if row is None else row[0]


def _postings(conn: sqlite3.Connection) -> list[tuple[str, int, int]]:
    """Every (term, unit id, position) the full-text index holds."""
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.v USING fts5vocab(main, unit_fts, instance)")
    return sorted(conn.execute("SELECT term, doc, offset FROM temp.v").fetchall())


def _fresh(directory: Path) -> sqlite3.Connection:
    """A full-text index built now, with the rules in force, from the store's live unit texts (the reference)."""
    with _db(directory) as conn:
        rows = conn.execute("SELECT page_id, text FROM unit_text").fetchall()
    fresh = sqlite3.connect(":memory:")
    fresh.execute(FTS_DDL)
    fts_add(fresh, rows)
    return fresh


def _same_as_fresh(store: LocalStore) -> None:
    """The store's full-text index holds exactly what a fresh build holds, and its text search ranks as a plain
    BM25 over the stored texts under the rules in force (same units, order and scores)."""
    fresh = _fresh(store.directory)
    with _db(store.directory) as conn:
        assert _postings(conn) == _postings(fresh)
    found = 0
    for query in QUERIES:
        want = reference_bm25(store.directory / "index.sqlite", query, 50)
        hits = store.search(Query(text=query), SearchOptions(k=50, mode="text", candidates=50))
        assert [(h.doc_id, h.unit) for h in hits] == [(d, u) for d, u, _ in want], query
        assert [h.score for h in hits] == pytest.approx([s for _, _, s in want], rel=1e-6), query
        found += bool(hits)
    assert found >= len(QUERIES) // 2  # not a comparison of empty results


def test_a_new_index_records_the_tokenizer_version(tmp_path: Path, rules: Rules) -> None:
    LocalStore.create(tmp_path / "one", F32).close()
    rules(2)
    LocalStore.create(tmp_path / "two", F32).close()
    assert (_meta_version(tmp_path / "one"), _meta_version(tmp_path / "two")) == ("1", "2")


def test_an_index_built_by_older_rules_is_rebuilt_when_opened(
    tmp_path: Path, rules: Rules, caplog: pytest.LogCaptureFixture
) -> None:
    _fill(tmp_path / "s")
    with _db(tmp_path / "s") as conn:
        units = conn.execute("SELECT COUNT(*) FROM unit_text").fetchone()[0]
    rules(2)
    with caplog.at_level(logging.INFO, logger="colbert.local.migrate"):
        store = LocalStore.open(tmp_path / "s")
    assert _meta_version(tmp_path / "s") == "2"
    assert f"rebuilt from {units} stored unit texts for tokenizer version 2" in caplog.text
    _same_as_fresh(store)
    # deletes after the migration remove the units' new-rule terms: the index holds exactly the live units
    store.delete_document("d2")
    _add(store, np.random.default_rng(7), "d4", 3)  # a replace: deletes and adds
    store.delete_document("d5")
    _same_as_fresh(store)
    store.close()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="colbert.local.migrate"):
        LocalStore.open(tmp_path / "s").close()  # reopening under the same rules changes nothing
    assert "rebuilt" not in caplog.text


def test_an_index_without_the_key_is_version_1_and_not_rebuilt(
    tmp_path: Path, rules: Rules, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a", "b"):  # as written before the key existed
        _fill(tmp_path / name)
        with _db(tmp_path / name) as conn:
            conn.execute("DELETE FROM meta WHERE key = 'tokenizer_version'")
    with _db(tmp_path / "a") as conn:
        segments = conn.execute("SELECT * FROM unit_fts_data ORDER BY id").fetchall()
    calls: list[int] = []
    real = _migrate.fts_rebuild
    monkeypatch.setattr(_migrate, "fts_rebuild", lambda conn: calls.append(1) or real(conn))
    store = LocalStore.open(tmp_path / "a")  # rules version 1: recorded, nothing rebuilt
    assert _meta_version(tmp_path / "a") == "1"
    assert calls == []
    with _db(tmp_path / "a") as conn:
        assert conn.execute("SELECT * FROM unit_fts_data ORDER BY id").fetchall() == segments
    _same_as_fresh(store)
    store.close()
    rules(2)  # and under version 2 the same kind of index counts as version 1: rebuilt
    store = LocalStore.open(tmp_path / "b")
    assert (_meta_version(tmp_path / "b"), calls) == ("2", [1])
    _same_as_fresh(store)
    store.close()


def test_the_rebuild_is_one_transaction(tmp_path: Path, rules: Rules, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another connection reading during the rebuild sees the old index whole; a failure midway leaves it intact
    and unversioned-as-new, and the next open rebuilds it."""
    _fill(tmp_path / "s")
    with _db(tmp_path / "s") as conn:
        before = _postings(conn)
    seen: list[list[tuple[str, int, int]]] = []
    real = _fts.fts_add

    def add_then_fail(conn: sqlite3.Connection, rows: list[tuple[int, str | None]]) -> None:
        real(conn, rows)
        with _db(tmp_path / "s") as reader:  # another process's reader, mid-rebuild
            seen.append(_postings(reader))
        raise RuntimeError("crash mid-rebuild")

    rules(2)
    monkeypatch.setattr(_fts, "fts_add", add_then_fail)
    with pytest.raises(RuntimeError, match="crash mid-rebuild"):
        LocalStore.open(tmp_path / "s")
    assert seen == [before]
    assert _meta_version(tmp_path / "s") == "1"
    with _db(tmp_path / "s") as conn:
        assert _postings(conn) == before
    monkeypatch.setattr(_fts, "fts_add", real)
    with LocalStore.open(tmp_path / "s") as store:
        _same_as_fresh(store)


def test_a_handle_open_across_another_processs_rebuild(tmp_path: Path, rules: Rules) -> None:
    """A handle loaded under version 1 (text view, cached postings and document counts warm) follows a rebuild
    for its own rules; under other rules it refuses to read or write rather than rank wrongly or corrupt."""
    _fill(tmp_path / "s")
    early = LocalStore.open(tmp_path / "s")
    for query in QUERIES:  # warm every cache of the handle under the old index
        early.search(Query(text=query), SearchOptions(k=50, mode="text", candidates=50))
    rules(2)  # this process's code is now version 2, as is the one that opens the index next
    LocalStore.open(tmp_path / "s").close()
    _same_as_fresh(early)
    early.delete_document("d3")
    _add(early, np.random.default_rng(3), "late", 4)
    _same_as_fresh(early)
    with _db(tmp_path / "s") as conn:
        settled = _postings(conn)
    rules(1)  # a handle of older code: the index was rebuilt for version 2 meanwhile
    with pytest.raises(IndexFormatError, match=r"tokenizer version 2.*restarted"):
        early.search(Query(text="w12"), SearchOptions(k=5, mode="text", candidates=5))
    with pytest.raises(IndexFormatError, match="tokenizer version 2"):
        early.delete_document("d4")
    with pytest.raises(IndexFormatError, match="tokenizer version 2"):
        _add(early, np.random.default_rng(4), "later", 2)
    with _db(tmp_path / "s") as conn:
        assert _postings(conn) == settled
        assert conn.execute("SELECT COUNT(*) FROM documents WHERE doc_id IN ('d4', 'later')").fetchone() == (1,)
    early.close()


def test_older_code_refuses_an_index_built_by_newer_rules(tmp_path: Path) -> None:
    _fill(tmp_path / "s", docs=2)
    with _db(tmp_path / "s") as conn:
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'tokenizer_version'")
        before = _postings(conn)
    with pytest.raises(IndexFormatError, match="tokenizer version 3, newer than this code's 1"):
        LocalStore.open(tmp_path / "s")
    with _db(tmp_path / "s") as conn:
        assert _postings(conn) == before
        conn.execute("UPDATE meta SET value = 'x' WHERE key = 'tokenizer_version'")
    with pytest.raises(IndexFormatError, match="damaged meta table"):
        LocalStore.open(tmp_path / "s")


# -- Qdrant (local mode) -----------------------------------------------------------------------------------


def _qdrant_docs(seed: int) -> list[tuple[str, list[UnitRecord]]]:
    rng = np.random.default_rng(seed)
    return [(f"d{i}", _units(rng, int(rng.integers(1, 5)))) for i in range(12)]


def _qdrant_meta(client: QdrantClient, name: str) -> dict[str, Any]:
    return dict(client.get_collection(name).config.metadata or {})


def _sparse_vectors(client: QdrantClient, name: str) -> dict[tuple[str, int], tuple[str | None, Any]]:
    """(doc, unit) -> (stored text, stored sparse vector or None) of every point."""
    points, _ = client.scroll(name, limit=10_000, with_payload=True, with_vectors=[_sparse.SPARSE_NAME])
    out = {}
    for p in points:
        payload, vectors = p.payload or {}, p.vector if isinstance(p.vector, dict) else {}
        out[(payload["doc_id"], payload["page"])] = (payload["text"], vectors.get(_sparse.SPARSE_NAME))
    return out


def _qdrant_hits(store: QdrantStore) -> list[list[tuple[str, int, float]]]:
    out = []
    for query in QUERIES:
        hits = store.search(Query(text=query), SearchOptions(k=50, mode="text", candidates=50))
        out.append(sorted((h.doc_id, h.unit, round(h.score, 5)) for h in hits))
    return out


def test_qdrant_sparse_vectors_are_recomputed_when_opened(rules: Rules, caplog: pytest.LogCaptureFixture) -> None:
    """A collection computed by older rules, opened under newer ones: every point's sparse vector is what the new
    rules make of its stored text (gone where the text lost every token), and text search answers as a collection
    built under the new rules from the start."""
    client = QdrantClient(":memory:")
    old = QdrantStore.create(client, "c", F32)
    for doc, units in _qdrant_docs(5):
        old.add_document(doc, units)
    assert _qdrant_meta(client, "c")[_sparse.TOKENIZER_KEY] == 1
    rules(2)
    fresh = QdrantStore.create(client, "fresh", F32)
    for doc, units in _qdrant_docs(5):
        fresh.add_document(doc, units)
    with pytest.raises(IndexFormatError, match=r"tokenizer version 1.*restarted"):
        old.add_document("x", _units(np.random.default_rng(1), 1))  # not yet upgraded: refused, not mixed
    with caplog.at_level(logging.INFO, logger="colbert.qdrant.sparse"):
        again = QdrantStore.open(client, "c")
    assert "recomputed for tokenizer version 2 (they were computed by version 1)" in caplog.text
    assert _qdrant_meta(client, "c")[_sparse.TOKENIZER_KEY] == 2
    stored = _sparse_vectors(client, "c")
    assert any(t == "gamma gamma" for t, _ in stored.values())  # a text that lost every token is among them
    for key, (body, vector) in stored.items():
        want = _sparse.document_vector(body) if body else None
        if want is None:
            assert vector is None, key
        else:
            assert vector is not None, key
            assert (vector.indices, vector.values) == (want.indices, pytest.approx(want.values)), key
    assert _qdrant_hits(again) == _qdrant_hits(fresh)
    again.add_document("late", _units(np.random.default_rng(2), 2))  # same rules as the collection now
    rules(1)  # a process still running the older code
    with pytest.raises(IndexFormatError, match=r"tokenizer version 2.*restarted"):
        old.add_document("later", _units(np.random.default_rng(3), 2))
    with pytest.raises(IndexFormatError, match="tokenizer version 2, newer than this code's 1"):
        QdrantStore.open(client, "c")
    client.close()


def test_qdrant_collection_without_the_key_is_version_1(rules: Rules, monkeypatch: pytest.MonkeyPatch) -> None:
    client = QdrantClient(":memory:")
    for name in ("a", "b"):
        store = QdrantStore.create(client, name, F32)
        for doc, units in _qdrant_docs(6):
            store.add_document(doc, units)
        client.update_collection(name, metadata={_sparse.TOKENIZER_KEY: None})  # as before the key existed
        assert _sparse.TOKENIZER_KEY not in _qdrant_meta(client, name)
    before = _sparse_vectors(client, "a")
    updates: list[str] = []
    real = client.update_vectors
    monkeypatch.setattr(client, "update_vectors", lambda name, *a, **k: updates.append(name) or real(name, *a, **k))
    QdrantStore.open(client, "a")
    assert _qdrant_meta(client, "a")[_sparse.TOKENIZER_KEY] == 1
    assert (updates, _sparse_vectors(client, "a")) == ([], before)
    rules(2)
    QdrantStore.open(client, "b")  # the same kind of collection under version 2: recomputed
    assert _qdrant_meta(client, "b")[_sparse.TOKENIZER_KEY] == 2
    assert "b" in updates
    client.close()
