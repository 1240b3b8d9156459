"""A document's original file (``add_document(original=...)``) over every backend: stored with the document,
described by ``DocumentInfo.file``, replaced and deleted with it, typed errors for bad input, kept across a
reopen; the embedded index of format 3 written before originals existed gets the table when opened."""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from colbert.errors import InvalidDocumentError
from colbert.local import LocalStore
from colbert.local import schema as _schema
from colbert.qdrant import QdrantStore
from colbert.store import FileInfo, OriginalFile
from tests.colbert.store_backends import F32, Backend, make_page


def _pdf(n: int, seed: int = 0) -> bytes:
    return b"%PDF-1.7\n" + np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def test_original_is_stored_replaced_and_deleted_with_its_document(backend: Backend) -> None:
    store = backend.make(F32)
    rng = np.random.default_rng(3)
    data = _pdf(200_000)
    original = OriginalFile(data, "application/pdf", 'Q3 "final"; r\u00e9sum\u00e9.pdf')
    info = store.add_document("a", [make_page(rng, 1), make_page(rng, 2)], {"k": 1}, original=original)
    want = FileInfo("application/pdf", len(data), original.name, hashlib.sha256(data).hexdigest())
    assert info.file == want
    assert store.get_document("a").file == want  # type: ignore[union-attr]
    assert [d.file for d in store.list_documents()] == [want]
    assert store.get_original("a") == original
    store.add_document("plain", [make_page(rng, 1)])  # without: no file
    assert store.get_document("plain").file is None  # type: ignore[union-attr]
    assert store.get_original("plain") is None
    assert store.get_original("missing") is None
    # metadata updates keep it
    store.update_metadata("a", {"k": 2})
    assert store.get_document("a").file == want  # type: ignore[union-attr]
    # a replace replaces it
    text = OriginalFile(b"def f():\n    return 1\n", "text/x-python; charset=utf-8", "f.py")
    store.add_document("a", [make_page(rng, 1)], replace=True, original=text)
    assert store.get_original("a") == text
    assert store.get_document("a").file.size == len(text.data)  # type: ignore[union-attr]
    # a replace without one drops the old one
    store.add_document("a", [make_page(rng, 1)], replace=True)
    assert store.get_original("a") is None
    assert store.get_document("a").file is None  # type: ignore[union-attr]
    # a delete deletes it
    store.add_document("b", [make_page(rng, 1)], original=OriginalFile(b"\x89PNG\r\n\x1a\n", "image/png", None))
    assert store.get_original("b") == OriginalFile(b"\x89PNG\r\n\x1a\n", "image/png", None)
    assert store.delete_document("b")
    assert store.get_original("b") is None
    store.add_document("b", [make_page(rng, 1)])  # the same id again: nothing of the old original comes back
    assert store.get_original("b") is None
    # kept across a reopen
    store.add_document("c", [make_page(rng, 1)], original=original)
    again = backend.reopen(store)
    assert again.get_original("c") == original
    assert again.get_document("c").file == want  # type: ignore[union-attr]


def test_large_original_spans_requests(backend: Backend) -> None:
    """Bigger than one Qdrant request (parts) and than SQLite's page: read back bit-exact."""
    store: Any = backend.make(F32)
    if isinstance(store, QdrantStore):
        store.options = dataclasses.replace(store.options, max_request_bytes=64 * 1024)
    data = _pdf(300_001, seed=1)
    store.add_document("big", [make_page(np.random.default_rng(1), 1)], original=OriginalFile(data, "application/pdf"))
    got = store.get_original("big")
    assert got is not None
    assert got.data == data


def test_bad_originals_are_typed(backend: Backend) -> None:
    store: Any = backend.make(F32)  # LocalStore or QdrantStore: both have options.limits
    store.options = dataclasses.replace(
        store.options, limits=dataclasses.replace(store.options.limits, max_original_bytes=1000)
    )
    page = [make_page(np.random.default_rng(2), 1)]
    bad = [
        (OriginalFile(b"x" * 1001, "application/pdf"), "1001 bytes, 1..1000 allowed"),
        (OriginalFile(b"", "application/pdf"), "0 bytes"),
        (OriginalFile(b"x", "not a type"), "media type"),
        (OriginalFile(b"x", "text/plain\r\nX-Evil: 1"), "media type"),
        (OriginalFile(b"x", "text/plain", "a\x00b"), "control characters"),
        (OriginalFile(b"x", "text/plain", "line\nbreak"), "control characters"),
        (OriginalFile(b"x", "text/plain", ""), "1..1024 characters"),
        (b"raw bytes", "OriginalFile"),
    ]
    for original, message in bad:
        with pytest.raises(InvalidDocumentError, match=message):
            store.add_document("x", page, original=original)
    assert store.count() == (0, 0)  # nothing of a refused document is stored


def test_embedded_index_without_the_table_gets_it_on_open(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    store = LocalStore.create(directory, F32)
    store.add_document("old", [make_page(np.random.default_rng(4), 1)])
    store.close()
    conn = sqlite3.connect(directory / _schema.DB_FILE)
    conn.execute("DROP TABLE originals")  # as written before originals were kept
    conn.commit()
    conn.close()
    again = LocalStore.open(directory)
    assert again.get_document("old").file is None  # type: ignore[union-attr]
    again.add_document("new", [make_page(np.random.default_rng(5), 1)], original=OriginalFile(b"x", "text/plain"))
    assert again.get_original("new") == OriginalFile(b"x", "text/plain")
    again.close()
