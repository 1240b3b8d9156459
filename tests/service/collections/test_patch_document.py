"""``PATCH /v1/collections/{name}/documents/{id}``: new metadata without re-embedding (merge patch or replace);
filters and hits follow at once; the units (scores, pages) stay as they were."""

from __future__ import annotations

import httpx

from tests.service.helpers import b64, pdf_bytes


def test_patch_metadata_without_reembedding(client: httpx.Client) -> None:
    name = "patching"
    client.delete(f"/v1/collections/{name}")
    assert client.post("/v1/collections", json={"name": name, "codec": "float32"}).status_code == 201
    docs = f"/v1/collections/{name}/documents"
    body = {"pdf": b64(pdf_bytes(2)), "document_id": "r", "metadata": {"lang": "en", "tags": {"a": 1, "b": 2}}}
    assert client.post(docs, json=body).status_code == 201
    search = {"query": "report", "exhaustive": True, "top_k": 5}
    before = client.post(f"/v1/collections/{name}/search", json=search).json()["results"]

    patched = client.patch(f"{docs}/r", json={"metadata": {"lang": "de", "tags": {"b": None, "c": 3}, "x": True}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["metadata"] == {"lang": "de", "tags": {"a": 1, "c": 3}, "x": True}
    assert patched.json()["pages"] == 2
    assert client.get(f"{docs}/r").json()["metadata"] == patched.json()["metadata"]
    after = client.post(f"/v1/collections/{name}/search", json=search).json()["results"]
    assert [(h["page"], h["score"]) for h in after] == [(h["page"], h["score"]) for h in before]  # same vectors
    assert all(h["metadata"]["lang"] == "de" for h in after)
    de = client.post(f"/v1/collections/{name}/search", json={**search, "filter": {"lang": "de"}}).json()["results"]
    assert len(de) == 2
    assert (
        client.post(f"/v1/collections/{name}/search", json={**search, "filter": {"lang": "en"}}).json()["results"] == []
    )

    replaced = client.patch(f"{docs}/r", json={"metadata": {"only": "this"}, "replace": True})
    assert replaced.json()["metadata"] == {"only": "this"}

    missing = client.patch(f"{docs}/nope", json={"metadata": {}})
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "document_not_found")
    bad = client.patch(f"{docs}/r", json={"metadata": [1]})
    assert bad.status_code == 422
    assert client.patch(f"{docs}/r", json={"meta": {}}).status_code == 422
    client.delete(f"/v1/collections/{name}")
