"""Scale-out on Qdrant: two apps (two ``Collections``) over ONE Qdrant — ``QdrantClient(":memory:")`` always, a real
server when ``QDRANT_URL`` is set (none can run on these machines). Page images, document records and indexing
jobs all live in Qdrant, so what one replica writes the other serves: an upload through A is found by B's next
search with its page image, a job started on A is polled on B, a delete on B is gone on A, a job whose
replica stopped (a record left running with a stale heartbeat) is reported failed, and a collection deleted through A
is a 404 ``collection_not_found`` through B (whose handle on it was open)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from qdrant_client import QdrantClient

from colbert.catalog import Catalog
from service.collections.job_store import QdrantJobStore
from service.http.app import create_app
from service.settings import Settings
from tests.service.helpers import pdf_bytes

NO_SERVER = "no Qdrant server can be started on these machines; set QDRANT_URL to run"


@pytest.fixture(
    params=[
        "memory",
        pytest.param(
            "server",
            marks=[pytest.mark.qdrant_server, pytest.mark.skipif(not os.environ.get("QDRANT_URL"), reason=NO_SERVER)],
        ),
    ]
)
def qdrant(request: pytest.FixtureRequest) -> Iterator[QdrantClient]:
    if request.param == "memory":
        client = QdrantClient(":memory:")
    else:
        client = QdrantClient(url=os.environ["QDRANT_URL"], api_key=os.environ.get("QDRANT_API_KEY"))
    yield client
    client.close()


def _app(settings: Settings, encoder: Any, client: QdrantClient) -> TestClient[Any]:
    catalog = Catalog(settings.data_dir, backend="qdrant", qdrant_client=client)
    return TestClient(create_app(settings, encoder=encoder, catalog=catalog), timeout=120)


def _ready(client: TestClient[Any]) -> None:
    deadline = time.monotonic() + 120
    while client.get("/ready").status_code != 200:
        assert time.monotonic() < deadline, "not ready"
        time.sleep(0.05)


def _job(client: TestClient[Any], name: str, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        job: dict[str, Any] = client.get(f"/v1/collections/{name}/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def _search(client: TestClient[Any], name: str) -> list[dict[str, Any]]:
    body = {"query": "quarterly report", "top_k": 10, "exhaustive": True, "include_image": True}
    response = client.post(f"/v1/collections/{name}/search", json=body)
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def test_two_replicas_over_one_qdrant(qdrant: QdrantClient, tiny_encoder: Any, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        collection_backend="qdrant",
        pdf_dpi=36,
        image_max_pixels=64 * 28 * 28,
        job_heartbeat_s=0.2,
        job_stale_after_s=1.0,
    )
    name = f"shared-{uuid.uuid4().hex[:8]}"
    with _app(settings, tiny_encoder, qdrant) as a, _app(settings, tiny_encoder, qdrant) as b:
        _ready(a)
        _ready(b)
        assert a.post("/v1/collections", json={"name": name, "codec": "float32"}).status_code == 201
        upload = a.post(
            f"/v1/collections/{name}/documents",
            params={"wait": "false"},
            files={"file": ("doc.pdf", pdf_bytes(2), "application/pdf")},
            data={"document_id": "report"},
        )
        assert upload.status_code == 202, upload.text
        done = _job(b, name, upload.json()["id"])  # A's job, polled through B
        assert done["status"] == "succeeded", done
        hits_b, hits_a = _search(b, name), _search(a, name)
        assert {(h["document_id"], h["page"]) for h in hits_b} == {("report", 1), ("report", 2)}
        images_a = {h["page"]: h["image"] for h in hits_a}
        assert all(h["image"] and h["image"] == images_a[h["page"]] for h in hits_b)  # served from Qdrant by B
        assert b.delete(f"/v1/collections/{name}/documents/report").status_code == 200
        assert a.get(f"/v1/collections/{name}/documents/report").status_code == 404
        assert _search(a, name) == []

        # a replica that stopped mid-job: its record stays "running" with a heartbeat nobody refreshes
        stale = {
            "id": "lost-job",
            "collection": name,
            "document_id": "x",
            "status": "running",
            "pages_done": 1,
            "pages_total": 3,
            "created_at": time.time() - 60,
            "finished_at": None,
            "heartbeat_at": time.time() - 30,
            "document": None,
            "error": None,
        }
        QdrantJobStore(qdrant).put(stale)
        lost = b.get(f"/v1/collections/{name}/jobs/lost-job").json()
        assert (lost["status"], lost["error"]["code"]) == ("failed", "job_interrupted")
        assert a.get(f"/v1/collections/{name}/jobs/lost-job").json()["status"] == "failed"  # recorded for all
        assert a.delete(f"/v1/collections/{name}").status_code == 200

        # B still holds its handle on the collection A deleted: its next requests find it gone (404, not a 500)
        for gone in (
            b.post(f"/v1/collections/{name}/search", json={"query": "quarterly report"}),
            b.get(f"/v1/collections/{name}/documents/report"),
            b.get(f"/v1/collections/{name}"),
        ):
            assert gone.status_code == 404, gone.text
            assert gone.json()["error"]["code"] == "collection_not_found", gone.text
