"""Forged and interrupted imports (issue 25): every forged field is an ``ExportFormatError`` naming it before the
document is written, the target name stays free (nothing half-imported, nothing visible), a collection another
client creates meanwhile is never replaced nor deleted, and one bad collection never hides the others."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient

from colbert.catalog import Catalog
from colbert.errors import CollectionExistsError, InvalidCollectionNameError
from colbert.store import CollectionConfig
from colbert.transfer import ExportFormatError, export_collection, import_collection
from tests.colbert.store_backends import DENSE, D, make_page
from tests.colbert.test_transfer import _all_members, _fill, _write_tar

Members = dict[str, bytes]
DOC = "documents/00000001"  # doc-1 of test_transfer._documents: units 1 and 2, no original file


def _json_edit(name: str, edit: Callable[[dict[str, Any]], None]) -> Callable[[Members], None]:
    def apply(members: Members) -> None:
        record = json.loads(members[name])
        edit(record)
        members[name] = json.dumps(record).encode()  # NaN/Infinity written as Python's json writes them

    return apply


def _set(name: str, path: list[Any], value: Any) -> Callable[[Members], None]:
    def edit(record: dict[str, Any]) -> None:
        target: Any = record
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return _json_edit(name, edit)


def _member(name: str, change: Callable[[bytes], bytes]) -> Callable[[Members], None]:
    def apply(members: Members) -> None:
        members[name] = change(members[name])

    return apply


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _deep_manifest(members: Members) -> None:  # json.dumps itself would recurse too deep: written by hand
    members["manifest.json"] = members["manifest.json"][:-1] + b', "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"


FORGERIES: list[tuple[str, Callable[[Members], None], str]] = [
    ("mv bytes not a multiple", _member(f"{DOC}/1.mv", lambda b: b + b"\x00"), "doc-1"),
    ("mv of another width", _member(f"{DOC}/1.mv", lambda b: b[: len(b) // 2]), "doc-1"),
    ("dense too short", _member(f"{DOC}/1.dense", lambda b: b[:-4]), "dense vector of"),
    ("dense member oversized", _member(f"{DOC}/1.dense", lambda b: b * 1000), "at most 48 expected"),
    ("manifest nested 5000 deep", _deep_manifest, "nests JSON deeper than 64"),
    ("metadata nested 100 deep", _set(f"{DOC}/document.json", ["metadata", "deep"], _nested(100)), "deeper"),
    ("created_at NaN", _set(f"{DOC}/document.json", ["created_at"], float("nan")), "created_at must be a finite"),
    ("created_at Infinity", _set(f"{DOC}/document.json", ["created_at"], float("inf")), "created_at must be"),
    ("created_at a string", _set(f"{DOC}/document.json", ["created_at"], "1"), "created_at must be"),
    ("doc id with a slash", _set(f"{DOC}/document.json", ["doc_id"], "a/b"), "must not hold '/'"),
    ("doc id with a newline", _set(f"{DOC}/document.json", ["doc_id"], "abc\n"), "control characters"),
    ("doc id twice", _set(f"{DOC}/document.json", ["doc_id"], "doc-0"), "appears twice"),
    ("unknown task", _set("manifest.json", ["config", "task"], "bogus"), "unknown task 'bogus'"),
    ("unknown codec", _set("manifest.json", ["multivector_encoding"], "float8"), "manifest"),
    ("sketch_vectors forged", _set("manifest.json", ["sketch_vectors"], -1), "sketch_vectors"),
    ("unit kind unknown", _set(f"{DOC}/document.json", ["units", 0, "kind"], "slide"), "kind must be one of"),
    ("image_grid not a pair", _set(f"{DOC}/document.json", ["units", 0, "metadata", "image_grid"], "x"), "image_grid"),
    ("image_span beyond grid", _set(f"{DOC}/document.json", ["units", 0, "metadata", "image_span"], [0, 9]), "span"),
    ("words not boxes", _set(f"{DOC}/document.json", ["units", 0, "metadata", "words"], [[1, 2]]), "words must be"),
    ("end counts wrong", _set("end.json", ["units"], 99), "end.json counts"),
]


@pytest.fixture
def export(tmp_path: Path) -> Members:
    with Catalog(tmp_path / "src") as cat:
        _fill(cat.create("lib", CollectionConfig(dense_dim=DENSE, multivector_dim=D)), 5)
        export_collection(cat, "lib", tmp_path / "ok.tar")
    return _all_members(tmp_path / "ok.tar")


@pytest.mark.parametrize(("what", "forge", "match"), FORGERIES, ids=[f[0] for f in FORGERIES])
def test_each_forged_export_is_refused_and_leaves_nothing(
    tmp_path: Path, export: Members, what: str, forge: Callable[[Members], None], match: str
) -> None:
    members = dict(export)
    forge(members)
    _write_tar(tmp_path / "forged.tar", members)
    with Catalog(tmp_path / "dst") as cat:
        cat.create("keep", CollectionConfig(dense_dim=DENSE, multivector_dim=D))
        with pytest.raises(ExportFormatError, match=match):
            import_collection(cat, tmp_path / "forged.tar", name="imported")
        assert [c.name for c in cat.list()] == ["keep"]  # nothing half-imported, the listing intact
        assert sorted(p.name for p in (tmp_path / "dst" / "collections").iterdir()) == ["keep"]
        _write_tar(tmp_path / "ok.tar", export)
        import_collection(cat, tmp_path / "ok.tar", name="imported")  # the name is free again
        assert cat.get("imported").count()[0] == 5


def test_a_forged_collection_name_is_refused(tmp_path: Path, export: Members) -> None:
    members = dict(export)
    _set("manifest.json", ["collection"], "../escape")(members)
    _write_tar(tmp_path / "forged.tar", members)
    with Catalog(tmp_path / "dst") as cat, pytest.raises(InvalidCollectionNameError):
        import_collection(cat, tmp_path / "forged.tar")


def _catalog(kind: str, root: Path) -> Catalog:
    if kind == "local":
        return Catalog(root)
    return Catalog(root, backend="qdrant", qdrant_client=QdrantClient(":memory:"))


@pytest.mark.parametrize("kind", ["local", "qdrant"])
def test_a_failed_import_never_touches_a_collection_another_client_made(
    tmp_path: Path, export: Members, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the import runs another client tries to create the same name and write to it. Embedded: it wins
    the name, the import's publish is refused, its staging removed, the other client's document kept. Qdrant:
    the staged collection holds the name, so the other client is refused instead."""
    _write_tar(tmp_path / "ok.tar", export)
    config = CollectionConfig(dense_dim=DENSE, multivector_dim=D)
    with _catalog(kind, tmp_path / "dst") as cat:
        restore = cat.backend.restore
        raced: list[str] = []

        def racing_restore(*args: Any) -> None:
            if not raced:
                try:
                    cat.create("target", config).add_document("theirs", [make_page(np.random.default_rng(1), 0)])
                    raced.append("created")
                except CollectionExistsError:
                    raced.append("refused")
            restore(*args)

        monkeypatch.setattr(cat.backend, "restore", racing_restore)
        if kind == "local":
            with pytest.raises(CollectionExistsError):
                import_collection(cat, tmp_path / "ok.tar", name="target")
            assert raced == ["created"]
            assert cat.get("target").get_document("theirs") is not None
            assert cat.get("target").count()[0] == 1
        else:
            import_collection(cat, tmp_path / "ok.tar", name="target")
            assert raced == ["refused"]
            assert cat.get("target").count()[0] == 5


def test_an_import_killed_midway_leaves_the_old_state(tmp_path: Path, export: Members) -> None:
    """``kill -9`` during an embedded import: only a hidden staging directory is left; the next process does
    not list it, removes it, and a re-import succeeds."""
    _write_tar(tmp_path / "ok.tar", export)
    config = CollectionConfig(dense_dim=DENSE, multivector_dim=D)
    with Catalog(tmp_path / "dst") as cat:
        key, staged = cat.backend.create_staging("half", config)
        staged.add_document("d", [make_page(np.random.default_rng(2), 0)])
        staged.close()  # the process dies here: no publish, no discard; its staging lock goes with it
        os.close(vars(cat.backend)["_staging"].pop(key))
        assert cat.list() == []
    with Catalog(tmp_path / "dst") as cat:  # a restart
        assert cat.list() == []
        assert [p.name for p in (tmp_path / "dst" / "collections").iterdir()] == []
        import_collection(cat, tmp_path / "ok.tar", name="half")
        assert cat.get("half").count()[0] == 5


def test_one_bad_collection_never_breaks_the_listing(tmp_path: Path) -> None:
    config = CollectionConfig(dense_dim=DENSE, multivector_dim=D)
    with Catalog(tmp_path) as cat:
        for name in ("a", "broken", "c"):
            cat.create(name, config)
    (tmp_path / "collections" / "broken" / "index.sqlite").write_bytes(b"not a database" * 100)
    with Catalog(tmp_path) as cat:
        assert [c.name for c in cat.list()] == ["a", "c"]
