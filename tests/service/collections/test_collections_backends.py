"""Collections across backends and restarts: a server restart keeps everything (same hits, scores and page
images), the Qdrant backend (qdrant-client's local mode) round-trips, and JEV4_FIRST_STAGE=pooled reaches the
index."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.service.conftest import start_server, stop_process
from tests.service.helpers import add_pdf as _add_pdf
from tests.service.helpers import api_error as _error
from tests.service.helpers import b64, pdf_bytes, png_bytes
from tests.service.independent import DPI, MAX_PIXELS
from tests.service.independent import maxsim as _maxsim
from tests.service.independent import pdf_page_output as _pdf_page
from tests.service.independent import query_output as _query

# ---- restart ---------------------------------------------------------------------------------------------


def test_restart_keeps_collections(service_checkpoint: Path, tmp_path: Path) -> None:
    restart_dir = tmp_path / "data"
    log = tmp_path / "server.log"
    search = {"query": "quarterly report", "top_k": 5, "include_image": True}
    server = start_server(service_checkpoint, restart_dir, log)
    process = server.process
    try:
        with server.client() as c:
            assert c.post("/v1/collections", json={"name": "kept", "codec": "int8"}).status_code == 201
            c.post(
                "/v1/collections/kept/documents",
                files={"file": ("r.pdf", pdf_bytes(3), "application/pdf")},
                data={"document_id": "r", "metadata": '{"kind": "report"}'},
            ).raise_for_status()
            c.post("/v1/collections/kept/documents", json={"image": b64(png_bytes()), "document_id": "i"})
            before = (c.get("/v1/collections/kept").json(), c.get("/v1/collections/kept/documents").json())
            hits_before = c.post("/v1/collections/kept/search", json=search).json()["results"]
    finally:
        stop_process(process)
    assert process.returncode is not None
    server = start_server(service_checkpoint, restart_dir, log)
    process = server.process
    try:
        with server.client() as c:
            after = (c.get("/v1/collections/kept").json(), c.get("/v1/collections/kept/documents").json())
            hits_after = c.post("/v1/collections/kept/search", json=search).json()["results"]
    finally:
        stop_process(process)
    for state in (before, after):  # the files' size may change at a restart (the WAL is checkpointed)
        assert state[0].pop("disk_bytes") > 0
    assert after == before
    assert before[0]["documents"] == 2
    assert before[0]["pages"] == 4
    assert len(hits_before) == 4
    assert hits_after == hits_before  # same pages, scores, metadata and page images


# ---- the Qdrant backend (qdrant-client's local mode, in-process app) ---------------------------------------


@contextlib.contextmanager
def _ready_app(tiny_encoder: Any, **settings: Any) -> Iterator[Any]:
    """An in-process app on the tiny encoder with these settings, once /ready answers 200."""
    from litestar.testing import TestClient

    from service.http.app import create_app
    from service.settings import Settings

    with TestClient(create_app(Settings(**settings), encoder=tiny_encoder)) as c:
        deadline = time.monotonic() + 60
        while c.get("/ready").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        yield c


def test_qdrant_backend_round_trip(tmp_path: Path, tiny_encoder: Any) -> None:
    opts = {"data_dir": tmp_path, "collection_backend": "qdrant", "pdf_dpi": DPI, "image_max_pixels": MAX_PIXELS}
    with _ready_app(tiny_encoder, **opts) as c:
        assert c.post("/v1/collections", json={"name": "q", "codec": "float32"}).status_code == 201
        _add_pdf(c, "q", 2, document_id="r", metadata='{"kind": "report"}')
        hits = c.post(
            "/v1/collections/q/search",
            json={
                "query": "report",
                "mode": "visual",
                "exhaustive": True,
                "include_similarity_map": True,
                "filter": {"kind": "report"},
            },
        ).json()["results"]
        q = _query(tiny_encoder, "report").multivector
        for hit in hits:
            page = _pdf_page(tiny_encoder, pdf_bytes(2), hit["page"])
            assert hit["score"] == pytest.approx(_maxsim(q, page.multivector), abs=1e-4)
            assert (hit["similarity_map"]["rows"], hit["similarity_map"]["cols"]) == page.image_grid
        assert sorted(h["page"] for h in hits) == [1, 2]
        assert c.delete("/v1/collections/q/documents/r").status_code == 200
        _error(c.get("/v1/collections/q/documents/r"), 404)
        assert c.delete("/v1/collections/q").status_code == 200


# ---- the pooled first stage (JEV4_FIRST_STAGE=pooled) -------------------------------------------------------


def test_pooled_first_stage_setting_reaches_the_index(tmp_path: Path, tiny_encoder: Any) -> None:
    opts = {"data_dir": tmp_path, "first_stage": "pooled", "pdf_dpi": DPI, "image_max_pixels": MAX_PIXELS}
    with _ready_app(tiny_encoder, **opts) as c:
        assert c.post("/v1/collections", json={"name": "p", "codec": "float32"}).status_code == 201
        _add_pdf(c, "p", 3, document_id="r")
        store = c.app.state.runtime.catalog.get("p")
        assert store.options.first_stage == "pooled"
        body = {"query": "report", "top_k": 3, "candidates": 3}
        pooled = c.post("/v1/collections/p/search", json=body).json()["results"]
        exact = c.post("/v1/collections/p/search", json=body | {"exhaustive": True}).json()["results"]
        assert [(h["page"], h["score"]) for h in pooled] == [(h["page"], h["score"]) for h in exact]
