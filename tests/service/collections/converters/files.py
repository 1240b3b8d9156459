"""Real files of each page format, built with the format's own structure (no fixtures on disk), and the check
that a word of one is found first by text search on the right page with its highlight box on the word."""

from __future__ import annotations

import base64
import io
import zipfile
from typing import Any

import httpx
import numpy as np
from PIL import Image, ImageDraw

_CONTAINER = (
    '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
    '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
    "</rootfiles></container>"
)


def epub_bytes(chapters: list[str], *, extra: dict[str, bytes] | None = None) -> bytes:
    """An EPUB 3 book, one XHTML chapter per entry of ``chapters`` (its body text); ``extra``: more members
    (by name, e.g. a hostile path)."""
    manifest = "".join(
        f'<item id="c{i}" href="c{i}.xhtml" media-type="application/xhtml+xml"/>' for i in range(len(chapters))
    )
    spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
    opf = (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="id">t</dc:identifier>'
        "<dc:title>T</dc:title><dc:language>en</dc:language></metadata>"
        f"<manifest>{manifest}</manifest><spine>{spine}</spine></package>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")  # first, stored (as EPUB requires)
        z.writestr("META-INF/container.xml", _CONTAINER)
        z.writestr("OEBPS/content.opf", opf)
        for i, body in enumerate(chapters):
            xhtml = (
                '<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>c</title></head>'
                f'<body><p style="font-size:20pt">{body}</p></body></html>'
            )
            z.writestr(f"OEBPS/c{i}.xhtml", xhtml)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return out.getvalue()


def fb2_bytes(text: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<FictionBook xmlns="http://www.gribuser.ru/xml/fictionbook/2.0"><description><title-info>'
        "<book-title>T</book-title></title-info></description>"
        f"<body><section><p>{text}</p></section></body></FictionBook>"
    ).encode()


def svg_bytes(text: str) -> bytes:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="200">'
        f'<text x="20" y="100" font-size="28" font-family="sans-serif">{text}</text></svg>'
    ).encode()


def text_image(words: str, *, size: tuple[int, int] = (900, 220), font_size: int = 48) -> Image.Image:
    """A photo-like image of ``words``: black text on an off-white, slightly noisy background."""
    from PIL import ImageFont

    image = Image.new("RGB", size, (236, 232, 224))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=font_size)
    draw.text((30, size[1] // 2 - font_size // 2), words, fill=(20, 20, 20), font=font)
    noise = np.random.default_rng(0).normal(0, 6, (size[1], size[0], 3))
    pixels = np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def cbz_bytes(images: list[Image.Image]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for i, image in enumerate(images):
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            z.writestr(f"{i + 1:03d}.png", buffer.getvalue())
    return out.getvalue()


def search(client: httpx.Client, collection: str, query: str) -> list[dict[str, Any]]:
    response = client.post(
        f"/v1/collections/{collection}/search",
        json={"query": query, "mode": "text", "highlight": True, "include_image": True, "top_k": 5},
    )
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def assert_found(client: httpx.Client, collection: str, word: str, document_id: str, page: int) -> None:
    """``word`` is the first text-search hit, in ``document_id`` on ``page``, its highlight box on ink."""
    results = search(client, collection, word)
    assert results, f"{word!r} not found"
    hit = results[0]
    assert (hit["document_id"], hit["page"]) == (document_id, page), hit
    boxes = [b for b in hit["highlights"] if b["word"].lower().strip(".,") == word.lower()]
    assert boxes, hit["highlights"]
    image = np.asarray(Image.open(io.BytesIO(base64.b64decode(hit["image"]))).convert("L"))
    x0, y0, x1, y1 = (round(boxes[0][k]) for k in ("x0", "y0", "x1", "y1"))
    assert x1 > x0
    assert y1 > y0
    assert (image[y0:y1, x0:x1] < 200).mean() > 0.05  # ink of the word inside its box (small fonts render grey)
