"""Packed word boxes (:mod:`colbert.word_boxes`): a page's words stored packed read back exactly as the JSON list
stored before, so highlights and regions are identical (tolerance 0 px) on the real ``samples/report.pdf``; the
list of older indexes still reads; a damaged packed value is a typed error, also when importing an export."""

from __future__ import annotations

import base64
import json
import math
import zlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from colbert import word_boxes
from colbert._export_checks import _page_metadata
from colbert.errors import ExportFormatError
from colbert.hybrid import SearchMode
from colbert.text import query_terms
from model.layout import PageLayout
from model.pdf import render_pages
from model.types import TextLayer
from service.collections.highlight import highlight
from service.collections.regions import page_regions
from service.collections.units import WORDS_KEY, PageUnitInfo, read_words, stored_words

REPORT = Path(__file__).resolve().parents[3] / "samples" / "report.pdf"
QUERIES = ("revenue", "Revenue by region", "quarterly report growth", "the", "no such words here")


def _pages() -> list[tuple[PageLayout, TextLayer]]:
    """The report's pages with their text layers over the image the model sees (as indexing scales them)."""
    out = []
    for page in render_pages(REPORT.read_bytes(), text_layer=True):
        assert page.text_layer is not None
        layout = PageLayout(page.image.height // 28 or 1, page.image.width // 28 or 1)
        width, height = layout.image_size
        layer = page.text_layer.scaled(width / page.image.width, height / page.image.height)
        out.append((layout, layer))
    return out


def _as_stored(meta: dict[str, object]) -> dict[str, object]:
    """Through JSON, as the index keeps unit metadata."""
    loaded: dict[str, object] = json.loads(json.dumps(meta, separators=(",", ":")))
    return loaded


def test_report_pages_read_back_exactly_and_give_the_same_highlights_and_regions() -> None:
    rng = np.random.default_rng(0)
    for layout, layer in _pages():
        words = stored_words(layer)
        assert words, "the sample report has a text layer"
        old = _as_stored({**layout.to_metadata(), WORDS_KEY: words})  # the list stored before
        new = _as_stored(PageUnitInfo(layout, 10, None, words).to_metadata())
        assert isinstance(new[WORDS_KEY], str)
        assert len(str(new[WORDS_KEY])) * 2 < len(json.dumps(old[WORDS_KEY], separators=(",", ":")))
        assert read_words(new) == read_words(old)  # same floats, same words, same order
        scores = rng.random((layout.rows, layout.cols))
        for query in QUERIES:
            terms = tuple(query_terms(query))
            assert highlight(terms, new) == highlight(terms, old)
            for mode in SearchMode:
                assert page_regions(query, new, scores, mode) == page_regions(query, old, scores, mode)
        info = PageUnitInfo.from_metadata(new)
        assert info is not None
        assert info.words == read_words(old)


def test_values_that_cannot_be_packed_exactly_keep_the_list() -> None:
    words = [[1.0, 2.0, 3.0, 4.0, "two\nlines"], [5.0, 6.0, 7.0, 8.0, "x"]]
    assert word_boxes.pack(words) == words
    kept = word_boxes.pack([[float("nan"), 0.0, 1.0, 1.0, "w"]])
    assert isinstance(kept, list)
    assert math.isnan(kept[0][0])
    assert read_words({WORDS_KEY: word_boxes.pack(words)}) == [tuple(w) for w in words]


def test_edges_round_trip() -> None:
    words = [[-1.5, 0.0, 6553.9, 99999.9, ""], [0.1, 0.2, 0.3, 0.4, "é 漢字"], [3.0, 1.0, 2.0, 0.5, "backwards"]]
    assert word_boxes.unpack(str(word_boxes.pack(words))) == [tuple(w) for w in words]
    assert word_boxes.unpack(str(word_boxes.pack([]))) == []


@pytest.mark.parametrize(
    "value",
    [
        "not base64!",
        base64.b64encode(b"not zlib").decode(),
        base64.b64encode(zlib.compress(b"\x05\x00\x00\x00")).decode(),  # 5 boxes announced, none there
        base64.b64encode(zlib.compress(b"\x01\x00\x00\x00" + bytes(16) + b"a\nb")).decode(),  # 2 words, 1 box
        base64.b64encode(zlib.compress(b"\x01\x00\x00\x00" + bytes(16) + b"\xff")).decode(),  # not UTF-8
        base64.b64encode(zlib.compress(bytes(word_boxes.MAX_UNPACKED_BYTES + 1))).decode(),  # a zip bomb
    ],
)
def test_damaged_values_are_typed_errors(value: str) -> None:
    with pytest.raises(word_boxes.WordBoxesError):
        read_words({WORDS_KEY: value})


def test_an_export_with_damaged_packed_words_is_refused() -> None:
    meta: dict[str, Any] = {"image_grid": [1, 1], "words": word_boxes.pack([[0.0, 0.0, 1.0, 1.0, "ok"]])}
    _page_metadata(SimpleNamespace(unit=0, metadata=meta))  # type: ignore[arg-type]
    with pytest.raises(ExportFormatError, match="words"):
        _page_metadata(SimpleNamespace(unit=0, metadata={**meta, "words": "AAAA"}))  # type: ignore[arg-type]
