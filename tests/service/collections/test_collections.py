"""Collection routes against the real server process (tiny checkpoint): create / list / get / delete,
documents by JSON and multipart, background jobs with progress, every error row. Search:
test_collections_search.py; restart, Qdrant and pooled first stage: test_collections_backends.py."""

from __future__ import annotations

import contextlib
import io
import sqlite3
import time
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.service.conftest import SERVER_ENV, LiveServer
from tests.service.helpers import api_error as _error
from tests.service.helpers import b64, data_uri, pdf_bytes, png_bytes
from tests.service.helpers import create_collection as _create

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
        "task": "retrieval",
        "unit_kind": "page",
        "ocr": None,  # the server's default (JEV4_OCR) applies
        "documents": 0,
        "pages": 0,
        "cells": None,  # no pooled_ivf cells until POST .../cells
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
    assert created["codec"] == "int8"  # the default codec of a new collection
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
    # a GIF: kept as the original and, beside it, a stored page image (a kept PNG/JPEG/WebP is its own page image)
    gif = io.BytesIO()
    Image.open(io.BytesIO(png_bytes())).save(gif, format="GIF")
    client.post(f"/v1/collections/{name}/documents", json={"image": b64(gif.getvalue()), "document_id": "gone"})
    db = live_server.data_dir / "collections" / name / "index.sqlite"  # the page image is in the index itself

    def stored() -> tuple[int, int]:
        """(page images, originals) in the index."""
        with contextlib.closing(sqlite3.connect(db)) as conn:
            images = int(conn.execute("SELECT COUNT(*) FROM unit_images").fetchone()[0])
            return images, int(conn.execute("SELECT COUNT(*) FROM originals").fetchone()[0])

    assert stored() == (1, 1)
    deleted = client.delete(f"/v1/collections/{name}/documents/gone")
    assert deleted.json() == {"id": "gone", "object": "document", "deleted": True}
    assert stored() == (0, 0)
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


# ---- errors ----------------------------------------------------------------------------------------------


def test_error_rows(client: httpx.Client, docs: str, live_server: LiveServer) -> None:
    url = f"/v1/collections/{docs}/documents"
    _error(client.post("/v1/collections/missing/documents", json={"image": b64(png_bytes())}), 404)
    _error(client.post("/v1/collections/missing/search", json={"query": "x"}), 404)
    _error(client.get(f"/v1/collections/{docs}/documents/missing"), 404, "document_not_found")
    _error(client.post(url, content=b"hello", headers={"Content-Type": "text/plain"}), 415)
    # a code file is a text document: it belongs in a collection of chunks, not of pages (docs/text-documents.md);
    # Markdown and plain text become pages here instead (tests/service/collections/converters/test_web.py)
    _error(client.post(url, files={"file": ("tool.py", b"print('hi')\n", "text/x-python")}), 409, "mixed_units")
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
