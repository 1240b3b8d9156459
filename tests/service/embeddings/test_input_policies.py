"""Explicit policies for ambiguous inputs (issue 14 item 4; README "Inputs", docs/clients.md):

- empty strings: refused (422 ``empty_input`` naming the index), as OpenAI's and TEI's APIs do;
- damaged PDFs that MuPDF could only open by rebuilding them: refused (422 ``pdf_damaged``), never silently;
- CMYK: PIL's ``convert("RGB")``, the reference's path; 16-bit RGB PNG: read as 8-bit RGB (same);
- 16-bit greyscale: scaled to 8 bits (the high byte), where the reference's conversion clips it white; float
  greyscale and 32-bit values beyond 16 bits: refused (422 ``unsupported_image_mode``);
- animated GIF / WebP and multi-page TIFF: the first frame, as the reference's ``Image.open().convert``;
- EXIF orientation: NOT applied, as the reference applies none.

Each image policy is shown on the decoded pixels (``model.images.load_image`` against PIL's own first-frame
``convert("RGB")``) and on the HTTP result (the server's vector for the file equals its vector for the
expected pixels sent as a plain PNG).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from model.errors import ImageModeError
from model.images import load_image
from tests.service.helpers import b64, pdf_bytes

RNG = np.random.default_rng(7)
BASE = RNG.integers(0, 256, size=(40, 48, 3), dtype=np.uint8)


def _save(image: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _png(pixels: np.ndarray) -> bytes:
    return _save(Image.fromarray(pixels), "PNG")


def _frames() -> list[Image.Image]:
    return [Image.fromarray(BASE), Image.fromarray(255 - BASE), Image.fromarray(BASE[::-1].copy())]


def _animated(fmt: str) -> bytes:
    first, *rest = _frames()
    extra = {"lossless": True} if fmt == "WEBP" else {}
    return _save(first, fmt, save_all=True, append_images=rest, duration=100, loop=0, **extra)


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    return _save(Image.fromarray(BASE), "JPEG", quality=95, exif=exif.tobytes())


def _cmyk() -> bytes:
    return _save(Image.fromarray(BASE).convert("CMYK"), "JPEG", quality=95)


def _png16(rgb16: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG written by hand (PIL cannot write one)."""
    import struct
    import zlib

    height, width, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _reference(data: bytes) -> np.ndarray:
    """What the reference sees: PIL opens the file and converts it (first frame, no EXIF transpose)."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


CASES: dict[str, Callable[[], bytes]] = {
    "cmyk_jpeg": _cmyk,
    "rgb16_png": lambda: _png16(BASE.astype(np.uint16) * 257),
    "animated_gif": lambda: _animated("GIF"),
    "animated_webp": lambda: _animated("WEBP"),
    "multipage_tiff": lambda: _animated("TIFF"),
    "exif_orientation_6": _exif_rotated,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_decoded_pixels_match_the_reference(name: str) -> None:
    data = CASES[name]()
    got = np.asarray(load_image(data))
    np.testing.assert_array_equal(got, _reference(data))
    if name in ("animated_gif", "animated_webp", "multipage_tiff"):
        assert Image.open(io.BytesIO(data)).n_frames == 3
        first = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        np.testing.assert_array_equal(got, first)
    if name == "exif_orientation_6":
        assert got.shape[:2] == BASE.shape[:2]  # stored orientation, not the displayed (rotated) one
    if name == "rgb16_png":
        np.testing.assert_array_equal(got, BASE)  # 16-bit values scaled to 8 bits, not clipped


@pytest.mark.parametrize("name", sorted(CASES))
def test_server_embeds_what_the_reference_sees(client: httpx.Client, name: str) -> None:
    data = CASES[name]()
    body = {"input": [{"image": b64(data)}, {"image": b64(_png(_reference(data)))}]}
    response = client.post("/v1/embeddings", json=body)
    assert response.status_code == 200, response.text
    first, second = (item["embedding"] for item in response.json()["data"])
    np.testing.assert_allclose(first, second, atol=1e-6)


@pytest.mark.parametrize(("mode", "fmt"), [("I;16", "PNG"), ("I;16", "TIFF"), ("I", "TIFF")])
def test_16bit_greyscale_scaled_to_8_bits(client: httpx.Client, mode: str, fmt: str) -> None:
    """The reference's ``convert("RGB")`` clips every value above 255 to white (a blank page); we keep the high
    byte of each 16-bit value, as PIL does for 16-bit RGB PNGs (issue 25)."""
    values = np.arange(40 * 48).reshape(40, 48) * 34  # 0..65246: every high byte
    image = Image.fromarray(values.astype(np.uint16) if mode == "I;16" else values.astype(np.int32))
    assert image.mode == mode
    data = _save(image, fmt)
    assert Image.open(io.BytesIO(data)).mode == mode
    expected = np.repeat((values >> 8).astype(np.uint8)[..., None], 3, axis=2)  # (40, 48, 3)
    np.testing.assert_array_equal(np.asarray(load_image(data)), expected)
    clipped = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))  # what the reference would embed
    assert (clipped == 255).mean() > 0.9
    body = {"input": [{"image": b64(data)}, {"image": b64(_png(expected))}]}
    response = client.post("/v1/embeddings", json=body)
    assert response.status_code == 200, response.text
    first, second = (item["embedding"] for item in response.json()["data"])
    np.testing.assert_allclose(first, second, atol=1e-6)


@pytest.mark.parametrize("mode", ["I", "F"])
def test_float_and_wide_greyscale_refused(client: httpx.Client, mode: str) -> None:
    values = np.arange(40 * 48).reshape(40, 48) * 100_000  # beyond 16 bits: no 8-bit scale to assume
    image = Image.fromarray(values.astype(np.float32 if mode == "F" else np.int32))
    assert image.mode == mode
    data = _save(image, "TIFF")
    with pytest.raises(ImageModeError):
        load_image(data)
    response = client.post("/v1/embeddings", json={"input": [{"image": b64(data)}]})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "unsupported_image_mode"
    assert "8-bit" in error["message"]


def test_damaged_pdf_refused(client: httpx.Client) -> None:
    good = pdf_bytes(2)
    cut = good.rfind(b"startxref")
    broken = good[:cut] + b"startxref\n999999\n%%EOF\n"  # xref offset pointing nowhere: MuPDF rebuilds it
    assert client.post("/v1/embeddings", json={"input": [{"pdf": b64(good)}]}).status_code == 200
    for damaged in (broken, good[:-40]):
        response = client.post("/v1/embeddings", json={"input": [{"pdf": b64(damaged)}]})
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "pdf_damaged"
        assert "re-save" in error["message"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"input": ""}, "input"),
        ({"input": ["a", ""]}, "input[1]"),
        ({"input": [{"text": ""}]}, "input[0].text"),
    ],
)
def test_empty_strings_refused(client: httpx.Client, body: dict[str, Any], where: str) -> None:
    response = client.post("/v1/embeddings", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "empty_input"
    assert error["message"].startswith(f"{where}: empty string")


def test_empty_rerank_query_and_document_refused(client: httpx.Client) -> None:
    for body in ({"query": "", "documents": ["a"]}, {"query": "q", "documents": ["a", ""]}):
        response = client.post("/v1/rerank", json=body)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "empty_input"


def test_whitespace_is_text_not_empty(client: httpx.Client) -> None:
    assert client.post("/v1/embeddings", json={"input": [" "]}).status_code == 200
