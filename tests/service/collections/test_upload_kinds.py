"""A file of the wrong kind given to a collection answers 415 naming the input, what the bytes look like and
what to send instead (before: "<bytes>: not an image format PIL can read")."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.service.helpers import b64, error_message, pdf_bytes


@pytest.fixture(scope="module")
def kinds(client: httpx.Client) -> Iterator[str]:
    created = client.post("/v1/collections", json={"name": "upload-kinds"})
    assert created.status_code == 201, created.text
    yield "upload-kinds"
    client.delete("/v1/collections/upload-kinds")


def test_code_file_uploaded_to_a_page_collection(client: httpx.Client, kinds: str) -> None:
    url = f"/v1/collections/{kinds}/documents"
    code = b"import os\n\n\ndef main() -> None:\n    print(os.getcwd())\n"
    response = client.post(url, files={"file": ("tool.py", code, "text/x-python")})
    assert response.status_code == 409, response.text  # a text/code document, but this collection holds pages
    message = response.json()["error"]["message"]
    assert response.json()["error"]["code"] == "mixed_units"
    assert "file 'tool.py'" in message
    assert "text (UTF-8)" in message
    assert "PDFs and images" in message


def test_pdf_sent_as_image_in_json(client: httpx.Client, kinds: str) -> None:
    url = f"/v1/collections/{kinds}/documents"
    message = error_message(client.post(url, json={"image": b64(pdf_bytes(1))}), 415, "pdf_sent_as_image")
    assert message.startswith('"image": not an image')
    assert "PDF document" in message
    assert 'send a PDF as "pdf"' in message


def test_image_sent_as_pdf_in_json(client: httpx.Client, kinds: str) -> None:
    url = f"/v1/collections/{kinds}/documents"
    message = error_message(client.post(url, json={"pdf": b64(b"plain words, no PDF here")}), 415, "invalid_pdf")
    assert message.startswith('"pdf": not a PDF')
    assert "text (UTF-8)" in message
    assert client.get(f"/v1/collections/{kinds}").json()["documents"] == 0
