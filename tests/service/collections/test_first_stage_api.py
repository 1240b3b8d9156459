"""The first stage over HTTP (issue 26): a search's ``first_stage`` (dense | pooled | ivf | pooled_ivf) and
``JEV4_FIRST_STAGE`` reach the embedded store; ``ivf`` asked of a collection whose codec has no centroid lists, and
``pooled_ivf`` of one without cells, are 422s naming what to send instead, before the query is embedded; with the
setting at ``ivf`` / ``pooled_ivf`` such a collection uses ``dense`` / ``pooled``. The collection object reports its
cells. Hits are exact
MaxSim whatever found them, so each hit's score is checked against an exhaustive search's score of the same page."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import pytest

import colbert.local.handle
from colbert.hybrid import FIRST_STAGES
from service.collections.search import Searcher
from service.collections.search_schemas import FirstStageName
from tests.service.helpers import b64, error_message, pdf_bytes, ready_app

QUERY = {"query": "report page", "top_k": 4, "mode": "visual"}


def _make(c: Any, name: str, codec: str) -> None:
    assert c.post("/v1/collections", json={"name": name, "codec": codec}).status_code == 201
    for i in range(2):
        body = {"pdf": b64(pdf_bytes(2)), "document_id": f"d{i}"}
        assert c.post(f"/v1/collections/{name}/documents", json=body).status_code == 201


def _scores(c: Any, name: str, **options: Any) -> dict[tuple[str, int], float]:
    response = c.post(f"/v1/collections/{name}/search", json={**QUERY, **options})
    assert response.status_code == 200, response.text
    return {(h["document_id"], h["page"]): h["score"] for h in response.json()["results"]}


@pytest.fixture
def ivf_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per ivf first stage the embedded store ran."""
    calls: list[int] = []
    real = colbert.local.handle.ivf_top

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(colbert.local.handle, "ivf_top", spy)
    return calls


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per search query the model embedded."""
    calls: list[int] = []
    real = Searcher._embed_query

    async def spy(self: Searcher, *args: Any) -> Any:
        calls.append(1)
        return await real(self, *args)

    monkeypatch.setattr(Searcher, "_embed_query", spy)
    return calls


def test_a_search_asks_for_its_first_stage(
    tiny_encoder: Any, tmp_path: Path, ivf_calls: list[int], embedded: list[int]
) -> None:
    with ready_app(tiny_encoder, tmp_path) as c:
        _make(c, "res", "residual2")
        _make(c, "f16", "float16")
        exact = _scores(c, "res", exhaustive=True)
        assert not ivf_calls
        for stage in ("ivf", "dense", "pooled"):
            found = _scores(c, "res", first_stage=stage, candidates=4)
            assert found, stage
            assert all(found[key] == pytest.approx(exact[key], abs=1e-5) for key in found), stage
        assert len(ivf_calls) == 1  # the ivf search, and only it
        before = len(embedded)
        message = error_message(
            c.post("/v1/collections/f16/search", json={**QUERY, "first_stage": "ivf"}), 422, "first_stage_unavailable"
        )
        assert len(embedded) == before  # refused before the model ran
        assert "residual2" in message
        assert "float16" in message
        assert "first_stage 'dense' or 'pooled'" in message
        for stage in ("dense", "pooled"):
            assert _scores(c, "f16", first_stage=stage)
        bad = c.post("/v1/collections/res/search", json={**QUERY, "first_stage": "plaid"})
        assert bad.status_code == 422, bad.text
        text = c.post("/v1/collections/f16/search", json={**QUERY, "mode": "text", "first_stage": "ivf"})
        assert text.status_code == 200, text.text  # not used by BM25: a warning, not an error
        assert any("first_stage does not apply" in w for w in text.json()["warnings"])
        assert len(ivf_calls) == 1


def test_the_ivf_setting_applies_where_the_codec_allows(
    tiny_encoder: Any, tmp_path: Path, ivf_calls: list[int]
) -> None:
    with ready_app(tiny_encoder, tmp_path, first_stage="ivf") as c:
        _make(c, "res", "residual2")
        _make(c, "f16", "float16")
        assert _scores(c, "f16")  # dense: float16 has no centroid lists
        assert not ivf_calls
        assert _scores(c, "res")
        assert len(ivf_calls) == 1
        assert _scores(c, "res", first_stage="dense")  # a search's own choice wins
        assert len(ivf_calls) == 1


def _cells(c: Any, name: str) -> Any:
    """The collection object's ``cells``, checked to be the listing's too."""
    listed = {x["name"]: x["cells"] for x in c.get("/v1/collections").json()["data"]}
    shown = c.get(f"/v1/collections/{name}").json()["cells"]
    assert listed[name] == shown
    return shown


def test_pooled_ivf_needs_trained_cells(tiny_encoder: Any, tmp_path: Path, embedded: list[int]) -> None:
    with ready_app(tiny_encoder, tmp_path) as c:
        _make(c, "f16", "float16")
        assert _cells(c, "f16") is None
        asked = {**QUERY, "first_stage": "pooled_ivf"}
        message = error_message(c.post("/v1/collections/f16/search", json=asked), 422, "first_stage_unavailable")
        assert "train-cells" in message
        assert "first_stage 'pooled'" in message
        assert not embedded  # refused before the query was embedded
        text = c.post("/v1/collections/f16/search", json={**asked, "mode": "text"})
        assert text.status_code == 200, text.text  # BM25 has no first stage: a warning, not an error
        assert any("first_stage does not apply" in w for w in text.json()["warnings"])
        assert _scores(c, "f16", first_stage="pooled")
        assert len(embedded) == 1
        error_message(c.post("/v1/collections/f16/cells", json={"cells": 0}), 422, "validation_error")
        error_message(c.post("/v1/collections/f16/cells", json={"cells": 999}), 422, "invalid_document")
        error_message(c.post("/v1/collections/nothing/cells"), 404, "collection_not_found")
        trained = c.post("/v1/collections/f16/cells", json={"cells": 4})
        assert trained.status_code == 200, trained.text
        pages = sum(d["pages"] for d in c.get("/v1/collections/f16/documents").json()["data"])
        assert trained.json() == {"object": "collection.cells", "collection": "f16", "cells": 4, "units_filed": pages}
        again = c.post("/v1/collections/f16/cells").json()  # no body: the stored cells kept, nothing left to file
        assert (again["cells"], again["units_filed"]) == (4, 0)
        assert _cells(c, "f16") == 4
        exact = _scores(c, "f16", exhaustive=True)
        found = _scores(c, "f16", first_stage="pooled_ivf", candidates=4)
        assert found
        assert all(found[key] == pytest.approx(exact[key], abs=1e-5) for key in found)


def test_the_pooled_ivf_setting_serves_collections_without_cells(tiny_encoder: Any, tmp_path: Path) -> None:
    with ready_app(tiny_encoder, tmp_path, first_stage="pooled_ivf") as c:
        _make(c, "f16", "float16")
        exact = _scores(c, "f16", exhaustive=True)
        found = _scores(c, "f16", candidates=4)  # no cells: pooled, not an error
        assert found
        assert all(found[key] == pytest.approx(exact[key], abs=1e-5) for key in found)
        assert c.post("/v1/collections/f16/cells", json={"cells": 2}).status_code == 200
        assert _cells(c, "f16") == 2
        assert _scores(c, "f16", candidates=4)


def test_the_wire_names_are_the_librarys_first_stages() -> None:
    """The API's (and the MCP tool's) ``first_stage`` literal is written out for the schema; it must name exactly
    the stages the store knows (``colbert.hybrid.FIRST_STAGES``, the CLI's choices)."""
    assert get_args(FirstStageName) == FIRST_STAGES
