"""Named collections: create / list / get / delete, persistence across restarts, typed errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from colbert.catalog import Backend, Catalog
from colbert.errors import CollectionExistsError, CollectionNotFoundError, InvalidCollectionNameError
from colbert.quantize import Codec
from colbert.store import CollectionConfig, UnitRecord

CFG = CollectionConfig(dense_dim=8, multivector_dim=16, codec=Codec.FLOAT32)


def _page() -> UnitRecord:
    mv = np.eye(4, 16, dtype=np.float32)  # (4, 16)
    return UnitRecord(unit=0, dense=np.ones(8, np.float32), multivector=mv)


@pytest.mark.parametrize("backend", ["local", "qdrant"])
def test_catalog_lifecycle_survives_restart(tmp_path: Path, backend: Backend) -> None:
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
