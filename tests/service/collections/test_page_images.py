"""Compact page images (issue 26, item 5; :mod:`service.collections.page_images`).

- A PDF kept as the original (``JEV4_KEEP_ORIGINALS``) stores no page image: the page route renders it again at
  exactly its stored layout's ``image_size`` (the pixels indexing rendered, so similarity maps and highlight
  boxes line up), with an ETag that a 304 answers without rendering and that a replace changes.
- An image kept as the original (PNG, JPEG, WebP) stores no page image either: the page route decodes it and
  resizes it to the layout's ``image_size`` (the pixels the model saw, lossless). A GIF (no page image a browser
  is sure to show) keeps its WebP.
- Any other page stores a WebP of that same size; search's ``image`` stays PNG of the same pixels.
- An index written before (PNG page images) is served as it was: same bytes, same media type, same ETag.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from model.layout import PageLayout
from tests.service.helpers import b64, pdf_bytes, png_bytes, ready_app

SMALL: dict[str, Any] = {"pdf_dpi": 72, "image_max_pixels": 200 * 28 * 28}
BASE = "/v1/collections/lib/documents"
REPORT = Path(__file__).resolve().parents[3] / "samples" / "report.pdf"  # a real (generated) multi-page report


@contextlib.contextmanager
def _app(tiny_encoder: Any, tmp_path: Path, **settings: Any) -> Iterator[Any]:
    with ready_app(tiny_encoder, tmp_path, **{**SMALL, **settings}) as c:
        if c.get("/v1/collections/lib").status_code == 404:
            assert c.post("/v1/collections", json={"name": "lib"}).status_code == 201
        yield c


def _stored(tmp_path: Path, doc_id: str, page: int) -> tuple[bytes | None, PageLayout, dict[str, Any]]:
    """The page's stored image bytes, its layout and its unit metadata, read from the store itself."""
    from colbert.catalog import Catalog

    with Catalog(tmp_path) as catalog:
        store = catalog.get("lib")
        record = store.get_unit(doc_id, page)
        assert record is not None
        layout = PageLayout.from_metadata(record.metadata)
        assert layout is not None
        return store.get_image(doc_id, page), layout, record.metadata


def _pixels(data: bytes) -> tuple[str | None, np.ndarray]:
    with Image.open(io.BytesIO(data)) as image:
        return image.format, np.asarray(image.convert("RGB"))


def _as_indexing_rendered(pdf: bytes, page: int, size: tuple[int, int]) -> np.ndarray:
    """The page as indexing rendered it (SMALL's dpi, then resized to the layout's size, bicubic)."""
    from model.pdf import render_pages

    image = render_pages(pdf, dpi=SMALL["pdf_dpi"], pages=[page])[0].image
    return np.asarray(image.resize(size, Image.Resampling.BICUBIC) if image.size != size else image)


@pytest.mark.parametrize("backend", ["local", "qdrant"])
def test_kept_pdf_pages_render_on_demand_at_the_layout_size(tiny_encoder: Any, tmp_path: Path, backend: str) -> None:
    pdf = REPORT.read_bytes()
    with _app(tiny_encoder, tmp_path, collection_backend=backend, keep_originals=True) as c:
        up = c.post(BASE, files={"file": ("report.pdf", pdf, "application/pdf")}, data={"document_id": "r"})
        assert up.status_code == 201, up.text
        url = f"{BASE}/r/pages/2/image"
        full = c.get(url)
        assert full.status_code == 200
        assert full.headers["content-type"] == "image/png"
        etag = full.headers["etag"]
        assert c.get(url).headers["etag"] == etag  # stable per document version
        assert c.get(url, headers={"If-None-Match": etag}).status_code == 304
        hit = c.post(
            "/v1/collections/lib/search", json={"query": "report", "include_image": True, "mode": "visual"}
        ).json()["results"][0]
        found = c.get(f"{BASE}/{hit['document_id']}/pages/{hit['page']}/image")
        assert base64.b64decode(hit["image"]) == found.content  # search's image: the same PNG
        thumb = c.get(url, params={"size": "thumbnail"})
        assert thumb.headers["content-type"] == "image/jpeg"
    if backend == "qdrant":
        return
    stored, layout, _meta = _stored(tmp_path, "r", 2)
    assert stored is None  # nothing rendered is stored beside the PDF it renders from
    fmt, pixels = _pixels(full.content)
    assert fmt == "PNG"
    assert (pixels.shape[1], pixels.shape[0]) == layout.image_size  # the grid of its similarity map
    assert np.array_equal(pixels, _as_indexing_rendered(pdf, 2, layout.image_size))  # the pixels the model saw


def test_replacing_a_kept_pdf_changes_the_tag(tiny_encoder: Any, tmp_path: Path) -> None:
    with _app(tiny_encoder, tmp_path, keep_originals=True) as c:
        assert c.post(BASE, json={"pdf": b64(pdf_bytes(2)), "document_id": "d"}).status_code == 201
        before = c.get(f"{BASE}/d/pages/1/image")
        replaced = c.post(BASE, json={"pdf": b64(pdf_bytes(3)), "document_id": "d", "replace": True})
        assert replaced.status_code == 201, replaced.text
        after = c.get(f"{BASE}/d/pages/1/image", headers={"If-None-Match": before.headers["etag"]})
        assert after.status_code == 200
        assert after.headers["etag"] != before.headers["etag"]
        missing = c.get(f"{BASE}/d/pages/4/image")
        assert missing.status_code == 404
        assert "page_not_found" in missing.text


def _encoded(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def test_kept_image_originals_store_no_page_image_and_serve_the_pixels_the_model_saw(
    tiny_encoder: Any, tmp_path: Path
) -> None:
    from model.images import load_image

    page = Image.open(io.BytesIO(pdf_page_png())).convert("RGB")
    uploads = {"shot.png": _encoded(page, "PNG"), "scan.jpg": _encoded(page, "JPEG"), "anim.gif": _encoded(page, "GIF")}
    with _app(tiny_encoder, tmp_path, keep_originals=True) as c:
        for name, blob in uploads.items():
            up = c.post(BASE, files={"file": (name, blob)}, data={"document_id": name})
            assert up.status_code == 201, up.text
        served = {name: c.get(f"{BASE}/{name}/pages/1/image") for name in uploads}
        etag = served["shot.png"].headers["etag"]
        assert c.get(f"{BASE}/shot.png/pages/1/image", headers={"If-None-Match": etag}).status_code == 304
        hits = c.post(
            "/v1/collections/lib/search", json={"query": "x", "include_image": True, "mode": "visual", "top_k": 3}
        ).json()["results"]
        assert {h["document_id"]: base64.b64decode(h["image"]) for h in hits}["scan.jpg"] == served["scan.jpg"].content
    for name in ("shot.png", "scan.jpg"):
        stored, layout, _meta = _stored(tmp_path, name, 1)
        assert stored is None  # nothing beside the original it is made from
        fmt, pixels = _pixels(served[name].content)
        assert (fmt, served[name].headers["content-type"]) == ("PNG", "image/png")
        seen = load_image(uploads[name]).resize(layout.image_size, Image.Resampling.BICUBIC)
        assert np.array_equal(pixels, np.asarray(seen))  # the pixels the model saw: the similarity map's grid
    stored, layout, _meta = _stored(tmp_path, "anim.gif", 1)
    assert stored is not None
    assert _pixels(stored)[0] == "WEBP"
    assert served["anim.gif"].headers["content-type"] == "image/webp"


def pdf_page_png() -> bytes:
    """A real page (text, figures) as a screenshot would be: the report's first page at 72 DPI."""
    from model.pdf import render_pages

    return _encoded(render_pages(REPORT.read_bytes(), dpi=72, pages=[1])[0].image, "PNG")


def test_pages_without_a_kept_pdf_store_a_webp_of_the_layout_size(tiny_encoder: Any, tmp_path: Path) -> None:
    pdf = REPORT.read_bytes()
    with _app(tiny_encoder, tmp_path, keep_originals=False) as c:  # no kept original (on by default)
        up = c.post(BASE, files={"file": ("report.pdf", pdf, "application/pdf")}, data={"document_id": "r"})
        assert up.status_code == 201, up.text
        shot = c.post(BASE, json={"image": b64(png_bytes(300, 200)), "document_id": "shot"})
        assert shot.status_code == 201, shot.text
        full = c.get(f"{BASE}/r/pages/1/image")
        assert full.headers["content-type"] == "image/webp"
        hit = c.post(
            "/v1/collections/lib/search", json={"query": "report", "include_image": True, "mode": "visual", "top_k": 5}
        ).json()["results"]
        first = next(h for h in hit if (h["document_id"], h["page"]) == ("r", 1))
        png_format, png_pixels = _pixels(base64.b64decode(first["image"]))
        assert png_format == "PNG"  # search's image field stays PNG
        assert np.array_equal(png_pixels, _pixels(full.content)[1])  # of the same pixels
    for doc_id in ("r", "shot"):
        stored, layout, _meta = _stored(tmp_path, doc_id, 1)
        assert stored is not None
        fmt, pixels = _pixels(stored)
        assert fmt == "WEBP"
        assert (pixels.shape[1], pixels.shape[0]) == layout.image_size
    stored, layout, _meta = _stored(tmp_path, "r", 1)
    assert stored is not None
    lossless = _as_indexing_rendered(pdf, 1, layout.image_size).astype(np.int16)
    error = np.abs(_pixels(stored)[1].astype(np.int16) - lossless)
    assert error.mean() < 4.0  # lossy, but close to the page the model saw


def test_an_index_written_with_png_pages_is_served_as_before(tiny_encoder: Any, tmp_path: Path) -> None:
    """A page stored as PNG (every index before WebP): the same bytes, media type and ETag as before."""
    from colbert.catalog import Catalog
    from colbert.store import CollectionConfig, UnitRecord
    from service.collections.units import PageUnitInfo

    png = png_bytes(56, 84)
    meta = PageUnitInfo(PageLayout(3, 2), num_tokens=6, image_span=(0, 6)).to_metadata()
    with Catalog(tmp_path) as catalog:
        store = catalog.create("lib", CollectionConfig(dense_dim=64, multivector_dim=128))
        unit = UnitRecord(1, np.ones(64, np.float32), np.ones((6, 128), np.float32), metadata=meta, image=png)
        store.add_document("old", [unit])
    with _app(tiny_encoder, tmp_path) as c:
        full = c.get(f"{BASE}/old/pages/1/image")
        assert full.status_code == 200
        assert full.headers["content-type"] == "image/png"
        assert full.content == png
        assert full.headers["etag"] == f'"{hashlib.sha256(png).hexdigest()[:32]}-full"'


def test_stored_encoding_media_types_and_png_view() -> None:
    from colbert.store import OriginalFile
    from service.collections import page_images

    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (84, 56, 3), dtype=np.uint8))
    webp = page_images.encode_stored(image)
    assert page_images.media_type_of(webp) == "image/webp"
    png = page_images.as_png(webp)
    assert page_images.media_type_of(png) == "image/png"
    assert _pixels(png)[1].shape == (84, 56, 3)
    assert np.array_equal(_pixels(png)[1], _pixels(webp)[1])  # the same pixels, losslessly re-encoded
    assert page_images.as_png(png) is png  # a PNG (an older index's) is passed through
    assert page_images.renders_from_original(OriginalFile(b"%PDF-1.7", "application/pdf", "a.pdf"))
    assert page_images.renders_from_original(OriginalFile(png, "image/png", "a.png"))  # made again from it
    assert not page_images.renders_from_original(OriginalFile(b"GIF89a", "image/gif", "a.gif"))  # keeps a WebP
    assert not page_images.renders_from_original(None)


def test_a_kept_pdf_gone_before_the_render_is_page_not_found() -> None:
    """A document replaced by a text one (or deleted) between locating its page and rendering it: 404, no 500."""
    from service.collections import page_images
    from service.collections.converters.base import PageLimits
    from service.errors import NotFoundError

    class Gone:
        def get_original(self, doc_id: str) -> None:
            return None

    picture = page_images.PagePicture("d", 1, None, (56, 84), "0" * 32)
    with pytest.raises(NotFoundError) as caught:
        page_images.load(Gone(), picture, PageLimits())  # type: ignore[arg-type]
    assert caught.value.code == "page_not_found"
