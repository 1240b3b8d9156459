"""A damaged ``unit_centroids`` row (the ivf first stage's per-unit centroid list, :mod:`colbert.local.codes`) is an
``IndexFormatError`` naming the index file and the remedy — whether the inverted lists are built by a handle's first
ivf search or brought up to date with another handle's writes — never a silently wrong first stage; the other
first stages (which do not read the lists) keep answering, and a recode writes the lists afresh from the codes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from colbert.catalog import Catalog
from colbert.errors import IndexFormatError
from colbert.local import LocalOptions, LocalStore
from colbert.local.codes import distinct_centroids
from colbert.search import Query, SearchOptions
from colbert.store import CollectionConfig, UnitRecord
from tests.colbert.test_recode import _fill
from tests.colbert.test_residual_store import DENSE, D, topic_pages

IVF = LocalOptions(first_stage="ivf")
QUERY = Query(topic_pages(5, 1)[0][:4], np.ones(DENSE, np.float32))
# (SQL expression replacing a list, what the error says): cut to an odd length, a centroid id no codebook of
# this size has (0xFFFF), two ids descending (2 then 1), no id at all
DAMAGE = [
    ("substr(data, 1, length(data) - 1)", "multiple of element size"),
    ("x'FFFF'", "outside the codebook"),
    ("x'02000100'", "not strictly ascending"),
    ("x''", "holds no centroid"),
]
REMEDY = r"index\.sqlite: a stored centroid list \(unit_centroids\) is damaged .*--recode CODEC"


def _damage(path: Path, expression: str, page_id: int) -> None:
    with sqlite3.connect(path / "index.sqlite") as db:
        db.execute(f"UPDATE unit_centroids SET data = {expression} WHERE page_id = ?", (page_id,))


@pytest.mark.parametrize(("expression", "detail"), DAMAGE)
def test_a_damaged_list_is_an_error_when_the_lists_are_built(tmp_path: Path, expression: str, detail: str) -> None:
    path = tmp_path / "c"
    with LocalStore.create(path, CollectionConfig(DENSE, D, codec="residual2")) as store:  # type: ignore[arg-type]
        _fill(store, 3)
    _damage(path, expression, 4)
    with LocalStore.open(path, options=IVF) as store:
        with pytest.raises(IndexFormatError, match=rf"{REMEDY}") as caught:
            store.search(QUERY, SearchOptions(k=3, candidates=4))
        assert detail in str(caught.value)
        assert "unit 4" in str(caught.value) or "element size" in detail  # names the unit where it can
        for stage in ("dense", "pooled"):  # the stages that do not read the lists keep answering
            assert store.search(QUERY, SearchOptions.of(k=3, candidates=4, first_stage=stage))


@pytest.mark.parametrize(("expression", "detail"), DAMAGE)
def test_a_damaged_list_is_an_error_when_a_handle_catches_up(tmp_path: Path, expression: str, detail: str) -> None:
    path = tmp_path / "c"
    with LocalStore.create(path, CollectionConfig(DENSE, D, codec="residual2")) as store:  # type: ignore[arg-type]
        _fill(store, 2)
    with LocalStore.open(path, options=IVF) as reader, LocalStore.open(path) as writer:
        assert reader.search(QUERY, SearchOptions(k=3, candidates=4))  # the lists are loaded now
        writer.add_document("new", [UnitRecord(0, np.ones(DENSE, np.float32), topic_pages(9, 1)[0])])
        new_id = _page_ids(path)[-1]
        _damage(path, expression, new_id)
        with pytest.raises(IndexFormatError, match=rf"{REMEDY}") as caught:
            reader.search(QUERY, SearchOptions(k=3, candidates=4))  # reads the new unit's list to catch up
        assert detail in str(caught.value)


def test_a_recode_writes_the_lists_afresh(tmp_path: Path) -> None:
    with Catalog(tmp_path) as catalog:
        _fill(catalog.create("lib", CollectionConfig(DENSE, D, codec="residual2")), 3)  # type: ignore[arg-type]
        path = tmp_path / "collections" / "lib"
        _damage(path, "x'FFFF'", 2)
        catalog.recode("lib", "residual2")
        with sqlite3.connect(path / "index.sqlite") as db:
            rows = db.execute(
                "SELECT m.n, m.data, c.data FROM multivectors m JOIN unit_centroids c USING (page_id)"
            ).fetchall()
        assert len(rows) == 6
        assert all(lists == distinct_centroids(codes, n) for n, codes, lists in rows)
    with LocalStore.open(path, options=IVF) as store:
        assert len(store.search(QUERY, SearchOptions(k=3, candidates=4))) == 3


def _page_ids(path: Path) -> list[int]:
    with sqlite3.connect(path / "index.sqlite") as db:
        return [r[0] for r in db.execute("SELECT id FROM pages ORDER BY id")]
