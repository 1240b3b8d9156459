"""Search modes over HTTP (issue 15): text / hybrid / visual, signals per hit, include_text, highlight boxes on the
page image, image and stored-page queries, filters inside BM25, and every bad input as a clear 4xx."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.service.helpers import b64, create_collection, png_bytes, text_pdf

NAME = "hybrid"
PAGES = ["Invoice X7200B\ntotal due", "Quarterly revenue north region", "Release notes parse_page_selection"]


@pytest.fixture(scope="module")
def hybrid(client: httpx.Client) -> str:
    create_collection(client, NAME, codec="float32")
    pdf = client.post(
        f"/v1/collections/{NAME}/documents",
        files={"file": ("doc.pdf", text_pdf(PAGES, blank_pages=1), "application/pdf")},
        data={"document_id": "report", "metadata": '{"kind": "report", "year": 2024}'},
    )
    assert pdf.status_code == 201, pdf.text
    photo = client.post(
        f"/v1/collections/{NAME}/documents",
        json={"image": b64(png_bytes(120, 80, seed=3)), "document_id": "photo", "metadata": {"kind": "photo"}},
    )
    assert photo.status_code == 201, photo.text
    return NAME


def _search(client: httpx.Client, body: dict[str, Any], status: int = 200) -> Any:
    response = client.post(f"/v1/collections/{NAME}/search", json=body)
    assert response.status_code == status, response.text
    return response.json()


def test_text_mode_is_bm25_over_the_text_layer(client: httpx.Client, hybrid: str) -> None:
    out = _search(client, {"query": "x7200b", "mode": "text", "include_text": True})
    assert [(r["document_id"], r["page"]) for r in out["results"]] == [("report", 1)]
    hit = out["results"][0]
    assert hit["text"] == PAGES[0]
    assert set(hit["signals"]) == {"text"}
    assert hit["signals"]["text"]["rank"] == 1
    assert hit["score"] == pytest.approx(hit["signals"]["text"]["score"])
    assert out["usage"]["total_tokens"] == 0  # text mode runs no model
    # identifiers: a query word finds a part of a snake_case name
    assert [r["page"] for r in _search(client, {"query": "page selection", "mode": "text"})["results"]] == [3]


def test_hybrid_fuses_and_says_which_signal_found_each_hit(client: httpx.Client, hybrid: str) -> None:
    out = _search(client, {"query": "quarterly revenue", "top_k": 10, "include_text": True})  # default: hybrid
    results = out["results"]
    assert len(results) == 5  # every unit was a candidate: 4 pages + the photo
    assert all("maxsim" in r["signals"] for r in results)
    first = results[0]
    assert (first["document_id"], first["page"]) == ("report", 2)  # BM25 rank 1 + any MaxSim rank beats the rest
    assert first["signals"]["text"]["rank"] == 1
    assert next(r for r in results if r["document_id"] == "photo")["text"] is None
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    visual = _search(client, {"query": "quarterly revenue", "mode": "visual", "top_k": 10})["results"]
    assert all("text" not in r["signals"] for r in visual)
    assert {(r["document_id"], r["page"]) for r in visual} == {(r["document_id"], r["page"]) for r in results}


def test_highlight_boxes_fall_on_the_word_in_the_page_image(client: httpx.Client, hybrid: str) -> None:
    out = _search(client, {"query": "X7200B", "mode": "text", "highlight": True, "include_image": True})
    hit = out["results"][0]
    (box,) = hit["highlights"]
    assert box["word"] == "X7200B"
    assert box["terms"] == ["x7200b"]
    image = np.asarray(Image.open(io.BytesIO(base64.b64decode(hit["image"]))).convert("L"))  # (h, w)
    x0, y0, x1, y1 = (round(box[k]) for k in ("x0", "y0", "x1", "y1"))
    inside = image[y0:y1, x0:x1] < 128
    assert inside.mean() > 0.1  # ink of the word inside its box
    # the same box's row band to the right of the word holds no ink (the word ends where the box ends)
    right = image[y0:y1, x1 + 3 : min(image.shape[1], x1 + 40)] < 128
    assert right.mean() < 0.02


def test_filters_apply_inside_bm25(client: httpx.Client, hybrid: str) -> None:
    assert _search(client, {"query": "x7200b", "mode": "text", "filter": {"kind": "photo"}})["results"] == []
    out = _search(client, {"query": "x7200b", "mode": "text", "filter": {"year": {"$gte": 2020}}})
    assert [r["page"] for r in out["results"]] == [1]
    bad = _search(client, {"query": "x", "filter": {"year": {"$gte": "2020"}}}, 422)
    assert bad["error"]["code"] == "invalid_filter"


def test_image_and_stored_page_queries(client: httpx.Client, hybrid: str) -> None:
    out = _search(client, {"query_image": b64(png_bytes(120, 80, seed=3)), "top_k": 1})
    assert out["results"][0]["document_id"] == "photo"  # the same image scores highest by exact MaxSim
    assert set(out["results"][0]["signals"]) >= {"maxsim"}
    like = _search(client, {"like": {"document_id": "report", "page": 2}, "top_k": 1})
    assert (like["results"][0]["document_id"], like["results"][0]["page"]) == ("report", 2)
    like_text = _search(client, {"like": {"document_id": "report", "page": 2}, "mode": "text"})
    assert like_text["results"][0]["page"] == 2


@pytest.mark.parametrize(
    "query", ['"unbalanced', "NEAR(invoice total)", "x7200b*", "-invoice", "((total", "invoice AND NOT due", "'"]
)
def test_fts5_syntax_is_plain_words(client: httpx.Client, hybrid: str, query: str) -> None:
    out = _search(client, {"query": query, "mode": "text"})
    assert {r["page"] for r in out["results"]} <= {1}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"query": "x", "mode": "fuzzy"}, 422, "validation_error"),
        ({"query": ""}, 422, "validation_error"),
        ({"query": "   "}, 422, "empty_query"),
        ({}, 422, "invalid_query"),
        ({"query": "x", "like": {"document_id": "report", "page": 1}}, 422, "invalid_query"),
        ({"query_image": b64(png_bytes(40, 40)), "mode": "text"}, 422, "invalid_mode"),
        ({"like": {"document_id": "report", "page": 4}, "mode": "hybrid"}, 422, "invalid_mode"),
        ({"like": {"document_id": "nope", "page": 1}}, 404, "document_not_found"),
        ({"query": "x", "fusion": "max"}, 422, "validation_error"),
        ({"query": "x", "fusion": "weighted", "text_weight": 2}, 422, "validation_error"),
        ({"query": "x", "fusion": "rrf", "text_weight": 5}, 422, "validation_error"),  # one meaning: 0..1
    ],
)
def test_bad_input_is_a_clear_4xx(
    client: httpx.Client, hybrid: str, body: dict[str, Any], status: int, code: str | None
) -> None:
    error = _search(client, body, status)["error"]
    assert set(error) == {"message", "type", "code"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code, error


def test_nothing_is_silent_filter_keys_and_options(client: httpx.Client, hybrid: str) -> None:
    """Issue 25: a filter on a key no document has answered 200 with 0 results and no word; options a mode does
    not use were dropped silently. Both are named in ``warnings`` now (the search still runs)."""
    typo = _search(client, {"query": "revenue", "mode": "text", "filter": {"knd": "report"}})
    assert typo["results"] == []
    assert any("'knd'" in w and "no document" in w for w in typo["warnings"]), typo["warnings"]
    right = _search(client, {"query": "revenue", "mode": "text", "filter": {"kind": "report"}})
    assert right["results"]
    assert right["warnings"] == []
    text_map = _search(client, {"query": "x7200b", "mode": "text", "include_similarity_map": True})
    assert [r["page"] for r in text_map["results"]] == [1]
    assert "similarity_map" not in text_map["results"][0]
    assert any("include_similarity_map" in w for w in text_map["warnings"])
    visual = _search(client, {"query": "x7200b", "mode": "visual", "fusion": "rrf", "text_weight": 0.3})
    assert any("fusion and text_weight" in w for w in visual["warnings"])


def test_a_signal_that_found_nothing_says_so(client: httpx.Client, hybrid: str) -> None:
    none = _search(client, {"query": "zzzqqq", "mode": "text"})
    assert none["results"] == []
    assert any("text (BM25) found no unit" in w for w in none["warnings"])
    hybrid_only_visual = _search(client, {"query": "zzzqqq", "mode": "hybrid"})
    assert hybrid_only_visual["results"]
    assert all("text" not in r["signals"] for r in hybrid_only_visual["results"])
    assert any("ranked by MaxSim alone" in w for w in hybrid_only_visual["warnings"])
    found = _search(client, {"query": "quarterly revenue", "mode": "hybrid"})
    assert found["warnings"] == []
