"""Named collections: create / list / get / delete, persistence across restarts, typed errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from colbert.catalog import Catalog
from colbert.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    InvalidCollectionNameError,
    StoreClosedError,
)
from colbert.quantize import Codec
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, UnitRecord

CFG = CollectionConfig(dense_dim=8, multivector_dim=16, codec=Codec.FLOAT32)


def _page() -> UnitRecord:
    mv = np.eye(4, 16, dtype=np.float32)  # (4, 16)
    return UnitRecord(unit=0, dense=np.ones(8, np.float32), multivector=mv)


@pytest.mark.parametrize("backend", ["local", "qdrant"])
def test_catalog_lifecycle_survives_restart(tmp_path: Path, backend: str) -> None:
    with Catalog(tmp_path, backend=backend) as cat:
        assert cat.list() == []
        store = cat.create("papers", CFG)
        store.add_document("a", [_page()], {"k": "v"})
        cat.create("memos-2024", CollectionConfig(dense_dim=4, multivector_dim=16, codec=Codec.FLOAT16))
        with pytest.raises(CollectionExistsError):
            cat.create("papers", CFG)
        assert cat.get("papers") is store
    with Catalog(tmp_path, backend=backend) as cat:  # a restart
        listed = cat.list()
        assert [c.name for c in listed] == ["memos-2024", "papers"]
        assert listed[1].config == CFG
        assert listed[1].counts == (1, 1)
        assert listed[0].counts == (0, 0)
        assert cat.get("papers").get_document("a") is not None
        assert cat.delete("papers") is True
        assert cat.delete("papers") is False
        with pytest.raises(CollectionNotFoundError):
            cat.get("papers")
    with Catalog(tmp_path, backend=backend) as cat:
        assert [c.name for c in cat.list()] == ["memos-2024"]
        fresh = cat.create("papers", CFG)  # the name is free again and the collection is empty
        assert fresh.count() == (0, 0)


@pytest.mark.parametrize("name", ["", "Upper", "a/b", "../x", "a__b", "-lead", "x" * 64, "sp ace", 7])
def test_bad_names_are_rejected(tmp_path: Path, name: object) -> None:
    with Catalog(tmp_path) as cat:
        with pytest.raises(InvalidCollectionNameError):
            cat.create(name, CFG)  # type: ignore[arg-type]
        with pytest.raises(InvalidCollectionNameError):
            cat.get(name)  # type: ignore[arg-type]


def test_interrupted_create_leaves_no_collection(tmp_path: Path) -> None:
    with Catalog(tmp_path) as cat:
        cat.create("kept", CFG)
    leftover = tmp_path / "collections" / ".tmp-half-0123"
    leftover.mkdir()
    (leftover / "index.sqlite").write_bytes(b"")
    with Catalog(tmp_path) as cat:
        assert [c.name for c in cat.list()] == ["kept"]
        assert not leftover.exists()


def _two_catalogs(tmp_path: Path, backend: str) -> tuple[Catalog, Catalog]:
    """Two processes' catalogs over one index: one data directory (embedded), one Qdrant (``:memory:``)."""
    if backend == "local":
        return Catalog(tmp_path), Catalog(tmp_path)
    from qdrant_client import QdrantClient

    client = QdrantClient(":memory:")
    return Catalog(tmp_path, backend="qdrant", qdrant_client=client), Catalog(
        tmp_path, backend="qdrant", qdrant_client=client
    )


@pytest.mark.parametrize("backend", ["local", "qdrant"])
def test_a_collection_deleted_by_another_catalog_is_noticed(tmp_path: Path, backend: str) -> None:
    a, b = _two_catalogs(tmp_path, backend)
    with a, b:
        a.create("shared", CFG).add_document("a", [_page()])
        held = b.get("shared")
        assert held.get_document("a") is not None
        assert a.delete("shared") is True
        if backend == "qdrant":  # the handle B holds: its next request finds the collection gone, typed
            with pytest.raises(CollectionNotFoundError, match="was deleted by another"):
                held.get_document("a")
            with pytest.raises(CollectionNotFoundError, match="was deleted by another"):
                held.search(Query(np.eye(2, 16, dtype=np.float32), np.ones(8, np.float32)), SearchOptions(k=1))
        with pytest.raises(CollectionNotFoundError):
            b.get("shared")
        other = CollectionConfig(dense_dim=4, multivector_dim=16, codec=Codec.FLOAT16)
        a.create("shared", other)
        assert b.get("shared").config == other  # the namesake, not the old handle
        assert b.get("shared").count() == (0, 0)


@pytest.mark.parametrize("backend", ["local", "qdrant"])
def test_re_creating_a_collection_another_catalog_deleted_closes_the_handle_held(tmp_path: Path, backend: str) -> None:
    """A catalog holding a handle of a collection another process deleted, then creating that name itself, closes
    the handle it held (it was replaced without a close: its connections and threads stayed open)."""
    a, b = _two_catalogs(tmp_path, backend)
    with a, b:
        held = b.create("shared", CFG)
        held.add_document("a", [_page()])
        assert a.delete("shared") is True
        fresh = b.create("shared", CFG)
        assert b.get("shared") is fresh
        if backend == "local":
            with pytest.raises(StoreClosedError):
                held.get_document("a")


def test_a_qdrant_handle_notices_its_collection_re_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _two_catalogs(tmp_path, "qdrant")
    with a, b:
        a.create("shared", CFG)
        held = b.get("shared")
        a.delete("shared")
        a.create("shared", CollectionConfig(dense_dim=4, multivector_dim=16, codec=Codec.FLOAT32))
        with pytest.raises(CollectionNotFoundError, match="was deleted and re-created"):
            held.add_document("a", [_page()])  # 8-d vectors into the 4-d namesake: refused by Qdrant, then noticed
        assert b.get("shared") is not held
        assert b.get("shared").config.dense_dim == 4
        live = b.get("shared")

        def fail(*args: object, **kwargs: object) -> None:
            raise RuntimeError("connection reset")

        monkeypatch.setattr(vars(a.backend)["client"], "retrieve", fail)  # the shared Qdrant client
        with pytest.raises(RuntimeError, match="connection reset"):  # the collection is fine: the error stays as is
            live.get_document("a")
        assert b.get("shared") is live
