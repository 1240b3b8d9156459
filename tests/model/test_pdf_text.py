"""The PDF text layer: words with boxes in the pixels of the rendered page image, None for pages without text."""

from __future__ import annotations

import io

import numpy as np
import pymupdf
import pytest
from PIL import Image

from model.pdf import render_pages
from model.types import Word


def _pdf(*, rotation: int = 0, width: float = 400, height: float = 300) -> bytes:
    doc = pymupdf.open()
    page = doc.new_page(width=width, height=height)
    page.insert_text((60, 120), "Invoice X7200B", fontsize=24)
    page.insert_text((60, 220), "total due", fontsize=12)
    page.set_rotation(rotation)
    scan = doc.new_page(width=200, height=200)  # a "scanned" page: only an image, no text operators
    buf = io.BytesIO()
    Image.fromarray(np.full((50, 50, 3), 30, np.uint8)).save(buf, format="PNG")
    scan.insert_image(pymupdf.Rect(20, 20, 120, 120), stream=buf.getvalue())
    data: bytes = doc.tobytes()
    return data


def _ink(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L")) < 128  # (h, w) dark pixels


def _inside(word: Word, ink: np.ndarray, pad: float = 1.0) -> float:
    """Share of the dark pixels of ``ink`` that fall inside the word's box."""
    ys, xs = np.nonzero(ink)
    inside = (xs >= word.x0 - pad) & (xs <= word.x1 + pad) & (ys >= word.y0 - pad) & (ys <= word.y1 + pad)
    return float(inside.mean())


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_boxes_fall_on_the_words_in_the_image(rotation: int) -> None:
    page, scan = render_pages(_pdf(rotation=rotation), dpi=144, text_layer=True)
    assert page.text_layer is not None
    assert page.text_layer.text == "Invoice X7200B\ntotal due"
    assert [w.text for w in page.text_layer.words] == ["Invoice", "X7200B", "total", "due"]
    ink = _ink(page.image)
    # every dark pixel of the page is inside one of the four word boxes, and each box holds ink
    boxes = page.text_layer.words
    assert sum(_inside(w, ink) for w in boxes) == pytest.approx(1.0, abs=1e-9)
    for w in boxes:
        assert _inside(w, ink) > 0.05
        assert 0 <= w.x0 < w.x1 <= page.image.width
        assert 0 <= w.y0 < w.y1 <= page.image.height
    assert scan.text_layer is None  # an image-only page says it has no text layer (no OCR)


def test_known_position_at_the_render_scale() -> None:
    (page, _) = render_pages(_pdf(), dpi=144, text_layer=True)
    assert page.text_layer is not None
    first = page.text_layer.words[0]
    # baseline at y=120 pt, font size 24, x from 60 pt: at 144 DPI (scale 2) the box starts at x=120 px
    assert first.x0 == pytest.approx(120, abs=1)
    assert first.y0 < 240 < first.y1
    (low, _) = render_pages(_pdf(), dpi=144, max_pixels_per_page=60_000, text_layer=True)  # a lower scale
    assert low.text_layer is not None
    ratio = low.image.width / page.image.width
    assert low.text_layer.words[0].x0 == pytest.approx(first.x0 * ratio, abs=1.5)
    assert _inside(low.text_layer.words[0], _ink(low.image)) > 0.05


def test_text_layer_only_when_asked() -> None:
    assert all(p.text_layer is None for p in render_pages(_pdf(), dpi=72))
