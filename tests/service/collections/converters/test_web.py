"""Web pages, Markdown and plain text in a page collection -> pages laid out by MuPDF's Story, their own text as
the text layer; nothing the HTML references is fetched (a local server records every request)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.service.collections.converters.files import assert_found
from tests.service.helpers import module_collection

NAME = "web-pages"


@pytest.fixture(scope="module")
def pages(client: httpx.Client) -> Iterator[str]:
    yield from module_collection(client, NAME)


def _post(client: httpx.Client, filename: str, data: bytes, doc_id: str) -> httpx.Response:
    files = {"file": (filename, data, "application/octet-stream")}
    return client.post(f"/v1/collections/{NAME}/documents", files=files, data={"document_id": doc_id})


def test_html_with_scripts_and_remote_references_fetches_nothing(
    client: httpx.Client, pages: str, recorder: tuple[str, list[str]]
) -> None:
    base, requests = recorder
    html = (
        f'<!DOCTYPE html><html><head><link rel="stylesheet" href="{base}/style.css">'
        f"<script src='{base}/app.js'></script><script>fetch('{base}/beacon')</script>"
        f"<style>@font-face {{ font-family: X; src: url({base}/font.woff2); }}</style></head>"
        f'<body><h1>Aquarium maintenance</h1><img src="{base}/photo.png"><p>Rinse the filter monthly.</p>'
        f'<iframe src="{base}/frame"></iframe></body></html>'
    )
    response = _post(client, "guide.html", html.encode(), "guide")
    assert response.status_code == 201, response.text
    assert_found(client, pages, "Aquarium", "guide", 1)
    assert requests == []


def test_markdown_and_text_become_pages_in_a_page_collection(client: httpx.Client, pages: str) -> None:
    markdown = "# Beekeeping notes\n\nThe **hive** needs a *queen*.\n\n" + "\n\n".join(f"Line {i}" for i in range(120))
    response = _post(client, "notes.md", markdown.encode(), "notes")
    assert response.status_code == 201, response.text
    assert response.json()["pages"] >= 2  # 120 paragraphs do not fit one A4 page
    assert_found(client, pages, "Beekeeping", "notes", 1)
    assert _post(client, "plain.txt", b"Lighthouse keeper log\n  indented line", "plain").status_code == 201
    assert_found(client, pages, "Lighthouse", "plain", 1)
