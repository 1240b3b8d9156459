"""``JEV4_AUTO_CELLS_UNITS`` (:mod:`colbert.local.auto_cells`): the setting reaches the embedded backend's options,
and a collection that crosses it over HTTP gets its ``pooled_ivf`` cells by itself, which its collection object
then reports as after an explicit training."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from service.engine.runtime import open_catalog
from service.settings import Settings
from tests.service.helpers import b64, pdf_bytes, ready_app


def test_the_setting_reaches_the_local_options(tmp_path: Path) -> None:
    assert Settings().auto_cells_units == 20_000
    with open_catalog(Settings(data_dir=tmp_path, auto_cells_units=123)) as catalog:
        assert catalog.backend.options.auto_cells_units == 123
    with open_catalog(Settings.from_env({"JEV4_AUTO_CELLS_UNITS": "0"}, data_dir=tmp_path)) as catalog:
        assert catalog.backend.options.auto_cells_units == 0


def _cells(c: Any, name: str) -> Any:
    """The collection object's ``cells``, checked to be the listing's too (read after it: a training may commit
    between the two reads, never undo itself)."""
    shown = c.get(f"/v1/collections/{name}").json()["cells"]
    listed = {x["name"]: x["cells"] for x in c.get("/v1/collections").json()["data"]}
    assert shown is None or listed[name] == shown
    return shown


def test_a_collection_past_the_threshold_reports_its_cells(tiny_encoder: Any, tmp_path: Path) -> None:
    with ready_app(tiny_encoder, tmp_path, auto_cells_units=4, first_stage="pooled_ivf") as c:
        assert c.post("/v1/collections", json={"name": "lib", "codec": "float16"}).status_code == 201
        body = {"pdf": b64(pdf_bytes(2)), "document_id": "d0"}
        assert c.post("/v1/collections/lib/documents", json=body).status_code == 201
        assert _cells(c, "lib") is None  # 2 units: below the threshold
        body = {"pdf": b64(pdf_bytes(2)), "document_id": "d1"}
        assert c.post("/v1/collections/lib/documents", json=body).status_code == 201
        deadline = time.monotonic() + 30
        while (cells := _cells(c, "lib")) is None:
            assert time.monotonic() < deadline, "no automatic training within 30 s"
            time.sleep(0.05)
        assert cells >= 1
        again = c.post("/v1/collections/lib/cells").json()  # the explicit step: the same cells, nothing to file
        assert (again["cells"], again["units_filed"]) == (cells, 0)
        query = {"query": "report page", "top_k": 4, "mode": "visual", "first_stage": "pooled_ivf"}
        found = c.post("/v1/collections/lib/search", json=query)
        assert found.status_code == 200, found.text
        assert len(found.json()["results"]) == 4
