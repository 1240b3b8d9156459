"""E-books and fixed-layout formats (EPUB, FB2, CBZ, SVG) uploaded to a page collection: laid out by MuPDF into
a PDF, then pages with their text layer; a word of each is found by text search on its page."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from service.collections.converters import detect_kind
from tests.service.collections.converters.files import (
    assert_found,
    cbz_bytes,
    epub_bytes,
    fb2_bytes,
    search,
    svg_bytes,
    text_image,
)
from tests.service.helpers import module_collection

NAME = "ebooks"


@pytest.fixture(scope="module")
def books(client: httpx.Client) -> Iterator[str]:
    yield from module_collection(client, NAME)


def _upload(client: httpx.Client, name: str, data: bytes, doc_id: str) -> httpx.Response:
    return client.post(
        f"/v1/collections/{NAME}/documents",
        files={"file": (name, data, "application/octet-stream")},
        data={"document_id": doc_id},
    )


def test_sniffing_by_bytes_and_by_name() -> None:
    assert detect_kind(epub_bytes(["a"])) == "epub"
    assert detect_kind(fb2_bytes("a")) == "fb2"
    assert detect_kind(b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>') == "svg"
    cbz = cbz_bytes([text_image("a", size=(40, 40))])
    assert detect_kind(cbz, "comic.cbz") == "cbz"
    assert detect_kind(cbz, "comic.zip") == "image"  # a ZIP of images not named .cbz: the bytes do not say so


def test_epub_pages_are_searchable(client: httpx.Client, books: str) -> None:
    data = epub_bytes(["First chapter about gardening.", "Second chapter mentions zeppelins and airships."])
    response = _upload(client, "book.epub", data, "book")
    assert response.status_code == 201, response.text
    assert response.json()["pages"] >= 2
    results = [r for r in search(client, books, "zeppelins") if r["document_id"] == "book"]
    assert results
    assert results[0]["page"] >= 2
    assert_found(client, books, "zeppelins", "book", results[0]["page"])


def test_fb2_and_svg_are_searchable(client: httpx.Client, books: str) -> None:
    assert _upload(client, "novel.fb2", fb2_bytes("A quixotic wanderer arrives."), "novel").status_code == 201
    assert_found(client, books, "quixotic", "novel", 1)
    assert _upload(client, "chart.svg", svg_bytes("Kilowatt budget"), "chart").status_code == 201
    assert_found(client, books, "Kilowatt", "chart", 1)


def test_cbz_pages_count(client: httpx.Client, books: str) -> None:
    data = cbz_bytes([text_image("one", size=(300, 200)), text_image("two", size=(300, 200))])
    response = _upload(client, "comic.cbz", data, "comic")
    assert response.status_code == 201, response.text
    assert response.json()["pages"] == 2


def test_epub_with_a_path_traversal_member_is_read_in_memory(client: httpx.Client, books: str) -> None:
    data = epub_bytes(["Harmless words only."], extra={"../../../../tmp/jev4-pwned.txt": b"owned"})
    response = _upload(client, "evil.epub", data, "evil")
    assert response.status_code == 201, response.text  # a bounded, safe result: the member is a name, never a path
    from pathlib import Path

    assert not Path("/tmp/jev4-pwned.txt").exists()


def test_a_broken_epub_is_a_clear_4xx(client: httpx.Client, books: str) -> None:
    data = epub_bytes(["x"])[:200]  # cut off: the ZIP's central directory is gone
    response = _upload(client, "cut.epub", data, "cut")
    assert 400 <= response.status_code < 500, response.text
    assert client.get(f"/v1/collections/{NAME}/documents/cut").status_code == 404
