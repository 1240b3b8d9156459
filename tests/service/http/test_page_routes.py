"""Page image and per-page similarity routes (live server, keys required), and the search page's static files."""

from __future__ import annotations

import base64
import io
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from litestar.testing import TestClient
from PIL import Image

from service.collections.pages import thumbnail
from service.http.app import create_app
from service.http.ui import UI_DIR
from service.settings import Settings
from tests.service.conftest import LiveServer
from tests.service.helpers import b64, pdf_bytes, png_bytes
from tests.service.helpers import error_message as _error


@pytest.fixture(scope="module")
def indexed(client: httpx.Client) -> Iterator[str]:
    name = f"pages-{uuid.uuid4().hex[:8]}"
    assert client.post("/v1/collections", json={"name": name}).status_code == 201
    added = client.post(f"/v1/collections/{name}/documents", json={"pdf": b64(pdf_bytes(2)), "document_id": "doc"})
    assert added.status_code == 201, added.text
    yield name
    client.delete(f"/v1/collections/{name}")


def test_full_image_is_the_stored_page_with_validators(client: httpx.Client, indexed: str) -> None:
    search = client.post(f"/v1/collections/{indexed}/search", json={"query": "report", "include_image": True})
    hit = search.json()["results"][0]
    url = f"/v1/collections/{indexed}/documents/{hit['document_id']}/pages/{hit['page']}/image"
    full = client.get(url)
    assert full.status_code == 200
    assert full.headers["content-type"] == "image/png"  # the kept PDF (the default) rendered again (page_images)
    with Image.open(io.BytesIO(full.content)) as served, Image.open(io.BytesIO(base64.b64decode(hit["image"]))) as png:
        assert png.format == "PNG"  # search's image field stays PNG, of the same pixels
        assert np.array_equal(np.asarray(served.convert("RGB")), np.asarray(png.convert("RGB")))
    assert full.headers["cache-control"] == "private, no-cache"
    etag = full.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}-full"', etag)
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200


def test_thumbnail_is_a_jpeg_with_its_own_tag(client: httpx.Client, indexed: str) -> None:
    url = f"/v1/collections/{indexed}/documents/doc/pages/1/image"
    full = client.get(url)
    small = client.get(url, params={"size": "thumbnail"})
    assert small.status_code == 200
    assert small.headers["content-type"] == "image/jpeg"
    assert small.headers["etag"] != full.headers["etag"]
    with Image.open(io.BytesIO(small.content)) as thumb, Image.open(io.BytesIO(full.content)) as page:
        assert thumb.format == "JPEG"
        assert max(thumb.size) <= 320
        assert thumb.size == page.size or max(thumb.size) == 320  # scaled down only when larger


def test_thumbnail_scales_down_never_up() -> None:
    with Image.open(io.BytesIO(thumbnail(png_bytes(900, 600), 320))) as big:
        assert big.size == (320, 213)
    with Image.open(io.BytesIO(thumbnail(png_bytes(90, 60), 320))) as small:
        assert small.size == (90, 60)


def test_replacing_a_document_changes_the_tag(client: httpx.Client) -> None:
    name = f"etag-{uuid.uuid4().hex[:8]}"
    client.post("/v1/collections", json={"name": name})
    try:
        url = f"/v1/collections/{name}/documents/d/pages/1/image"
        body = {"image": b64(png_bytes(120, 90, seed=1)), "document_id": "d"}
        assert client.post(f"/v1/collections/{name}/documents", json=body).status_code == 201
        first = client.get(url).headers["etag"]
        body = {"image": b64(png_bytes(120, 90, seed=2)), "document_id": "d", "replace": True}
        assert client.post(f"/v1/collections/{name}/documents", json=body).status_code == 201
        assert client.get(url, headers={"If-None-Match": first}).status_code == 200
        assert client.get(url).headers["etag"] != first
    finally:
        client.delete(f"/v1/collections/{name}")


def test_image_route_errors(client: httpx.Client, live_server: LiveServer, indexed: str) -> None:
    base = f"/v1/collections/{indexed}/documents"
    message = _error(client.get(f"{base}/doc/pages/9/image"), 404, "page_not_found")
    assert "2 pages" in message
    _error(client.get(f"{base}/nope/pages/1/image"), 404, "document_not_found")
    _error(client.get("/v1/collections/no-such/documents/doc/pages/1/image"), 404, "collection_not_found")
    message = _error(client.get(f"{base}/doc/pages/1/image", params={"size": "huge"}), 422, "invalid_image_size")
    assert "thumbnail" in message
    anonymous = httpx.get(f"{live_server.url}{base}/doc/pages/1/image")
    _error(anonymous, 401, "missing_api_key")


def test_page_similarity_equals_the_search_map(client: httpx.Client, indexed: str) -> None:
    query = "quarterly report"
    search = client.post(
        f"/v1/collections/{indexed}/search", json={"query": query, "top_k": 2, "include_similarity_map": True}
    ).json()
    for hit in search["results"]:
        url = f"/v1/collections/{indexed}/documents/{hit['document_id']}/pages/{hit['page']}/similarity"
        answer = client.post(url, json={"query": query})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        got, want = body["similarity_map"], hit["similarity_map"]
        assert (got["rows"], got["cols"], got["tokens"]) == (want["rows"], want["cols"], want["tokens"])
        np.testing.assert_allclose(np.array(got["maps"]), np.array(want["maps"]), atol=2e-4)
        assert body["usage"]["total_tokens"] == len(got["tokens"])
    base = f"/v1/collections/{indexed}/documents/doc/pages"
    _error(client.post(f"{base}/7/similarity", json={"query": query}), 404, "page_not_found")
    _error(client.post(f"{base}/1/similarity", json={"query": ""}), 422, "validation_error")


def test_page_similarity_highlights_equal_the_search_boxes(client: httpx.Client, indexed: str) -> None:
    """``highlight: true`` on the similarity route adds the boxes search's ``highlight`` gives that page (the
    search page uses it for pages reached by previous / next, which are not hits)."""
    query = "page 2 quarterly"
    hits = client.post(
        f"/v1/collections/{indexed}/search", json={"query": query, "top_k": 2, "highlight": True, "mode": "visual"}
    ).json()["results"]
    assert {h["page"] for h in hits} == {1, 2}
    for hit in hits:
        url = f"/v1/collections/{indexed}/documents/{hit['document_id']}/pages/{hit['page']}/similarity"
        with_boxes = client.post(url, json={"query": query, "highlight": True}).json()
        assert with_boxes["highlights"] == hit["highlights"]
        words = sorted(b["word"] for b in hit["highlights"])
        assert words == (["2", "Quarterly", "page"] if hit["page"] == 2 else ["Quarterly", "page"])
        assert "highlights" not in client.post(url, json={"query": query}).json()


def test_search_page_is_served_with_a_policy(live_server: LiveServer) -> None:
    page = httpx.get(f"{live_server.url}/ui/")  # no key: the page is public, its API calls are not
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    script = httpx.get(f"{live_server.url}/ui/js/main.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    for src in re.findall(r'(?:src|href)="(/ui/[^"]+)"', page.text):
        assert httpx.get(f"{live_server.url}{src}").status_code == 200, src


def test_search_page_is_small_and_offline() -> None:
    assets = [p for p in UI_DIR.rglob("*") if p.suffix in (".js", ".css")]
    assert sum(p.stat().st_size for p in assets) <= 200 * 1024
    for path in UI_DIR.rglob("*"):
        if path.is_file():
            assert not re.search(r"https?://", path.read_text(encoding="utf-8")), f"{path} names a remote URL"


def test_search_page_can_be_turned_off() -> None:
    for enabled in (True, False):
        app = create_app(Settings(ui=enabled))
        http = TestClient(app)  # not entered: no lifespan (no model) needed for static files
        assert http.get("/ui/").status_code == (200 if enabled else 404)


@pytest.mark.parametrize("backend", ["local", "qdrant"])
def test_document_lists_its_page_numbers(tiny_encoder: Any, tmp_path: Path, backend: str) -> None:
    """GET of one document carries ``page_numbers``: the numbers of a page selection (not 1..pages), the ones
    the page routes serve; a replace changes them; the list of documents stays without them (one read)."""
    settings = Settings(data_dir=tmp_path, pdf_dpi=36, image_max_pixels=64 * 28 * 28, collection_backend=backend)
    with TestClient(create_app(settings, encoder=tiny_encoder)) as c:
        deadline = time.monotonic() + 60
        while c.get("/ready").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert c.post("/v1/collections", json={"name": "sel"}).status_code == 201
        docs = "/v1/collections/sel/documents"
        added = c.post(docs, files={"file": ("four.pdf", pdf_bytes(4))}, data={"pages": "1,3", "document_id": "r"})
        assert added.status_code == 201, added.text
        assert "page_numbers" not in added.json()
        got = c.get(f"{docs}/r").json()
        assert (got["pages"], got["page_numbers"]) == (2, [1, 3])
        assert c.get(f"{docs}/r/pages/3/image?size=thumbnail").status_code == 200
        _error(c.get(f"{docs}/r/pages/2/image"), 404, "page_not_found")
        assert c.post(docs, files={"file": ("one.png", png_bytes())}, data={"document_id": "img"}).status_code == 201
        assert c.get(f"{docs}/img").json()["page_numbers"] == [1]
        assert all("page_numbers" not in d for d in c.get(docs).json()["data"])
        again = c.post(
            docs,
            files={"file": ("four.pdf", pdf_bytes(4))},
            data={"pages": "2-4", "document_id": "r", "replace": "true"},
        )
        assert again.status_code == 201, again.text
        assert c.get(f"{docs}/r").json()["page_numbers"] == [2, 3, 4]
        _error(c.get(f"{docs}/nope"), 404, "document_not_found")
        schema = c.get("/docs/openapi.json").json()["components"]["schemas"]
        document = next(v for k, v in schema.items() if k.endswith("DocumentObject"))
        numbers = document["properties"]["page_numbers"]
        assert {"items": {"type": "integer"}, "type": "array"} in numbers.get("oneOf", [numbers])
        assert "page_numbers" not in document.get("required", [])
