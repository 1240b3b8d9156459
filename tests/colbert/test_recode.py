"""``Catalog.recode`` (``vacuum --recode``, issue 26): a collection moves to another codec keeping every document
(ids, metadata, created_at, hashes, warnings, units, texts, images, originals), text search answers exactly as
before (BM25 does not read the codes), a busy collection or a failure leaves the old one intact; damaged codes
and codebooks are errors naming the index file and the remedy, never answers."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient

from colbert.catalog import Catalog
from colbert.errors import CodecError, CollectionBusyError, IndexFormatError
from colbert.local import LocalStore
from colbert.local.backend import LocalBackend
from colbert.quantize import Codec
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, OriginalFile, Store, UnitRecord
from tests.colbert.test_residual_store import DENSE, D, naive, topic_pages

WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma"]


def _fill(store: Store, n_docs: int = 9) -> list[np.ndarray]:
    """Documents of 2 units each, with texts, an image on unit 0 and an original on every other document."""
    pages = topic_pages(5, 2 * n_docs)
    rng = np.random.default_rng(3)
    for i in range(n_docs):
        units = [
            UnitRecord(
                u,
                rng.standard_normal(DENSE).astype(np.float32),
                pages[2 * i + u],
                text=f"{WORDS[i % 6]} {WORDS[(i + u) % 6]} page {i} {u}",
                metadata={"unit": u},
                image=b"img%d" % i if u == 0 else None,
            )
            for u in range(2)
        ]
        original = OriginalFile(b"%%PDF original %d" % i, "application/pdf", f"d{i}.pdf") if i % 2 else None
        store.add_document(
            f"d{i}", units, {"i": i}, content_hash=f"h{i}", original=original, warnings=(f"w{i}",) if i == 3 else ()
        )
    return pages


def _everything(store: Store) -> dict[str, Any]:
    """Every stored thing a recode must keep, the multi-vectors aside."""
    out: dict[str, Any] = {}
    for info in store.list_documents(limit=1000):
        units = [store.get_unit(info.doc_id, u) for u in range(info.num_units)]
        original = store.get_original(info.doc_id)
        out[info.doc_id] = (
            info,
            # the dense vector to 6 decimals: re-encoding a unit vector re-normalises it (last-bit changes)
            [(u.unit, u.kind, u.text, u.metadata, u.image, np.round(u.dense, 6).tolist()) for u in units if u],
            original,
        )
    return out


def _text_answers(store: Store) -> list[list[tuple[str, int, float]]]:
    out = []
    for words in ("alpha", "beta gamma", "omega page", "sigma 3"):
        hits = store.search(Query(None, None, words), SearchOptions(k=20, mode="text"))
        out.append([(h.doc_id, h.unit, h.score) for h in hits])
    return out


def test_recode_float16_residual2_int8_keeps_every_document(tmp_path: Path) -> None:
    with Catalog(tmp_path) as catalog:
        store = catalog.create("lib", CollectionConfig(DENSE, D, codec="float16"))  # type: ignore[arg-type]
        pages = _fill(store)
        kept, answers = _everything(store), _text_answers(store)
        assert answers[0]
        previous = {f"d{i}": store.get_unit(f"d{i}", 1).multivector for i in range(9)}  # type: ignore[union-attr]
        for codec, bound in (("residual2", 0.25), ("int8", 0.01)):
            result = catalog.recode("lib", codec)
            assert "recoded 9 documents" in result.note
            recoded = catalog.get("lib")
            assert recoded is not store
            assert str(recoded.config.codec) == codec
            assert _everything(recoded) == kept
            assert _text_answers(recoded) == answers
            for i in range(9):  # the multi-vectors are the previous codec's values, re-encoded
                mv = recoded.get_unit(f"d{i}", 1).multivector  # type: ignore[union-attr]
                assert mv.shape == pages[2 * i + 1].shape
                assert np.abs(mv - previous[f"d{i}"]).mean() < bound  # residual2: 2 bits a dimension
                previous[f"d{i}"] = mv
            q = pages[9][:6]  # every unit is found, scored as exhaustive MaxSim over its new stored values
            hits = recoded.search(Query(q, None), SearchOptions(k=18, exhaustive=True))
            assert len(hits) == 18
            for h in hits:
                stored = recoded.get_unit(h.doc_id, h.unit).multivector  # type: ignore[union-attr]
                assert h.score == pytest.approx(naive(q, stored), rel=1e-4, abs=1e-4)
            hybrid = recoded.search(Query(q, None, "omega"), SearchOptions(k=5, mode="hybrid", exhaustive=True))
            assert hybrid
            store = recoded
        assert [p.name for p in (tmp_path / "collections").iterdir()] == ["lib"]  # no leftover
    with Catalog(tmp_path) as again:  # another process sees the recoded collection
        assert str(again.get("lib").config.codec) == "int8"
        assert _everything(again.get("lib")) == kept


def test_another_handle_notices_the_swap(tmp_path: Path) -> None:
    with Catalog(tmp_path) as one, Catalog(tmp_path) as two:
        _fill(one.create("lib", CollectionConfig(DENSE, D, codec=Codec.FLOAT16)))
        assert str(two.get("lib").config.codec) == "float16"
        one.recode("lib", "binary")
        assert str(two.get("lib").config.codec) == "binary"
        assert two.get("lib").count() == (9, 18)
        two.get("lib").add_document("new", [UnitRecord(0, np.ones(DENSE, np.float32), topic_pages(2, 1)[0])])
        assert one.get("lib").count() == (10, 19)  # writes after the recode land in the new collection


def test_unknown_codec_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    with Catalog(tmp_path) as catalog:
        store = catalog.create("lib", CollectionConfig(DENSE, D))
        _fill(store, 2)
        with pytest.raises(CodecError, match="unknown codec 'residual3'"):
            catalog.recode("lib", "residual3")
        assert catalog.get("lib") is store
        assert store.count() == (2, 4)


def test_busy_collection_is_refused_and_left_intact(tmp_path: Path) -> None:
    with Catalog(tmp_path) as catalog:
        store = catalog.create("lib", CollectionConfig(DENSE, D, codec=Codec.FLOAT16))
        _fill(store, 3)
        kept = _everything(store)
        other = sqlite3.connect(tmp_path / "collections" / "lib" / "index.sqlite", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process's writer, mid-transaction
        try:
            with pytest.raises(CollectionBusyError, match=r"another process is writing.*retry the recode"):
                catalog.recode("lib", "int8")
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert isinstance(store, LocalStore)
        busy = pytest.raises(CollectionBusyError, match="a write in this process is in progress")
        with store._write_lock, busy:  # a write of this process under way
            catalog.recode("lib", "int8")
        assert catalog.get("lib") is store
        assert str(store.config.codec) == "float16"
        assert _everything(store) == kept
        assert [p.name for p in (tmp_path / "collections").iterdir()] == ["lib"]
        store.add_document("later", [UnitRecord(0, np.ones(DENSE, np.float32), topic_pages(1, 1)[0])])


def test_a_failure_midway_leaves_the_old_collection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Catalog(tmp_path) as catalog:
        store = catalog.create("lib", CollectionConfig(DENSE, D))
        _fill(store, 4)
        kept = _everything(store)
        calls = []
        real = LocalBackend.restore

        def failing(self: LocalBackend, *args: Any) -> None:
            calls.append(1)
            if len(calls) == 3:
                raise OSError("disk full")
            real(self, *args)

        monkeypatch.setattr(LocalBackend, "restore", failing)
        with pytest.raises(OSError, match="disk full"):
            catalog.recode("lib", "residual1")
        assert catalog.get("lib") is store
        assert _everything(store) == kept
        assert [p.name for p in (tmp_path / "collections").iterdir()] == ["lib"]


def test_qdrant_refuses_recode_to_residual(tmp_path: Path) -> None:
    with Catalog(tmp_path, backend="qdrant", qdrant_client=QdrantClient(":memory:")) as catalog:
        catalog.create("q", CollectionConfig(DENSE, D))
        with pytest.raises(CodecError, match="Qdrant backend cannot store codec residual2"):
            catalog.recode("q", "residual2")
        with pytest.raises(CodecError, match="export the collection and import it"):
            catalog.recode("q", "int8")


@pytest.mark.parametrize("codec", ["float16", "int8", "residual2", "binary"])
def test_a_damaged_code_blob_is_an_error_naming_the_file(tmp_path: Path, codec: str) -> None:
    path = tmp_path / "c"
    store = LocalStore.create(path, CollectionConfig(DENSE, D, codec=codec))  # type: ignore[arg-type]
    _fill(store, 3)
    store.close()
    with sqlite3.connect(path / "index.sqlite") as db:  # cut one stored blob short, as in a row without a checksum
        db.execute("UPDATE multivectors SET data = substr(data, 1, length(data) - 3), crc = NULL WHERE page_id = 2")
    store = LocalStore.open(path)
    q = topic_pages(5, 1)[0][:4]
    for call in (
        lambda: store.search(Query(q, None), SearchOptions(k=3, exhaustive=True)),
        lambda: store.get_unit("d0", 1),
    ):
        with pytest.raises(IndexFormatError, match=r"index\.sqlite: stored .* codes are damaged.*restore the"):
            call()
    with Catalog(tmp_path / "cat") as catalog:  # and a recode refuses rather than copying damage
        _fill(catalog.create("lib", CollectionConfig(DENSE, D, codec=codec)), 2)  # type: ignore[arg-type]
        with sqlite3.connect(tmp_path / "cat" / "collections" / "lib" / "index.sqlite") as db:
            db.execute("UPDATE multivectors SET data = substr(data, 1, 5), crc = NULL WHERE page_id = 1")
        with pytest.raises(IndexFormatError, match="codes are damaged"):
            catalog.recode("lib", "float32")
        assert str(catalog.get("lib").config.codec) == codec
        assert [p.name for p in (tmp_path / "cat" / "collections").iterdir()] == ["lib"]


def test_a_damaged_codebook_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c"
    store = LocalStore.create(path, CollectionConfig(DENSE, D, codec="residual2"))  # type: ignore[arg-type]
    _fill(store, 3)
    store.close()
    with sqlite3.connect(path / "index.sqlite") as db:
        db.execute("UPDATE codebook SET data = zeroblob(length(data))")

    def open_and_search() -> None:  # the codebook is read when the store first needs it
        LocalStore.open(path).search(Query(topic_pages(5, 1)[0][:4], None), SearchOptions(k=3, exhaustive=True))

    with pytest.raises(IndexFormatError, match=r"index\.sqlite: the stored codebook is damaged.*restore the"):
        open_and_search()
