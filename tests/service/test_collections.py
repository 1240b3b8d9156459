"""Collection routes against the real server process (tiny checkpoint): create / list / get / delete,
documents by JSON and multipart, background jobs with progress, search with images and similarity maps
(scores and maps checked against an independent numpy MaxSim over the in-process encoder's vectors),
filters, every error row, and a restart that keeps everything."""

from __future__ import annotations

import base64
import contextlib
import io
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from model.pdf import render_pages
from model.types import parse_task
from tests.service.conftest import API_KEY, SERVER_ENV, LiveServer, _free_port, _wait_ready
from tests.service.helpers import b64, data_uri, pdf_bytes, png_bytes

DPI = int(SERVER_ENV["JEV4_PDF_DPI"])
MAX_PIXELS = int(SERVER_ENV["JEV4_IMAGE_MAX_PIXELS"])


def _create(client: httpx.Client, name: str, **fields: Any) -> dict[str, Any]:
    client.delete(f"/v1/collections/{name}")
    response = client.post("/v1/collections", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _add_pdf(client: httpx.Client, name: str, pages: int, **data: str) -> httpx.Response:
    """Upload a ``pages``-page PDF to collection ``name`` as multipart (``data``: the form fields); expect 201."""
    response = client.post(
        f"/v1/collections/{name}/documents",
        files={"file": ("doc.pdf", pdf_bytes(pages), "application/pdf")},
        data=data,
    )
    assert response.status_code == 201, response.text
    return response


def _error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "code"}
    if code is not None:
        assert error["code"] == code, error
    return error


@pytest.fixture(scope="module")
def docs(client: httpx.Client) -> str:
    """A float32 collection (exact scores) holding a 2-page PDF (multipart) and an image (JSON)."""
    name = "docs"
    _create(client, name, codec="float32")
    _add_pdf(client, name, 2, metadata='{"kind": "report", "year": 2024}', document_id="report")
    image = client.post(
        f"/v1/collections/{name}/documents",
        json={
            "image": b64(png_bytes(120, 80, seed=3)),
            "document_id": "photo",
            "metadata": {"kind": "photo"},
        },
    )
    assert image.status_code == 201, image.text
    return name


# ---- collections -----------------------------------------------------------------------------------------


def test_create_list_get_delete(client: httpx.Client, tiny_encoder: Any) -> None:
    info = tiny_encoder.info
    small = min(info.matryoshka_dims)
    created = _create(client, "lifecycle", dimensions=small, codec="int8", pool_factor=2)
    assert created["disk_bytes"] > 0  # the embedded backend's files
    assert {k: v for k, v in created.items() if k != "disk_bytes"} == {
        "object": "collection",
        "name": "lifecycle",
        "dimensions": small,
        "multivector_dimensions": info.multivector_dim,
        "codec": "int8",
        "pool_factor": 2,
        "documents": 0,
        "pages": 0,
    }
    names = [c["name"] for c in client.get("/v1/collections").json()["data"]]
    assert "lifecycle" in names
    assert client.get("/v1/collections/lifecycle").json() == created
    _error(client.post("/v1/collections", json={"name": "lifecycle"}), 409)
    deleted = client.delete("/v1/collections/lifecycle")
    assert deleted.status_code == 200
    assert deleted.json() == {"id": "lifecycle", "object": "collection", "deleted": True}
    _error(client.get("/v1/collections/lifecycle"), 404)
    _error(client.delete("/v1/collections/lifecycle"), 404)


def test_default_dimensions_is_the_full_size(client: httpx.Client, tiny_encoder: Any) -> None:
    created = _create(client, "full-size")
    assert created["dimensions"] == tiny_encoder.info.hidden_size
    assert created["codec"] == "float16"
    client.delete("/v1/collections/full-size")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "Bad Name"}, 422),
        ({"name": "ok-name", "dimensions": 3}, 422),
        ({"name": "ok-name", "codec": "int3"}, 422),
        ({"name": "ok-name", "pool_factor": 0}, 422),
        ({"name": "ok-name", "unknown": 1}, 422),
        ({}, 422),
    ],
)
def test_create_refuses_bad_bodies(client: httpx.Client, body: dict[str, Any], status: int) -> None:
    _error(client.post("/v1/collections", json=body), status)
    assert client.get("/v1/collections/ok-name").status_code == 404


# ---- documents -------------------------------------------------------------------------------------------


def test_documents_are_listed_and_read(client: httpx.Client, docs: str) -> None:
    report = client.get(f"/v1/collections/{docs}/documents/report").json()
    assert report["id"] == "report"
    assert report["pages"] == 2
    assert report["metadata"] == {"kind": "report", "year": 2024, "source": "doc.pdf"}  # the uploaded file's name
    listed = client.get(f"/v1/collections/{docs}/documents").json()
    assert listed["total"] == 2
    assert sorted(d["id"] for d in listed["data"]) == ["photo", "report"]
    counts = client.get(f"/v1/collections/{docs}").json()
    assert (counts["documents"], counts["pages"]) == (2, 3)


def test_json_pdf_with_page_selection_and_generated_id(client: httpx.Client) -> None:
    name = _create(client, "selection")["name"]
    response = client.post(
        f"/v1/collections/{name}/documents",
        json={"pdf": data_uri(pdf_bytes(3), "application/pdf"), "pages": "1,3", "metadata": {"a": 1}},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["pages"] == 2
    assert len(body["id"]) == 32
    assert client.get(f"/v1/collections/{name}/documents/{body['id']}").json()["metadata"] == {"a": 1}
    hits = client.post(f"/v1/collections/{name}/search", json={"query": "report", "exhaustive": True}).json()
    assert sorted(h["page"] for h in hits["results"]) == [1, 3]
    client.delete(f"/v1/collections/{name}")


def test_duplicate_id_is_409_and_replace_replaces(client: httpx.Client) -> None:
    name = _create(client, "replace")["name"]
    url = f"/v1/collections/{name}/documents"
    first = {"pdf": b64(pdf_bytes(2)), "document_id": "doc", "metadata": {"v": 1}}
    assert client.post(url, json=first).status_code == 201
    _error(client.post(url, json=first), 409)
    again = client.post(url, json={"image": b64(png_bytes()), "document_id": "doc", "replace": True})
    assert again.status_code == 201, again.text
    assert again.json()["pages"] == 1
    assert again.json()["metadata"] == {"v": 1}  # a replace without metadata keeps the document's
    image = client.post(
        f"/v1/collections/{name}/search", json={"query": "x", "include_image": True, "exhaustive": True}
    ).json()["results"]
    assert [(h["document_id"], h["page"]) for h in image] == [("doc", 1)]
    client.delete(f"/v1/collections/{name}")


def test_delete_document(client: httpx.Client, live_server: LiveServer) -> None:
    name = _create(client, "delete-doc")["name"]
    client.post(f"/v1/collections/{name}/documents", json={"image": b64(png_bytes()), "document_id": "gone"})
    db = live_server.data_dir / "collections" / name / "index.sqlite"  # the page image is in the index itself

    def stored_images() -> int:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM unit_images").fetchone()[0])

    assert stored_images() == 1
    deleted = client.delete(f"/v1/collections/{name}/documents/gone")
    assert deleted.json() == {"id": "gone", "object": "document", "deleted": True}
    assert stored_images() == 0
    _error(client.get(f"/v1/collections/{name}/documents/gone"), 404, "document_not_found")
    _error(client.delete(f"/v1/collections/{name}/documents/gone"), 404, "document_not_found")
    client.delete(f"/v1/collections/{name}")
    assert not db.exists()


def test_background_job_reports_progress(client: httpx.Client) -> None:
    name = _create(client, "jobs")["name"]
    response = client.post(
        f"/v1/collections/{name}/documents?wait=false",
        files={"file": ("long.pdf", pdf_bytes(6), "application/pdf")},
        data={"document_id": "long"},
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/collections/{name}/jobs/{job['id']}"
    assert job["status"] in ("queued", "running")
    seen = []
    deadline = time.monotonic() + 120
    while job["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
        job = client.get(response.headers["location"]).json()
        seen.append((job["pages_done"], job["pages_total"]))
    assert job["status"] == "succeeded", job
    assert job["pages_done"] == job["pages_total"] == 6
    assert job["document"]["pages"] == 6
    assert all(total in (None, 6) and 0 <= done <= 6 for done, total in seen)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)  # never goes back
    assert client.get(f"/v1/collections/{name}/documents/long").json()["pages"] == 6
    client.delete(f"/v1/collections/{name}")


def test_a_job_takes_more_pages_than_a_waiting_request(client: httpx.Client) -> None:
    # a manual longer than JEV4_MAX_PDF_PAGES (the synchronous cap) is indexed by a background job, whose cap is
    # JEV4_MAX_JOB_PDF_PAGES
    name = _create(client, "long-manual")["name"]
    pages = int(SERVER_ENV["JEV4_MAX_PDF_PAGES"]) + 1
    response = client.post(f"/v1/collections/{name}/documents?wait=false", json={"pdf": b64(pdf_bytes(pages))})
    assert response.status_code == 202, response.text
    deadline = time.monotonic() + 120
    while (job := client.get(response.headers["location"]).json())["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert job["status"] == "succeeded", job
    assert job["document"]["pages"] == pages
    client.delete(f"/v1/collections/{name}")


def test_background_job_checks_come_first_and_failures_are_reported(client: httpx.Client) -> None:
    name = _create(client, "job-fail")["name"]
    url = f"/v1/collections/{name}/documents?wait=false"
    # what can be checked without the model is answered at once, not in a job
    _error(client.post(url, json={"pdf": b64(pdf_bytes(2)), "pages": "5"}), 422, "invalid_pages")
    job_cap = int(SERVER_ENV["JEV4_MAX_JOB_PDF_PAGES"])
    error = _error(client.post(url, json={"pdf": b64(pdf_bytes(job_cap + 1))}), 413, "too_many_pages")
    assert "JEV4_MAX_JOB_PDF_PAGES" in error["message"]
    _error(client.get(f"/v1/collections/{name}/jobs/nope"), 404, "job_not_found")
    # two jobs racing for one id: one stores the document, the other fails with the 409 body (or, if the
    # first was already done, the second is refused at once)
    body = {"pdf": b64(pdf_bytes(4)), "document_id": "same"}
    responses = [client.post(url, json=body) for _ in range(2)]
    assert responses[0].status_code == 202
    jobs = []
    for response in responses:
        if response.status_code == 409:
            continue
        assert response.status_code == 202, response.text
        deadline = time.monotonic() + 120
        while (job := client.get(response.headers["location"]).json())["status"] not in (
            "succeeded",
            "failed",
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        jobs.append(job)
    statuses = sorted(job["status"] for job in jobs)
    assert statuses in (["failed", "succeeded"], ["succeeded"])
    if len(jobs) == 2:
        failed = next(job for job in jobs if job["status"] == "failed")
        assert failed["error"]["code"] == "document_exists"
        assert failed["document"] is None
    assert client.get(f"/v1/collections/{name}").json()["documents"] == 1
    client.delete(f"/v1/collections/{name}")


# ---- search ----------------------------------------------------------------------------------------------


def _maxsim(query: np.ndarray, page: np.ndarray) -> float:
    return float((query @ page.T).max(axis=1).sum())  # (Lq, Ld) -> max over page tokens -> sum


def _query(encoder: Any, text: str) -> Any:
    prepared = encoder.processor.prepare_text(text, parse_task("retrieval.query"))
    return encoder.embed([prepared], return_multivector=True)[0]


def _image(encoder: Any, image: Image.Image) -> Any:
    prepared = encoder.processor.prepare_image(image, parse_task("retrieval.passage"), max_pixels=MAX_PIXELS)
    return encoder.embed([prepared], return_multivector=True)[0]


def _pdf_page(encoder: Any, pdf: bytes, page: int) -> Any:
    return _image(encoder, render_pages(pdf, dpi=DPI, pages=[page])[0].image)


def test_search_scores_equal_an_independent_maxsim(client: httpx.Client, docs: str, tiny_encoder: Any) -> None:
    query = "quarterly report page"
    body = {"query": query, "top_k": 3, "exhaustive": True, "mode": "visual"}
    body = client.post(f"/v1/collections/{docs}/search", json=body).json()
    results = body["results"]
    assert len(results) == 3
    q = _query(tiny_encoder, query).multivector  # (Lq, 128)
    assert body["usage"]["total_tokens"] == q.shape[0]
    pdf = pdf_bytes(2)
    photo = Image.open(io.BytesIO(png_bytes(120, 80, seed=3)))
    expected = {
        ("report", 1): _maxsim(q, _pdf_page(tiny_encoder, pdf, 1).multivector),
        ("report", 2): _maxsim(q, _pdf_page(tiny_encoder, pdf, 2).multivector),
        ("photo", 1): _maxsim(q, _image(tiny_encoder, photo).multivector),
    }
    for hit in results:
        assert hit["score"] == pytest.approx(expected[(hit["document_id"], hit["page"])], abs=1e-4)
    order = sorted(expected, key=lambda key: -expected[key])
    assert [(h["document_id"], h["page"]) for h in results] == order


def test_image_and_similarity_map(client: httpx.Client, docs: str, tiny_encoder: Any) -> None:
    query = "blue rectangle"
    hit = client.post(
        f"/v1/collections/{docs}/search",
        json={
            "query": query,
            "mode": "visual",
            "top_k": 1,
            "filter": {"kind": "report"},
            "include_image": True,
            "include_similarity_map": True,
            "exhaustive": True,
        },
    ).json()["results"][0]
    assert hit["document_id"] == "report"
    page = _pdf_page(tiny_encoder, pdf_bytes(2), hit["page"])
    rows, cols = page.image_grid
    start, stop = page.image_span
    grid = hit["similarity_map"]
    assert (grid["rows"], grid["cols"]) == (rows, cols)
    png = Image.open(io.BytesIO(base64.b64decode(hit["image"])))
    assert png.format == "PNG"
    assert png.size == (cols * 28, rows * 28)
    q = _query(tiny_encoder, query).multivector  # (Lq, 128)
    assert "".join(grid["tokens"]) == "Query: " + query
    assert len(grid["tokens"]) == q.shape[0]
    maps = np.array(grid["maps"], dtype=np.float32)  # (Lq, rows, cols)
    expected = (q @ page.multivector[start:stop].T).reshape(q.shape[0], rows, cols)  # (Lq, rows, cols)
    np.testing.assert_allclose(maps, expected, atol=1e-4)
    assert hit["score"] == pytest.approx(_maxsim(q, page.multivector), abs=1e-4)


def test_similarity_map_of_a_pooled_collection(client: httpx.Client) -> None:
    name = _create(client, "pooled", pool_factor=3)["name"]
    client.post(f"/v1/collections/{name}/documents", json={"image": b64(png_bytes(150, 90, seed=5))})
    hit = client.post(f"/v1/collections/{name}/search", json={"query": "noise", "include_similarity_map": True}).json()[
        "results"
    ][0]
    grid = hit["similarity_map"]
    maps = np.array(grid["maps"])
    assert maps.shape == (len(grid["tokens"]), grid["rows"], grid["cols"])
    assert np.all(np.abs(maps) <= 1.0 + 1e-3)
    assert "image" not in hit
    client.delete(f"/v1/collections/{name}")


def test_filter_selects_documents(client: httpx.Client, docs: str) -> None:
    url = f"/v1/collections/{docs}/search"
    photos = client.post(url, json={"query": "a", "top_k": 10, "filter": {"kind": "photo"}}).json()["results"]
    assert [(h["document_id"], h["page"]) for h in photos] == [("photo", 1)]
    assert photos[0]["metadata"] == {"kind": "photo"}
    year = client.post(url, json={"query": "a", "filter": {"year": 2024, "kind": "report"}}).json()["results"]
    assert {h["document_id"] for h in year} == {"report"}
    assert client.post(url, json={"query": "a", "filter": {"kind": "none"}}).json()["results"] == []
    _error(client.post(url, json={"query": "a", "filter": {"kind": [1, 2]}}), 422)


def test_first_stage_search_agrees_with_exhaustive_on_a_small_collection(client: httpx.Client, docs: str) -> None:
    url = f"/v1/collections/{docs}/search"
    fast = client.post(url, json={"query": "page", "top_k": 3}).json()["results"]
    exact = client.post(url, json={"query": "page", "top_k": 3, "exhaustive": True}).json()["results"]
    assert [(h["document_id"], h["page"]) for h in fast] == [(h["document_id"], h["page"]) for h in exact]


# ---- errors ----------------------------------------------------------------------------------------------


def test_error_rows(client: httpx.Client, docs: str, live_server: LiveServer) -> None:
    url = f"/v1/collections/{docs}/documents"
    _error(client.post("/v1/collections/missing/documents", json={"image": b64(png_bytes())}), 404)
    _error(client.post("/v1/collections/missing/search", json={"query": "x"}), 404)
    _error(client.get(f"/v1/collections/{docs}/documents/missing"), 404, "document_not_found")
    _error(client.post(url, content=b"hello", headers={"Content-Type": "text/plain"}), 415)
    _error(client.post(url, files={"file": ("notes.txt", b"just some text", "text/plain")}), 415)
    _error(client.post(url, json={"pdf": b64(b"%PDF-1.4 broken")}), 415)
    error = _error(client.post(url, json={"pdf": b64(pdf_bytes(9))}), 413)  # more pages than JEV4_MAX_PDF_PAGES=8
    assert "JEV4_MAX_PDF_PAGES" in error["message"]
    assert "wait=false" in error["message"]
    big = b"%PDF-" + b"0" * (int(SERVER_ENV["JEV4_MAX_BODY_BYTES"]) + 10)
    _error(client.post(url, files={"file": ("big.pdf", big, "application/pdf")}), 413)
    _error(client.post(url, json={"pdf": b64(pdf_bytes(2)), "pages": "3"}), 422, "invalid_pages")
    _error(client.post(url, json={"pdf": b64(pdf_bytes(2)), "image": b64(png_bytes())}), 422)
    _error(client.post(url, json={}), 422)
    _error(client.post(url, json={"image": b64(png_bytes()), "document_id": "a/b"}), 422)
    _error(client.post(url, json={"image": "%%%not base64"}), 422)
    _error(client.post(url, content=b"{not json", headers={"Content-Type": "application/json"}), 400)
    _error(client.post(url, files={"file": ("x.png", png_bytes(), "image/png")}, data={"metadata": "[1]"}), 422)
    _error(client.post(url, data={"metadata": "{}"}, files={"other": ("x", b"1", "text/plain")}), 422)
    _error(client.post(f"/v1/collections/{docs}/search", json={"query": ""}), 422)
    _error(client.post(f"/v1/collections/{docs}/search", json={"query": "x", "top_k": 0}), 422)
    _error(client.get(f"/v1/collections/{docs}/documents?limit=0"), 422)
    counts = client.get(f"/v1/collections/{docs}").json()
    assert (counts["documents"], counts["pages"]) == (2, 3)  # nothing half-added
    assert "Traceback" not in live_server.log()


def test_routes_need_the_api_key(live_server: LiveServer) -> None:
    response = httpx.get(f"{live_server.url}/v1/collections")
    _error(response, 401)


# ---- restart ---------------------------------------------------------------------------------------------


def _start(checkpoint: Path, data_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], LiveServer]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JEV4_")}
    env.update(SERVER_ENV)
    env.update(JEV4_MODEL=str(checkpoint), JEV4_PORT=str(port), JEV4_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1")
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "service", "serve"], env=env, stdout=out, stderr=out)
    server = LiveServer(f"http://127.0.0.1:{port}", API_KEY, checkpoint, data_dir, log, process)
    _wait_ready(server, timeout=180)
    return process, server


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def test_restart_keeps_collections(service_checkpoint: Path, tmp_path: Path) -> None:
    restart_dir = tmp_path / "data"
    log = tmp_path / "server.log"
    search = {"query": "quarterly report", "top_k": 5, "include_image": True}
    process, server = _start(service_checkpoint, restart_dir, log)
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
        _stop(process)
    assert process.returncode is not None
    process, server = _start(service_checkpoint, restart_dir, log)
    try:
        with server.client() as c:
            after = (c.get("/v1/collections/kept").json(), c.get("/v1/collections/kept/documents").json())
            hits_after = c.post("/v1/collections/kept/search", json=search).json()["results"]
    finally:
        _stop(process)
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
