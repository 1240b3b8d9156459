"""The lifecycle half of the backend contract (:class:`colbert.backend.Backend`), over both backends: create,
open, exists, names, drop, staleness, disk bytes, vacuum, staging + publish + discard, job records, and the
factory (:func:`colbert.backends.open_backend`) as the one place that knows the kinds."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from colbert.backend import Backend
from colbert.backends import BACKENDS, open_backend
from colbert.catalog import Catalog
from colbert.errors import CollectionExistsError, CollectionNotFoundError
from colbert.jobs import Retention
from colbert.local.backend import LocalBackend
from colbert.quantize import Codec
from colbert.store import CollectionConfig, UnitRecord

CFG = CollectionConfig(dense_dim=8, multivector_dim=16, codec=Codec.FLOAT32)


def _page() -> UnitRecord:
    return UnitRecord(unit=0, dense=np.ones(8, np.float32), multivector=np.eye(4, 16, dtype=np.float32))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    options = {"qdrant_client": QdrantClient(":memory:")} if request.param == "qdrant" else {}
    made = open_backend(request.param, tmp_path, **options)
    yield made
    made.close()


def test_create_open_names_drop(backend: Backend) -> None:
    assert backend.names() == []
    assert not backend.exists("a")
    store = backend.create("a", CFG)
    store.add_document("d", [_page()])
    with pytest.raises(CollectionExistsError):
        backend.create("a", CFG)
    assert backend.exists("a")
    assert backend.names() == ["a"]
    store.close()
    again = backend.open("a")
    assert again.config == CFG
    assert again.count() == (1, 1)
    assert not backend.is_stale("a", again)
    again.close()
    assert backend.drop("a") is True
    assert backend.drop("a") is False
    assert backend.names() == []
    assert not backend.exists("a")
    with pytest.raises(CollectionNotFoundError):
        backend.open("a")


def test_disk_bytes_and_vacuum_answer_for_every_backend(backend: Backend) -> None:
    store = backend.create("v", CFG)
    store.add_document("d", [_page()])
    size = backend.disk_bytes(store)
    assert size is None or size > 0  # None: a Qdrant server's disk, not visible here
    result = backend.vacuum("v", store)
    assert result.name == "v"
    assert result.note
    assert (result.bytes_before is None) == (result.bytes_after is None) == (size is None)
    store.close()


def test_a_staged_collection_is_invisible_until_published(backend: Backend) -> None:
    key, store = backend.create_staging("imp", CFG)
    store.add_document("d", [_page()])
    assert "imp" not in backend.names()
    with pytest.raises(CollectionNotFoundError):
        backend.open("imp")
    store.close()
    backend.publish(key, "imp")
    assert backend.names() == ["imp"]
    published = backend.open("imp")
    assert published.count() == (1, 1)
    published.close()


def test_a_discarded_staging_collection_leaves_nothing(backend: Backend) -> None:
    key, store = backend.create_staging("gone", CFG)
    store.add_document("d", [_page()])
    store.close()
    backend.discard(key)
    assert backend.names() == []
    assert not backend.exists("gone")
    backend.create("gone", CFG).close()  # the name is free
    backend.discard(key)  # a second discard, or one of a published name, removes nothing
    assert backend.names() == ["gone"]


def test_an_interrupted_qdrant_import_holds_its_name_until_deleted() -> None:
    """Qdrant cannot rename: the staged collection has its final name, marked; a second import is refused with
    what to do, and deleting the leftover frees the name."""
    with Catalog(Path("/nonexistent"), backend="qdrant", qdrant_client=QdrantClient(":memory:")) as catalog:
        _key, staged = catalog.backend.create_staging("half", CFG)
        staged.close()  # as if the importing process died here
        with pytest.raises(CollectionExistsError, match="being imported, or an import of it was interrupted"):
            catalog.backend.create_staging("half", CFG)
        with pytest.raises(CollectionNotFoundError, match="being imported"):
            catalog.get("half")
        assert catalog.list() == []
        assert catalog.delete("half") is True
        catalog.create("half", CFG)


def test_the_local_publish_never_replaces_a_collection_created_meanwhile(tmp_path: Path) -> None:
    backend = open_backend("local", tmp_path)
    key, staged = backend.create_staging("race", CFG)
    staged.close()
    other = backend.create("race", CFG)  # another client wins the name and writes to it
    other.add_document("theirs", [_page()])
    with pytest.raises(CollectionExistsError):
        backend.publish(key, "race")
    backend.discard(key)
    assert other.get_document("theirs") is not None
    other.close()


def test_job_records_are_shared_through_the_backend(backend: Backend) -> None:
    jobs = backend.job_store(busy_timeout_s=5.0, retention=Retention())
    record = {"id": "j1", "collection": "c", "created_at": 1.0, "finished_at": None, "state": "queued"}
    jobs.put(record)
    assert jobs.get("j1") == record
    assert jobs.list("c", 10) == [record]
    jobs.close()


def test_the_factory_is_the_one_place_that_knows_the_kinds(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backend must be one of 'local', 'qdrant', got 'mongo'"):
        open_backend("mongo", tmp_path)
    with pytest.raises(ValueError, match=r"no backend takes the options \['qdrant_ur'\]"):
        open_backend("qdrant", tmp_path, qdrant_ur="http://x")
    local = open_backend("local", tmp_path, qdrant_url=None)  # settings pass every backend's options
    assert local.kind == "local"
    with Catalog(tmp_path, backend=local) as catalog:  # a catalog over a backend already opened
        catalog.create("x", CFG)
        assert [c.name for c in catalog.list()] == ["x"]


def test_a_starting_process_never_sweeps_an_import_another_process_is_building(tmp_path: Path) -> None:
    """Hidden staging directories are swept when a backend opens only if nobody holds their lock: one being
    built (by this or another process) survives; a dead builder's (its lock gone with it) is removed."""
    building = LocalBackend(tmp_path)
    key, store = building.create_staging("big", CFG)
    store.add_document("d", [_page()])
    LocalBackend(tmp_path).close()  # another process starts meanwhile
    assert (tmp_path / "collections" / key).is_dir()
    store.close()
    building.publish(key, "big")
    assert building.names() == ["big"]
    dead, store = building.create_staging("dead", CFG)
    store.close()
    os.close(building._staging.pop(dead))  # its lock goes, as with a killed process; the directory stays
    assert (tmp_path / "collections" / dead).is_dir()
    LocalBackend(tmp_path).close()  # the next process to start removes it
    assert sorted(p.name for p in (tmp_path / "collections").iterdir()) == ["big"]
