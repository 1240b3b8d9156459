"""OCR of pages without a text layer (model.ocr): a photo of text and a scanned PDF (a real PDF's page rasterised)
are indexed with OCR's words, a word is found first by text search on its page with its highlight box on the
word; ``ocr=never`` keeps them wordless."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pymupdf
import pytest

from model.ocr import apply_ocr, needs_ocr, ocr_layer
from model.types import TextLayer, Word
from tests.service.collections.converters.files import assert_found, search, text_image
from tests.service.helpers import module_collection

NAME = "ocr-pages"
REPORT = Path(__file__).resolve().parents[4] / "samples" / "report.pdf"


def _scanned_pdf(dpi: int = 100) -> bytes:
    """Page 1 of samples/report.pdf rasterised at ``dpi`` and wrapped as an image-only PDF (a scan)."""
    source = pymupdf.open(REPORT)
    page = source[0]
    pixmap = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csRGB, alpha=False)
    scan = pymupdf.open()
    out = scan.new_page(width=page.rect.width, height=page.rect.height)
    out.insert_image(out.rect, stream=pixmap.tobytes("png"))
    data: bytes = scan.tobytes()
    return data


@pytest.fixture(scope="module")
def scans(client: httpx.Client) -> Iterator[str]:
    yield from module_collection(client, NAME)


def test_ocr_reads_words_with_boxes_on_their_ink() -> None:
    image = text_image("Invoice 4711 settled")
    layer = ocr_layer(image)
    assert layer is not None
    assert layer.source == "ocr"
    assert layer.confidence is not None
    assert 0.5 < layer.confidence <= 1.0
    (word,) = [w for w in layer.words if w.text == "Invoice"]
    gray = np.asarray(image.convert("L"))
    ink = gray[round(word.y0) : round(word.y1), round(word.x0) : round(word.x1)] < 100
    assert ink.mean() > 0.05
    assert word.x1 < next(w for w in layer.words if w.text == "4711").x0  # reading order, disjoint boxes


def test_auto_rule_keeps_a_dense_text_layer() -> None:
    image = text_image("Invoice 4711 settled")
    dense = TextLayer("x" * 400, (Word("x" * 400, 0, 0, 10, 10),))
    assert not needs_ocr(dense, image.size)
    assert apply_ocr(image, dense, "auto") is dense
    assert needs_ocr(None, image.size)
    assert apply_ocr(image, dense, "never") is dense
    forced = apply_ocr(image, dense, "always")
    assert forced is not None
    assert forced.source == "ocr"


def test_photo_of_text_is_found_by_text_search(client: httpx.Client, scans: str) -> None:
    buffer = io.BytesIO()
    text_image("Warranty expires 2031").save(buffer, format="JPEG", quality=85)
    files = {"file": ("photo.jpg", buffer.getvalue(), "image/jpeg")}
    response = client.post(
        f"/v1/collections/{NAME}/documents", files=files, data={"document_id": "photo", "ocr": "auto"}
    )
    assert response.status_code == 201, response.text
    assert_found(client, scans, "Warranty", "photo", 1)


def test_scanned_pdf_is_found_by_text_search(client: httpx.Client, scans: str) -> None:
    files = {"file": ("scan.pdf", _scanned_pdf(), "application/pdf")}
    response = client.post(
        f"/v1/collections/{NAME}/documents", files=files, data={"document_id": "scan", "ocr": "auto"}
    )
    assert response.status_code == 201, response.text
    assert_found(client, scans, "Northwind", "scan", 1)


def test_ocr_never_keeps_the_page_wordless(client: httpx.Client, scans: str) -> None:
    files = {"file": ("plain.png", _png(text_image("Zucchini harvest")), "image/png")}
    data = {"document_id": "plain", "ocr": "never"}
    assert client.post(f"/v1/collections/{NAME}/documents", files=files, data=data).status_code == 201
    assert [r for r in search(client, scans, "Zucchini") if r["document_id"] == "plain"] == []
    bad = client.post(f"/v1/collections/{NAME}/documents", files=files, data={"ocr": "sometimes"})
    assert bad.status_code == 422, bad.text


def _png(image: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")  # type: ignore[attr-defined]
    return buffer.getvalue()
