"""Small builders for service tests: images and PDFs made on the fly, base64 helpers, vector decoding."""

from __future__ import annotations

import base64
import contextlib
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def png_bytes(width: int = 96, height: int = 64, seed: int = 0) -> bytes:
    """A deterministic noisy RGB PNG."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def solid_png(width: int, height: int) -> bytes:
    """A one-colour PNG: tiny file, many decoded pixels (for decompression-bomb limits)."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{b64(data)}"


def pdf_bytes(pages: int = 2) -> bytes:
    """A small PDF with ``pages`` pages of text and a filled rectangle (rendered by pymupdf)."""
    import pymupdf

    doc = pymupdf.open()
    for i in range(pages):
        page = doc.new_page(width=200, height=260)
        page.insert_text((20, 40), f"Quarterly report page {i + 1}", fontsize=11)
        page.draw_rect(pymupdf.Rect(20, 60, 20 + 40 * (i + 1), 120), color=(0, 0, 1), fill=(0.2, 0.4, 0.8))
    data: bytes = doc.tobytes()
    doc.close()
    return data


def vectors(response_json: dict[str, Any], key: str = "embedding") -> np.ndarray:
    """The float vectors of an embeddings response, stacked (N, D)."""
    return np.array([item[key] for item in response_json["data"]], dtype=np.float32)


def as_array(value: Any) -> np.ndarray:
    """Library outputs (tensor, array or list of them) -> numpy float32."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().float().numpy()
    if isinstance(value, list):
        return np.stack([as_array(v) for v in value])
    return np.asarray(value, dtype=np.float32)


# ---- collection routes (httpx.Client or litestar TestClient) ----------------------------------------------


def create_collection(client: Any, name: str, **fields: Any) -> dict[str, Any]:
    """(Re)create collection ``name`` with these body fields; expect 201."""
    client.delete(f"/v1/collections/{name}")
    response = client.post("/v1/collections", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


def module_collection(client: Any, name: str, **fields: Any) -> Iterator[str]:
    """A module fixture's body: (re)create collection ``name`` (:func:`create_collection`), yield its name, drop it
    after the module (``yield from module_collection(client, NAME)``)."""
    create_collection(client, name, **fields)
    yield name
    client.delete(f"/v1/collections/{name}")


def text_pdf(pages: list[str], *, blank_pages: int = 0) -> bytes:
    """A PDF with one 300x200 pt page per text (its lines 40 pt apart, 16 pt type: a real text layer), then
    ``blank_pages`` pages with a dark rectangle and no text."""
    import pymupdf

    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page(width=300, height=200)
        for i, line in enumerate(text.split("\n")):
            page.insert_text((30, 60 + 40 * i), line, fontsize=16)
    for _ in range(blank_pages):
        doc.new_page(width=300, height=200).draw_rect(pymupdf.Rect(20, 20, 200, 120), fill=(0.1, 0.1, 0.1))
    data: bytes = doc.tobytes()
    return data


def add_pdf(client: Any, name: str, pages: int, **data: str) -> Any:
    """Upload a ``pages``-page PDF to collection ``name`` as multipart (``data``: the form fields); expect 201."""
    response = client.post(
        f"/v1/collections/{name}/documents",
        files={"file": ("doc.pdf", pdf_bytes(pages), "application/pdf")},
        data=data,
    )
    assert response.status_code == 201, response.text
    return response


def api_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The ``error`` object of a ``status`` response (message, type, code; ``code`` checked when given)."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "code"}
    if code is not None:
        assert error["code"] == code, error
    return error


def error_message(response: Any, status: int, code: str) -> str:
    """The message of a ``status`` error response with this ``code`` (the body checked as :func:`api_error` does)."""
    return str(api_error(response, status, code)["message"])


# small renders: a PDF page at 36 DPI, images capped at 64 patches (fast with the tiny checkpoint)
SMALL_SETTINGS: dict[str, Any] = {"pdf_dpi": 36, "image_max_pixels": 64 * 28 * 28}


@contextlib.contextmanager
def ready_app(tiny_encoder: Any, data_dir: Path, **settings: Any) -> Iterator[Any]:
    """A TestClient over an app on ``data_dir`` with ``SMALL_SETTINGS`` (and ``settings``), once it is ready."""
    from litestar.testing import TestClient

    from service.http.app import create_app
    from service.settings import Settings

    app = create_app(Settings(data_dir=data_dir, **{**SMALL_SETTINGS, **settings}), encoder=tiny_encoder)
    with TestClient(app) as client:
        deadline = time.monotonic() + 60
        while client.get("/ready").status_code != 200:
            assert time.monotonic() < deadline, "the app did not become ready in 60 s"
            time.sleep(0.05)
        yield client
