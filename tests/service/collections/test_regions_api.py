"""``regions: true`` over HTTP (live server, tiny checkpoint): text regions are the highlighted words' lines, a
visual region's score is the map's best cell, hybrid orders text first, the page-similarity route answers the
same regions as a hybrid search for that page, chunk hits get document line ranges, and bad input is a 4xx."""

from __future__ import annotations

import io
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.service.helpers import b64, create_collection, png_bytes, text_pdf
from tests.service.helpers import error_message as _error

NAME = "regions"
PAGES = ["Invoice X7200B\ntotal due", "Quarterly revenue north region\nexpenses by month\nrevenue forecast"]
GO = "package kv\n\n// Get returns the value of key.\nfunc Get(key string) string {\n\treturn store[key]\n}\n"


@pytest.fixture(scope="module")
def pages(client: httpx.Client) -> str:
    create_collection(client, NAME, codec="float32")
    up = client.post(
        f"/v1/collections/{NAME}/documents",
        files={"file": ("doc.pdf", text_pdf(PAGES), "application/pdf")},
        data={"document_id": "report"},
    )
    assert up.status_code == 201, up.text
    photo = client.post(
        f"/v1/collections/{NAME}/documents", json={"image": b64(png_bytes(120, 80)), "document_id": "p"}
    )
    assert photo.status_code == 201, photo.text
    return NAME


def _search(client: httpx.Client, body: dict[str, Any], name: str = NAME) -> Any:
    response = client.post(f"/v1/collections/{name}/search", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_text_regions_are_the_lines_of_the_highlighted_words(client: httpx.Client, pages: str) -> None:
    body = {"query": "quarterly revenue", "mode": "text", "regions": True, "highlight": True}
    hit = _search(client, body)["results"][0]
    assert (hit["document_id"], hit["page"]) == ("report", 2)
    regions = hit["regions"]
    assert [(r["text"], r["score"], r["source"]) for r in regions] == [
        ("Quarterly revenue north region", 1.0, "text"),
        ("revenue forecast", 0.5, "text"),
    ]
    png = client.get(f"/v1/collections/{NAME}/documents/report/pages/2/image")
    width, height = Image.open(io.BytesIO(png.content)).size
    first = [b for b in hit["highlights"] if b["y0"] < regions[0]["bbox"][3] * height]
    x0, y0, x1, y1 = regions[0]["bbox"]
    assert x0 * width == pytest.approx(min(b["x0"] for b in first), abs=0.1)
    assert y1 * height == pytest.approx(max(b["y1"] for b in first), abs=0.1)
    assert 0 <= x0 < x1 <= 1
    assert 0 <= y0 < y1 <= 1


def test_visual_region_score_is_the_maps_best_cell(client: httpx.Client, pages: str) -> None:
    body = {"query": "quarterly revenue", "mode": "visual", "regions": True, "include_similarity_map": True}
    for hit in _search(client, body)["results"]:
        assert 1 <= len(hit["regions"]) <= 5
        assert {r["source"] for r in hit["regions"]} == {"visual"}
        best = float(np.max(np.asarray(hit["similarity_map"]["maps"])))
        assert hit["regions"][0]["score"] == pytest.approx(best, abs=2e-4)
        scores = [r["score"] for r in hit["regions"]]
        assert scores == sorted(scores, reverse=True)


def test_hybrid_lists_text_regions_first_and_page_route_agrees(client: httpx.Client, pages: str) -> None:
    hits = _search(client, {"query": "revenue forecast", "regions": True, "top_k": 3})["results"]
    hit = next(h for h in hits if h.get("page") == 2)
    sources = [r["source"] for r in hit["regions"]]
    assert (sources[0], hit["regions"][0]["text"]) == ("text", "revenue forecast")
    assert sources == sorted(sources, key=lambda s: s != "text")  # text, then visual
    page = client.post(
        f"/v1/collections/{NAME}/documents/report/pages/2/similarity",
        json={"query": "revenue forecast", "regions": True},
    )
    assert page.status_code == 200, page.text
    assert page.json()["regions"] == hit["regions"]
    assert "regions" not in _search(client, {"query": "revenue"})["results"][0]  # only when asked


def test_a_page_without_words_gets_patch_boxes_and_a_stored_page_query_works(client: httpx.Client, pages: str) -> None:
    body = {"like": {"document_id": "report", "page": 1}, "regions": True, "top_k": 5}
    photo = next(h for h in _search(client, body)["results"] if h["document_id"] == "p")
    assert photo["regions"]
    assert {(r["text"], r["source"]) for r in photo["regions"]} == {("", "visual")}


# (0 and 1 pass as booleans, as for every boolean field: the JSON decoder is msgspec's lax mode)
@pytest.mark.parametrize("value", ["yes", None, [True], {"on": True}])
def test_regions_must_be_a_boolean(client: httpx.Client, pages: str, value: Any) -> None:
    response = client.post(f"/v1/collections/{NAME}/search", json={"query": "x", "regions": value})
    assert "regions" in _error(response, 422, "validation_error")


def test_chunk_regions_are_document_lines(client: httpx.Client) -> None:
    client.delete("/v1/collections/kv")
    assert client.post("/v1/collections", json={"name": "kv", "task": "code"}).status_code == 201
    up = client.post("/v1/collections/kv/documents", json={"text": GO, "path": "kv/get.go"})
    assert up.status_code == 201, up.text
    hit = _search(client, {"query": "value of key", "mode": "text", "regions": True}, "kv")["results"][0]
    start = hit["chunk"]["lines"][0]
    region = hit["regions"][0]
    assert (region["source"], region["score"], "bbox" in region) == ("text", 1.0, False)
    first, last = region["lines"]
    assert region["text"] == "\n".join(GO.split("\n")[first - 1 : last])
    assert first >= start
    assert "value of key" in region["text"]
    visual = _search(client, {"query": "value of key", "mode": "visual", "regions": True}, "kv")["results"][0]
    assert visual["regions"]
    assert {r["source"] for r in visual["regions"]} == {"visual"}
    for r in visual["regions"]:
        assert r["text"] == "\n".join(GO.split("\n")[r["lines"][0] - 1 : r["lines"][1]])


def test_pooled_chunk_collection_refuses_visual_regions(client: httpx.Client) -> None:
    client.delete("/v1/collections/kvpool")
    created = client.post("/v1/collections", json={"name": "kvpool", "task": "code", "pool_factor": 2})
    assert created.status_code == 201, created.text
    assert client.post("/v1/collections/kvpool/documents", json={"text": GO, "path": "a.go"}).status_code == 201
    refused = client.post("/v1/collections/kvpool/search", json={"query": "key", "mode": "visual", "regions": True})
    assert "pool_factor 2" in _error(refused, 422, "regions_unavailable")
    hybrid = _search(client, {"query": "key", "mode": "hybrid", "regions": True}, "kvpool")
    assert any("text ones only" in w for w in hybrid["warnings"])
    assert {r["source"] for h in hybrid["results"] for r in h["regions"]} <= {"text"}
