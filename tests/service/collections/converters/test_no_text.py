"""A page document none of whose pages yields text, even after OCR, is indexed with the warning "no text found:
visual search only" (issue 27 item 7): in the upload's answer, its job's result, ``GET …/documents/{id}`` and the
document list; a document with text has none."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import httpx
import pymupdf
import pytest
from PIL import Image

from service.collections.writing import NO_TEXT
from tests.service.collections.converters.files import text_image
from tests.service.helpers import module_collection

NAME = "no-text"


@pytest.fixture(scope="module")
def pages(client: httpx.Client) -> Iterator[str]:
    yield from module_collection(client, NAME)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _blank_pdf() -> bytes:
    doc = pymupdf.open()
    doc.new_page(width=300, height=200)
    data: bytes = doc.tobytes()
    return data


def _upload(client: httpx.Client, name: str, data: bytes, media: str, fields: dict[str, str]) -> httpx.Response:
    return client.post(f"/v1/collections/{NAME}/documents", files={"file": (name, data, media)}, data=fields)


def test_a_blank_image_is_indexed_with_the_warning(client: httpx.Client, pages: str) -> None:
    blank = _png(Image.new("RGB", (400, 300), (250, 250, 250)))
    response = _upload(client, "blank.png", blank, "image/png", {"document_id": "blank", "ocr": "auto"})
    assert response.status_code == 201, response.text
    (warning,) = response.json()["warnings"]
    assert warning.startswith(NO_TEXT)
    assert "OCR read no word" in warning
    shown = client.get(f"/v1/collections/{pages}/documents/blank").json()
    assert shown["warnings"] == [warning]
    listed = client.get(f"/v1/collections/{pages}/documents").json()["data"]
    assert [d["warnings"] for d in listed if d["id"] == "blank"] == [[warning]]


def test_a_blank_pdf_page_in_a_job_carries_the_warning(client: httpx.Client, pages: str) -> None:
    fields = {"document_id": "blank-pdf", "ocr": "always"}
    response = client.post(
        f"/v1/collections/{NAME}/documents",
        params={"wait": "false"},
        files={"file": ("blank.pdf", _blank_pdf(), "application/pdf")},
        data=fields,
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    deadline = time.monotonic() + 120
    while (job := client.get(f"/v1/collections/{pages}/jobs/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["status"] == "succeeded", job
    (warning,) = job["document"]["warnings"]
    assert warning.startswith(NO_TEXT)
    assert client.get(f"/v1/collections/{pages}/documents/blank-pdf").json()["warnings"] == [warning]


def test_ocr_off_says_how_to_read_the_text(client: httpx.Client, pages: str) -> None:
    page = _png(text_image("Ledger closed"))
    response = _upload(client, "ledger.png", page, "image/png", {"document_id": "off", "ocr": "never"})
    assert response.status_code == 201, response.text
    (warning,) = response.json()["warnings"]
    assert warning.startswith(NO_TEXT)
    assert "ocr=auto" in warning


def test_a_page_with_text_has_no_warning(client: httpx.Client, pages: str) -> None:
    page = _png(text_image("Ledger closed"))
    response = _upload(client, "read.png", page, "image/png", {"document_id": "read", "ocr": "auto"})
    assert response.status_code == 201, response.text
    assert response.json()["warnings"] == []
