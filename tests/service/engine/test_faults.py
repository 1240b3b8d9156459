"""Faults (issue 14 item 7), each against a server process of its own:

- ``kill -9`` of the server while an HTTP upload is being indexed, and while a replace is: after a restart the
  collection holds the old document or the new one, never a mix (page count and metadata agree, every page the
  index returns has its image, and no page beyond the document's count is searchable);
- a full disk during ingest (the data directory on a small tmpfs the test mounts as root; skipped with the
  reason where it cannot be mounted): a clear 507, the documents already there intact and searchable, and
  uploads work again once space is freed.

Slow (several server starts): ``RUN_SLOW=1``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.conftest import LiveServer, start_server, stop_process
from tests.service.helpers import b64, pdf_bytes, png_bytes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3000)]
COLLECTION = "faults"


# many small commits-in-waiting, so that a kill lands mid-document
# originals off (on by default): these runs were sized and checked with stored page images
FAULT_ENV = {
    "JEV4_MAX_PDF_PAGES": "64",
    "JEV4_MAX_JOB_PDF_PAGES": "64",
    "JEV4_PDF_PAGES_PER_STEP": "1",
    "JEV4_KEEP_ORIGINALS": "false",
}


def _kill9(server: LiveServer) -> None:
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(30)


def _upload(client: httpx.Client, doc_id: str, pages: int, tag: str, *, replace: bool, wait: bool) -> httpx.Response:
    body = {"pdf": b64(pdf_bytes(pages)), "document_id": doc_id, "metadata": {"tag": tag}, "replace": replace}
    return client.post(f"/v1/collections/{COLLECTION}/documents", json=body, params={"wait": str(wait).lower()})


def _kill_while_indexing(server: LiveServer, doc_id: str, pages: int, tag: str, *, replace: bool) -> None:
    """Start a background upload (``wait=false``), kill -9 the server once some pages are done, and check from
    the job's last report that the kill landed mid-document (some pages indexed, not all, not committed)."""
    with server.client() as client:
        response = _upload(client, doc_id, pages, tag, replace=replace, wait=False)
        assert response.status_code == 202, response.text
        job = response.headers["location"]
        deadline = time.monotonic() + 300
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            state = client.get(job).json()
            if state.get("pages_done", 0) >= 2 or state.get("status") in ("succeeded", "failed"):
                break
            time.sleep(0.05)
    _kill9(server)
    # the kill follows the read within milliseconds; the remaining pages take far longer
    assert state.get("status") == "running", state
    assert 2 <= state["pages_done"] < state["pages_total"] == pages, state


def _consistent(server: LiveServer, doc_id: str, versions: dict[str, int]) -> str | None:
    """The document's version tag (or None when absent), after checking it is whole and its images agree."""
    with server.client() as client:
        got = client.get(f"/v1/collections/{COLLECTION}/documents/{doc_id}")
        if got.status_code == 404:
            return None
        assert got.status_code == 200, got.text
        document = got.json()
        tag = document["metadata"]["tag"]
        assert document["pages"] == versions[tag], document  # never the old metadata with the new page count
        hits = client.post(
            f"/v1/collections/{COLLECTION}/search",
            json={"query": "quarterly report", "top_k": 1000, "exhaustive": True},
        ).json()["results"]
        pages = sorted(h["page"] for h in hits if h["document_id"] == doc_id)
        assert len(pages) == versions[tag], pages  # index = document: no extra or missing page
        for page in pages:
            image = client.get(f"/v1/collections/{COLLECTION}/documents/{doc_id}/pages/{page}/image")
            assert image.status_code == 200, image.text
            assert image.content[8:12] == b"WEBP"  # the stored page image (no original kept here)
        return str(tag)


@pytest.fixture
def fresh(service_checkpoint: Path, tmp_path: Path) -> tuple[Path, Path]:
    return service_checkpoint, tmp_path / "data"


def test_kill9_during_upload_and_replace(fresh: tuple[Path, Path]) -> None:
    checkpoint, data_dir = fresh
    versions = {"old": 3, "new": 40, "fresh": 40}
    server = start_server(checkpoint, data_dir, data_dir.parent / "run1.log", env=FAULT_ENV, timeout=900)
    try:
        with server.client() as client:
            assert client.post("/v1/collections", json={"name": COLLECTION}).status_code == 201
            assert _upload(client, "doc", 3, "old", replace=False, wait=True).status_code == 201
        _kill_while_indexing(server, "doc", 40, "new", replace=True)  # kill during a replace
        server = start_server(checkpoint, data_dir, data_dir.parent / "run2.log", env=FAULT_ENV, timeout=900)
        assert _consistent(server, "doc", versions) == "old"  # killed mid-document: the replace never committed
        _kill_while_indexing(server, "other", 40, "fresh", replace=False)  # kill during a first upload
        server = start_server(checkpoint, data_dir, data_dir.parent / "run3.log", env=FAULT_ENV, timeout=900)
        assert _consistent(server, "other", versions) is None
        assert _consistent(server, "doc", versions) == "old"
    finally:
        stop_process(server.process, grace=30)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_is_507_and_recovers(service_checkpoint: Path, small_fs: Path) -> None:
    data_dir = small_fs / "data"
    server = start_server(service_checkpoint, data_dir, small_fs.parent / "disk.log", env=FAULT_ENV, timeout=900)
    ballast = small_fs / "ballast"
    try:
        with server.client() as client:
            assert client.post("/v1/collections", json={"name": COLLECTION}).status_code == 201
            assert _upload(client, "keep", 2, "old", replace=False, wait=True).status_code == 201
            _fill(ballast)
            statuses = _upload_until_refused(client)
            assert statuses[-1] == 507, statuses
            error = client.get("/health")  # still alive
            assert error.status_code == 200
            assert _consistent(server, "keep", {"old": 2}) == "old"
            ballast.unlink()
            again = _upload(client, "after", 2, "fresh", replace=False, wait=True)
            assert again.status_code == 201, again.text
            assert _consistent(server, "after", {"fresh": 2}) == "fresh"
            assert _consistent(server, "keep", {"old": 2}) == "old"
    finally:
        stop_process(server.process, grace=30)
        ballast.unlink(missing_ok=True)


def _fill(path: Path) -> None:
    """Fill the filesystem, leaving a few KiB."""
    with path.open("wb") as file:
        try:
            while True:
                file.write(b"\0" * 65536)
                file.flush()
        except OSError:
            pass


def _upload_until_refused(client: httpx.Client) -> list[Any]:
    statuses: list[Any] = []
    for i in range(6):
        body = {"image": b64(png_bytes(200, 200, seed=i)), "document_id": f"fill-{i}"}
        response = client.post(f"/v1/collections/{COLLECTION}/documents", json=body)
        statuses.append(response.status_code)
        if response.status_code >= 400:
            assert response.status_code == 507, response.text
            assert response.json()["error"]["code"] == "insufficient_storage"
            break
    return statuses
