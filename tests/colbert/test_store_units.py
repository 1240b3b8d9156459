"""The unit contract over every backend: a unit's kind, text and image are stored with its vectors, replaced
and deleted with its document, and reach hits and ``get_unit``; pre-release formats are refused by name."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from colbert.catalog import Catalog
from colbert.errors import IndexFormatError, InvalidDocumentError
from colbert.local import LocalStore
from colbert.search import Query, SearchOptions
from colbert.store import DocumentInfo, Store, StoreLimits, UnitRecord
from tests.colbert.store_backends import F32, Backend, make_page


def _with(rec: UnitRecord, *, kind: str = "page", text: str | None = None, image: bytes | None = None) -> UnitRecord:
    return UnitRecord(rec.unit, rec.dense, rec.multivector, kind=kind, text=text, metadata=rec.metadata, image=image)


def _doc(rng: np.random.Generator, tag: str) -> list[UnitRecord]:
    """Two pages with text and an image each, and one text chunk without an image."""
    return [
        _with(make_page(rng, 0), text=f"page one of {tag}", image=f"PNG-0-{tag}".encode() * 50),
        _with(make_page(rng, 1), text=f"page two of {tag} ünïcödé", image=bytes(range(256)) + tag.encode()),
        _with(make_page(rng, 2), kind="chunk", text=f"def f():\n    return {tag!r}\n"),
    ]


def test_units_round_trip_with_text_image_kind_and_hash(backend: Backend) -> None:
    store = backend.make(F32)
    rng = np.random.default_rng(10)
    units = _doc(rng, "a")
    info = store.add_document("a", units, {"lang": "en"}, content_hash="sha256:abc")
    assert (info.num_units, info.content_hash) == (3, "sha256:abc")
    got_info = store.get_document("a")
    assert isinstance(got_info, DocumentInfo)
    assert (got_info.num_units, got_info.content_hash) == (3, "sha256:abc")
    assert store.list_documents()[0].content_hash == "sha256:abc"
    for want in units:
        got = store.get_unit("a", want.unit)
        assert got is not None
        assert (got.kind, got.text, got.image) == (want.kind, want.text, want.image)
        np.testing.assert_allclose(got.multivector, want.multivector, atol=1e-6)
        assert store.get_image("a", want.unit) == want.image
    assert store.get_image("a", 9) is None
    assert store.get_image("nope", 0) is None
    hits = store.search(Query(units[2].multivector[:3], None), SearchOptions(k=3))
    assert {(h.unit, h.kind) for h in hits} == {(0, "page"), (1, "page"), (2, "chunk")}
    store.add_document("b", [make_page(rng, 0)])  # no text, no image, no hash
    plain = store.get_unit("b", 0)
    assert plain is not None
    assert (plain.kind, plain.text, plain.image) == ("page", None, None)
    assert store.get_document("b") is not None
    assert store.get_document("b").content_hash is None


def test_replace_and_delete_take_text_and_images_along(backend: Backend) -> None:
    store = backend.make(F32)
    rng = np.random.default_rng(11)
    store.add_document("a", _doc(rng, "old"))
    new = [_with(make_page(rng, 1), text="new text", image=b"NEW-IMAGE")]
    store.add_document("a", new, replace=True)
    assert store.get_image("a", 0) is None  # the old unit 0 is gone with its image
    assert store.get_unit("a", 2) is None
    got = store.get_unit("a", 1)
    assert got is not None
    assert (got.text, got.image) == ("new text", b"NEW-IMAGE")
    assert store.delete_document("a") is True
    assert store.get_image("a", 1) is None
    assert store.get_unit("a", 1) is None
    assert _leftovers(store) == 0


def _leftovers(store: Store) -> int:
    """Stored texts/images of any document, counted below the Store API."""
    if isinstance(store, LocalStore):
        conn = sqlite3.connect(store.directory / "index.sqlite")
        try:
            return int(
                conn.execute("SELECT (SELECT COUNT(*) FROM unit_text) + (SELECT COUNT(*) FROM unit_images)").fetchone()[
                    0
                ]
            )
        finally:
            conn.close()
    from colbert.qdrant import QdrantStore, blobs_collection

    assert isinstance(store, QdrantStore)
    return int(store.client.count(blobs_collection(store.name), exact=True).count) + int(
        store.client.count(store.name, exact=True).count
    )


def test_unit_input_is_checked(backend: Backend) -> None:
    store = backend.make(F32)
    rng = np.random.default_rng(12)
    page = make_page(rng, 0)
    with pytest.raises(InvalidDocumentError, match="kind must be one of page, chunk"):
        store.add_document("x", [_with(page, kind="paragraph")])
    with pytest.raises(InvalidDocumentError, match="text must be a str"):
        store.add_document("x", [_with(page, text=b"bytes")])  # type: ignore[arg-type]
    with pytest.raises(InvalidDocumentError, match="image must be bytes"):
        store.add_document("x", [_with(page, image="not bytes")])  # type: ignore[arg-type]
    with pytest.raises(InvalidDocumentError, match="content_hash"):
        store.add_document("x", [page], content_hash="")
    assert store.count() == (0, 0)


def test_unit_size_limits_name_the_limit(tmp_path: Path) -> None:
    from colbert.local import LocalOptions

    limits = StoreLimits(max_text_bytes=10, max_image_bytes=20)
    store = LocalStore.create(tmp_path / "c", F32, LocalOptions(limits=limits))
    page = make_page(np.random.default_rng(13), 0)
    with pytest.raises(InvalidDocumentError, match="text is 11 bytes, at most 10"):
        store.add_document("x", [_with(page, text="x" * 11)])
    with pytest.raises(InvalidDocumentError, match=r"image is 21 bytes, 1\.\.20"):
        store.add_document("x", [_with(page, image=b"x" * 21)])
    store.close()


def test_pre_release_formats_are_named_not_migrated(tmp_path: Path) -> None:
    """Embedded format 2 and Qdrant format 1 predate the first release: opening one is an IndexFormatError that
    names the version found, and nothing is changed."""
    from colbert.qdrant import FORMAT_NAME, QdrantStore

    rng = np.random.default_rng(14)
    with Catalog(tmp_path) as cat:
        cat.create("old", F32).add_document("d", [make_page(rng, 1)], {"k": "v"})
    conn = sqlite3.connect(tmp_path / "collections" / "old" / "index.sqlite")
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'format_version'")
    conn.commit()
    conn.close()
    with pytest.raises(IndexFormatError, match="format version 2, this code reads version 3"):
        LocalStore.open(tmp_path / "collections" / "old")
    client = QdrantClient(":memory:")
    QdrantStore.create(client, "old", F32).add_document("d", [make_page(rng, 1)])
    meta = dict(client.get_collection("old").config.metadata or {})
    client.update_collection("old", metadata={**meta, "format": FORMAT_NAME, "format_version": 1})
    with pytest.raises(IndexFormatError, match="format version 1, this code reads version 2"):
        QdrantStore.open(client, "old")
    client.close()


def test_unit_numbers_follow_the_stored_units(backend: Backend) -> None:
    """``unit_numbers``: the stored unit numbers ascending (a page selection's gaps kept), replaced with the
    document, None for an unknown or deleted document."""
    store = backend.make(F32)
    rng = np.random.default_rng(12)
    store.add_document("sel", [make_page(rng, 7), make_page(rng, 1), make_page(rng, 3)])
    store.add_document("other", [make_page(rng, 2)])
    assert store.unit_numbers("sel") == [1, 3, 7]
    assert store.unit_numbers("other") == [2]
    assert store.unit_numbers("nope") is None
    store.add_document("sel", [make_page(rng, 4), make_page(rng, 5)], replace=True)
    assert store.unit_numbers("sel") == [4, 5]
    again = backend.reopen(store)
    assert again.unit_numbers("sel") == [4, 5]
    assert again.delete_document("sel") is True
    assert again.unit_numbers("sel") is None
    assert again.unit_numbers("other") == [2]
