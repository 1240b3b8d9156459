"""A document's ``warnings`` over every backend: stored with it, read back by every read of its record (also
after a reopen and a replace), refused when malformed; an embedded index written before the column existed
gets it when opened and reads its documents as having none."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from colbert.errors import InvalidDocumentError
from colbert.local import LocalStore
from colbert.local import schema as _schema
from tests.colbert.store_backends import F32, Backend, make_page

NOTE = "no text found: visual search only"


def test_warnings_are_stored_with_the_document(backend: Backend) -> None:
    store = backend.make(F32)
    rng = np.random.default_rng(3)
    added = store.add_document("scan", [make_page(rng, 1)], {"n": 1}, warnings=[NOTE])
    assert added.warnings == (NOTE,)
    store.add_document("plain", [make_page(rng, 1)])
    again = backend.reopen(store)
    scan, plain = again.get_document("scan"), again.get_document("plain")
    assert scan is not None
    assert plain is not None
    assert (scan.warnings, plain.warnings) == ((NOTE,), ())
    assert [d.warnings for d in again.list_documents()] == [(NOTE,), ()]
    assert again.update_metadata("scan", {"n": 2}).warnings == (NOTE,)  # metadata writes keep them
    replaced = again.add_document("scan", [make_page(rng, 1)], replace=True)
    assert replaced.warnings == ()
    found = again.get_document("scan")
    assert found is not None
    assert found.warnings == ()


@pytest.mark.parametrize("bad", ["one string", [""], ["x\x00y"], [7], ["w"] * 17, ["w" * 1001]])
def test_malformed_warnings_are_refused(backend: Backend, bad: object) -> None:
    store = backend.make(F32)
    with pytest.raises(InvalidDocumentError, match="warning"):
        store.add_document("d", [make_page(np.random.default_rng(1), 1)], warnings=bad)  # type: ignore[arg-type]
    assert store.get_document("d") is None


def test_an_index_without_the_column_gets_it_when_opened(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    store = LocalStore.create(directory, F32)
    store.add_document("old", [make_page(np.random.default_rng(2), 1)], {"k": "v"})
    store.close()
    conn = sqlite3.connect(directory / _schema.DB_FILE)
    conn.execute("ALTER TABLE documents DROP COLUMN warnings")  # as written before documents kept warnings
    conn.commit()
    conn.close()
    with LocalStore.open(directory) as reopened:
        old = reopened.get_document("old")
        assert old is not None
        assert (old.metadata, old.warnings) == ({"k": "v"}, ())
        added = reopened.add_document("new", [make_page(np.random.default_rng(4), 1)], warnings=[NOTE])
        assert added.warnings == (NOTE,)
        new = reopened.get_document("new")
        assert new is not None
        assert new.warnings == (NOTE,)
