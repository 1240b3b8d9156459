"""``Store.find_by_hash`` over every backend: the earliest document with a content hash, through an index."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from colbert.local import LocalStore
from colbert.local import schema as _schema
from tests.colbert.store_backends import F32, Backend, make_page


def test_find_by_hash(backend: Backend) -> None:
    store = backend.make(F32)
    rng = np.random.default_rng(5)
    assert store.find_by_hash("sha256:aa") is None
    store.add_document("first", [make_page(rng, 0)], {"n": 1}, content_hash="sha256:aa")
    store.add_document("other", [make_page(rng, 0)], content_hash="sha256:bb")
    store.add_document("copy", [make_page(rng, 0)], content_hash="sha256:aa")
    store.add_document("unknown", [make_page(rng, 0)])
    found = store.find_by_hash("sha256:aa")
    assert found is not None
    assert (found.doc_id, found.metadata, found.content_hash) == ("first", {"n": 1}, "sha256:aa")
    other = store.find_by_hash("sha256:bb")
    assert other is not None
    assert other.doc_id == "other"
    store.delete_document("first")
    again = store.find_by_hash("sha256:aa")
    assert again is not None
    assert again.doc_id == "copy"
    assert store.find_by_hash("sha256:cc") is None


def test_embedded_lookup_uses_the_index(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    LocalStore.create(directory, F32).close()
    conn = sqlite3.connect(directory / _schema.DB_FILE)
    plan = conn.execute("EXPLAIN QUERY PLAN SELECT doc_id FROM documents WHERE content_hash = ?", ("x",)).fetchall()
    assert any("documents_by_hash" in str(row) for row in plan), plan
    # an index written before the hash index existed gets it when opened
    conn.execute("DROP INDEX documents_by_hash")
    conn.commit()
    conn.close()
    LocalStore.open(directory).close()
    conn = sqlite3.connect(directory / _schema.DB_FILE)
    assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'documents_by_hash'").fetchone()
    conn.close()
