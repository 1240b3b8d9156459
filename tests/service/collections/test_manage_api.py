"""Everyday management over HTTP: the list of indexing jobs and the collection/job metrics."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.service.conftest import LiveServer
from tests.service.helpers import b64, pdf_bytes, png_bytes


@pytest.fixture(scope="module")
def managed(client: httpx.Client) -> Iterator[str]:
    name = "managed"
    client.delete(f"/v1/collections/{name}")
    assert client.post("/v1/collections", json={"name": name}).status_code == 201
    yield name
    client.delete(f"/v1/collections/{name}")


def _wait(client: httpx.Client, url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(url).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {url} did not finish")


def test_jobs_are_listed_newest_first_and_filtered(client: httpx.Client, managed: str) -> None:
    docs = f"/v1/collections/{managed}/documents?wait=false"
    first = client.post(docs, json={"pdf": b64(pdf_bytes(2)), "document_id": "j-ok"})
    assert first.status_code == 202
    # same id while the first is still indexing: both are accepted, and the one that commits second fails with
    # document_exists in its job (usually the second; an image can outrun a PDF, so either may win). The image is
    # one no other test uploads, so whichever wins, no later duplicate check meets it.
    second = client.post(docs, json={"image": b64(png_bytes(seed=91)), "document_id": "j-ok"})
    assert second.status_code == 202
    ends = {r.json()["id"]: _wait(client, r.headers["location"]) for r in (first, second)}  # job id -> final state
    assert sorted(j["status"] for j in ends.values()) == ["failed", "succeeded"]
    loser = next(i for i, j in ends.items() if j["status"] == "failed")
    listed = client.get(f"/v1/collections/{managed}/jobs").json()
    assert listed["object"] == "list"
    ids = [j["id"] for j in listed["data"]]
    assert ids[:2] == [second.json()["id"], first.json()["id"]]  # newest first
    failed = client.get(f"/v1/collections/{managed}/jobs", params={"status": "failed"}).json()["data"]
    assert [j["id"] for j in failed] == [loser]
    assert failed[0]["error"]["code"] == "document_exists"
    bad = client.get(f"/v1/collections/{managed}/jobs", params={"status": "done"})
    assert bad.status_code == 422
    missing = client.get("/v1/collections/no-such-thing/jobs")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "collection_not_found"


def _sample(text: str, family: str, labels: str) -> float:
    match = re.search(rf"^{family}{{{re.escape(labels)}}} (\S+)$", text, re.MULTILINE)
    assert match, f"{family}{{{labels}}} not in /metrics"
    return float(match.group(1))


def test_metrics_report_collections_and_jobs(client: httpx.Client, managed: str) -> None:
    added = client.post(f"/v1/collections/{managed}/documents", json={"pdf": b64(pdf_bytes(3)), "document_id": "m3"})
    assert added.status_code == 201
    text = client.get("/metrics").text
    counts = client.get(f"/v1/collections/{managed}").json()
    assert _sample(text, "jev4_collection_documents", f'collection="{managed}"') == counts["documents"]
    assert _sample(text, "jev4_collection_units", f'collection="{managed}"') == counts["pages"]
    for status in ("queued", "running", "succeeded", "failed"):
        assert _sample(text, "jev4_jobs", f'status="{status}"') >= 0
    client.delete(f"/v1/collections/{managed}/documents/m3")
    after = client.get("/metrics").text
    assert _sample(after, "jev4_collection_units", f'collection="{managed}"') == counts["pages"] - 3


def test_upload_keeps_the_file_name(client: httpx.Client, managed: str) -> None:
    # Before: a random id and empty metadata; the file's name was lost.
    url = f"/v1/collections/{managed}/documents"
    pdf = pdf_bytes(1)
    added = client.post(url, files={"file": ("Q3 report (final).pdf", pdf, "application/pdf")})
    assert added.status_code == 201, added.text
    assert added.json()["id"] == "Q3_report__final_.pdf"
    assert added.json()["metadata"] == {"source": "Q3 report (final).pdf"}
    # the same name again is the same document: 409 (not a second, random-id copy) unless replace
    again = client.post(url, files={"file": ("Q3 report (final).pdf", pdf_bytes(2), "application/pdf")})
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "document_exists"
    # a metadata "source" wins over the file name; a path sent as the file name keeps its last component
    named = client.post(
        url, files={"file": ("C:\\scans\\x.png", png_bytes(), "image/png")}, data={"metadata": '{"source": "scanner"}'}
    )
    assert named.status_code == 201, named.text
    assert (named.json()["id"], named.json()["metadata"]) == ("x.png", {"source": "scanner"})


def test_replace_keeps_metadata_unless_given(client: httpx.Client, managed: str) -> None:
    # Before: a replace without metadata silently stored {}.
    url = f"/v1/collections/{managed}/documents"
    first = {"image": b64(png_bytes()), "document_id": "kept", "metadata": {"lang": "en", "year": 2024}}
    assert client.post(url, json=first).status_code == 201
    kept = client.post(url, json={"pdf": b64(pdf_bytes(2)), "document_id": "kept", "replace": True})
    assert kept.status_code == 201, kept.text
    assert (kept.json()["pages"], kept.json()["metadata"]) == (2, {"lang": "en", "year": 2024})
    replace = {"document_id": "kept", "replace": "true"}
    form = client.post(url, files={"file": ("new.png", png_bytes(), "image/png")}, data=replace)
    assert form.json()["metadata"] == {"lang": "en", "year": 2024}  # the file name does not overwrite it either
    given = client.post(url, json={"image": b64(png_bytes()), "document_id": "kept", "replace": True, "metadata": {}})
    assert given.json()["metadata"] == {}  # metadata given: exactly that


def test_cli_lists_the_servers_jobs(
    client: httpx.Client, managed: str, live_server: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from service.__main__ import main

    body = {"image": b64(png_bytes()), "document_id": "cli-job"}
    job = client.post(f"/v1/collections/{managed}/documents?wait=false", json=body)
    assert job.status_code == 202
    assert _wait(client, job.headers["location"])["status"] == "succeeded"
    env = {"JEV4_API_KEYS": live_server.api_key}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        code = main(["jobs", "list", "--collection", managed, "--url", live_server.url, "--status", "succeeded"])
        failed = main(["jobs", "list", "--collection", managed, "--url", live_server.url, "--status", "failed"])
        missing = main(["jobs", "list", "--collection", "no-such-thing", "--url", live_server.url])
    out, err = capsys.readouterr()
    assert (code, failed, missing) == (0, 0, 1)
    assert out.splitlines()[0].startswith(f"{job.json()['id']}  succeeded  cli-job  1/1 pages  created ")
    assert job.json()["id"] not in out.split("\n", 1)[1]  # not among the failed ones
    assert err.strip() == "error: no collection named 'no-such-thing'"
    assert "Object(" not in out
