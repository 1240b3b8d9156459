"""Scale-out on one host: several real ``serve`` processes on ONE embedded data directory.

A is the session's server (:mod:`tests.service.conftest`), B a second process started here on A's data
directory. Everything of a document lives in the collection's SQLite file and jobs in ``jobs.sqlite``, so:
a document uploaded through A is found by B's very next search (the stated catch-up delay: none beyond the
commit — each search first loads the other processes' commits), with its page image; a job started on A is
polled on B; a delete on B is gone on A; and ``kill -9`` of a third process K in the middle of a replacing
upload leaves A and B serving the old document, K's job reported failed (``job_interrupted``) once its
heartbeat is stale.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.conftest import LiveServer, start_server, stop_process
from tests.service.helpers import pdf_bytes

FAST_JOBS = {"JEV4_JOB_HEARTBEAT_S": "0.5", "JEV4_JOB_STALE_AFTER_S": "3"}


@pytest.fixture(scope="module")
def second(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    log = tmp_path_factory.mktemp("second") / "server.log"
    server = start_server(live_server.checkpoint, live_server.data_dir, log, env=FAST_JOBS)
    try:
        yield server
    finally:
        stop_process(server.process)


def _upload(client: httpx.Client, name: str, doc: str, pages: int, *, wait: bool, **form: str) -> dict[str, Any]:
    response = client.post(
        f"/v1/collections/{name}/documents",
        params={"wait": str(wait).lower()},
        files={"file": ("doc.pdf", pdf_bytes(pages), "application/pdf")},
        data={"document_id": doc, **form},
    )
    assert response.status_code == (201 if wait else 202), response.text
    return dict(response.json())


def _poll(client: httpx.Client, name: str, job_id: str, until: set[str], timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/v1/collections/{name}/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["status"] in until or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def _midway(client: httpx.Client, name: str, job_id: str, timeout: float = 120) -> dict[str, Any]:
    """The job once it has embedded some pages (or ended)."""
    deadline = time.monotonic() + timeout
    while True:
        job = _poll(client, name, job_id, {"running", "succeeded", "failed"})
        if job["status"] != "running" or job["pages_done"] > 0 or time.monotonic() > deadline:
            return job
        time.sleep(0.02)


def _search(client: httpx.Client, name: str, **extra: Any) -> list[dict[str, Any]]:
    body = {"query": "quarterly report", "top_k": 10, "exhaustive": True, **extra}
    response = client.post(f"/v1/collections/{name}/search", json=body)
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def test_two_processes_share_documents_jobs_images_and_deletes(live_server: LiveServer, second: LiveServer) -> None:
    with live_server.client() as a, second.client() as b:
        a.delete("/v1/collections/shared")
        assert a.post("/v1/collections", json={"name": "shared", "codec": "float32"}).status_code == 201
        assert b.get("/v1/collections/shared").status_code == 200  # made by A, opened by B on demand
        job = _upload(a, "shared", "report", 2, wait=False, metadata='{"v": 1}')
        done = _poll(b, "shared", job["id"], {"succeeded", "failed"})  # A's job, polled through B
        assert done["status"] == "succeeded", done
        assert (done["pages_done"], done["pages_total"]) == (2, 2)
        hits_b = _search(b, "shared", include_image=True)  # B's first search after A's commit finds it
        assert {(h["document_id"], h["page"]) for h in hits_b} == {("report", 1), ("report", 2)}
        hits_a = _search(a, "shared", include_image=True)
        images_a = {h["page"]: h["image"] for h in hits_a}
        assert all(h["image"] and h["image"] == images_a[h["page"]] for h in hits_b)  # B serves A's page images
        assert [h["score"] for h in hits_b] == [h["score"] for h in hits_a]
        assert b.delete("/v1/collections/shared/documents/report").status_code == 200
        assert a.get("/v1/collections/shared/documents/report").status_code == 404
        assert _search(a, "shared") == []
        a.delete("/v1/collections/shared")
        assert b.get("/v1/collections/shared").status_code == 404  # B's open handle noticed the delete


def test_kill_9_mid_upload_leaves_the_old_document(live_server: LiveServer, second: LiveServer, tmp_path: Path) -> None:
    slow_pages = {"JEV4_PDF_PAGES_PER_STEP": "1", "JEV4_PDF_DPI": "144", "JEV4_IMAGE_MAX_PIXELS": str(1024 * 28 * 28)}
    killed = start_server(live_server.checkpoint, live_server.data_dir, tmp_path / "k.log", env=slow_pages | FAST_JOBS)
    try:
        with live_server.client() as a, second.client() as b, killed.client() as k:
            a.delete("/v1/collections/crash")
            assert a.post("/v1/collections", json={"name": "crash"}).status_code == 201
            _upload(a, "crash", "doc", 1, wait=True, metadata='{"v": "old"}')
            caught = None
            attempts = 5
            for attempt in range(attempts):  # kill K while its replacing upload is between pages
                job = _upload(k, "crash", "doc", 12, wait=False, metadata='{"v": "new"}', replace="true")
                # K's own view (live, not B's heartbeat-stale copy), so at least one page is left when it dies
                seen = _midway(k, "crash", job["id"])
                if seen["status"] == "running" and seen["pages_done"] < 10:
                    killed.process.send_signal(signal.SIGKILL)
                    killed.process.wait(10)
                    caught = job
                    break
                _upload(a, "crash", "doc", 1, wait=True, metadata='{"v": "old"}', replace="true")  # try again
                assert attempt < attempts - 1, f"never caught K between pages (last seen: {seen})"
            assert caught is not None
            for client in (a, b):  # the old document, whole, on both survivors
                info = client.get("/v1/collections/crash/documents/doc").json()
                assert (info["metadata"], info["pages"]) == (
                    {"source": "doc.pdf", "v": "old"},
                    1,
                )  # source: the file name
                assert {(h["document_id"], h["page"]) for h in _search(client, "crash")} == {("doc", 1)}
            failed = _poll(b, "crash", caught["id"], {"failed", "succeeded"}, timeout=30)
            assert failed["status"] == "failed", failed
            assert failed["error"]["code"] == "job_interrupted"
            a.delete("/v1/collections/crash")
    finally:
        stop_process(killed.process)
