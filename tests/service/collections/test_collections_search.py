"""Collection search against the real server process (tiny checkpoint): scores, page images and similarity maps
checked against an independent numpy MaxSim over the in-process encoder's vectors, pooled collections, filters,
first stage against exhaustive."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.ranking import assert_ranked
from tests.service.helpers import api_error as _error
from tests.service.helpers import b64, pdf_bytes, png_bytes
from tests.service.helpers import create_collection as _create
from tests.service.independent import image_output as _image
from tests.service.independent import maxsim as _maxsim
from tests.service.independent import pdf_page_output as _pdf_page
from tests.service.independent import query_output as _query


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
    assert_ranked([(h["document_id"], h["page"]) for h in results], expected, atol=1e-4)  # order up to the tolerance


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
    exact_scores = {(h["document_id"], h["page"]): h["score"] for h in exact}
    assert len(fast) == len(exact)
    for hit in fast:
        assert hit["score"] == pytest.approx(exact_scores[(hit["document_id"], hit["page"])], abs=1e-5)
    assert_ranked([(h["document_id"], h["page"]) for h in fast], exact_scores, atol=1e-5)
