"""A collection's OCR default (issue 27 item 4): ``ocr`` given at creation is kept in its config and shown by the
collection; an upload that sends no ``ocr`` takes it (the test server's own default is ``never``), one that sends
``ocr`` keeps its own; a collection of chunks takes none (422)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import pytest

from tests.service.collections.converters.files import search, text_image

NAME = "ocr-default"


@pytest.fixture(scope="module")
def scans(client: httpx.Client) -> Iterator[str]:
    client.delete(f"/v1/collections/{NAME}")
    created = client.post("/v1/collections", json={"name": NAME, "ocr": "always"})
    assert created.status_code == 201, created.text
    assert created.json()["ocr"] == "always"
    yield NAME
    client.delete(f"/v1/collections/{NAME}")


def _photo(words: str) -> bytes:
    buffer = io.BytesIO()
    text_image(words).save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploads_without_ocr_take_the_collections(client: httpx.Client, scans: str) -> None:
    assert client.get(f"/v1/collections/{scans}").json()["ocr"] == "always"
    files = {"file": ("memo.png", _photo("Quarantine lifted"), "image/png")}
    added = client.post(f"/v1/collections/{scans}/documents", files=files, data={"document_id": "memo"})
    assert added.status_code == 201, added.text
    assert added.json()["warnings"] == []
    assert [r["document_id"] for r in search(client, scans, "Quarantine")] == ["memo"]


def test_an_uploads_own_ocr_wins(client: httpx.Client, scans: str) -> None:
    files = {"file": ("note.png", _photo("Blizzard warning"), "image/png")}
    data = {"document_id": "note", "ocr": "never"}
    added = client.post(f"/v1/collections/{scans}/documents", files=files, data=data)
    assert added.status_code == 201, added.text
    assert search(client, scans, "Blizzard") == []


def test_defaults_and_refusals(client: httpx.Client) -> None:
    plain = client.post("/v1/collections", json={"name": "ocr-none"})
    assert plain.status_code == 201, plain.text
    assert plain.json()["ocr"] is None  # the server's default applies
    client.delete("/v1/collections/ocr-none")
    chunks = client.post("/v1/collections", json={"name": "ocr-code", "task": "code", "ocr": "auto"})
    assert chunks.status_code == 422, chunks.text
    assert "applies to a collection of pages" in chunks.json()["error"]["message"]
    bad = client.post("/v1/collections", json={"name": "ocr-bad", "ocr": "sometimes"})
    assert bad.status_code == 422, bad.text
    assert client.get("/v1/collections/ocr-code").status_code == 404
