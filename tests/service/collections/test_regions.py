"""Regions (service.collections.regions) on hand-built pages, maps and chunks: the box of a known word asserted to
the pixel grid, the threshold and connectivity of visual areas, text lines ranked by coverage then phrase, hybrid
order, chunk line ranges from term hits and from token MaxSim, and the 422 / warning of pooled chunk collections."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from colbert.hybrid import SearchMode
from colbert.store import CollectionConfig
from model.layout import PATCH
from model.types import PromptType, Task, TaskSpec
from service.collections.regions import (
    MAX_REGIONS,
    _chunk_token_lines,
    check_regions,
    chunk_regions,
    line_scores,
    page_lines,
    page_regions,
    token_spans,
)
from service.errors import UnprocessableError

ROWS, COLS = 6, 8  # a page of 8 x 6 patches: 224 x 168 pixels
WIDTH, HEIGHT = COLS * PATCH, ROWS * PATCH
# Three lines of words, in pixels of the page image (reading order)
WORDS = [
    [10.0, 10.0, 60.0, 24.0, "Quarterly"],
    [66.0, 10.0, 120.0, 24.0, "revenue"],
    [126.0, 10.0, 170.0, 24.0, "north"],
    [10.0, 62.0, 50.0, 76.0, "Invoice"],
    [58.0, 62.0, 110.0, 76.0, "X7200B"],
    [10.0, 118.0, 70.0, 132.0, "revenue"],
    [76.0, 118.0, 110.0, 132.0, "total"],
]


def _meta() -> dict[str, object]:
    return {"image_grid": [ROWS, COLS], "words": WORDS}


def _map(*hot: tuple[int, int], value: float = 0.9) -> np.ndarray:
    scores = np.full((ROWS, COLS), 0.1, dtype=np.float32)
    for r, c in hot:
        scores[r, c] = value
    return scores


def test_page_lines_group_words_by_position() -> None:
    lines = page_lines([tuple(w) for w in WORDS])  # type: ignore[misc]
    assert [[w[4] for w in line] for line in lines] == [
        ["Quarterly", "revenue", "north"],
        ["Invoice", "X7200B"],
        ["revenue", "total"],
    ]


def test_visual_region_of_a_known_word_on_the_pixel_grid() -> None:
    # "X7200B" spans x 58..110, y 62..76: its centre (84, 69) is in patch row 2, col 3; the map is hot there only
    regions = page_regions(None, _meta(), _map((2, 3)), SearchMode.VISUAL)
    assert len(regions) == 1
    region = regions[0]
    assert region.source == "visual"
    assert region.text == "X7200B"  # snapped: the word whose centre is in the area, its own box
    assert region.bbox == pytest.approx((58 / WIDTH, 62 / HEIGHT, 110 / WIDTH, 76 / HEIGHT), abs=1e-5)
    assert region.score == pytest.approx(0.9)


def test_visual_area_without_words_keeps_its_patch_box() -> None:
    # an 8-connected area of three patches (a diagonal counts) in the empty lower right: the patch box itself
    regions = page_regions(None, _meta(), _map((3, 6), (4, 7), (5, 7)), SearchMode.VISUAL)
    assert [r.text for r in regions] == [""]
    box = (6 * PATCH / WIDTH, 3 * PATCH / HEIGHT, 8 * PATCH / WIDTH, 6 * PATCH / HEIGHT)
    assert regions[0].bbox == pytest.approx(box, abs=1e-5)


def test_visual_threshold_is_relative_to_the_page_and_areas_rank_by_best_patch() -> None:
    scores = _map((0, 2), value=0.5)  # patch (0, 2) = x 56..84: no word's centre ("Quarterly" col 1, "revenue" col 3)
    scores[2, 3] = 0.8  # "X7200B"
    scores[4, 1] = 0.3  # below median + 0.75 * (0.8 - 0.1) = 0.625: not an area
    regions = page_regions(None, _meta(), scores, SearchMode.VISUAL)
    assert [r.score for r in regions] == pytest.approx([0.8])
    scores[0, 2] = 0.7  # now above the level: a second, weaker area, with no word in it
    regions = page_regions(None, _meta(), scores, SearchMode.VISUAL)
    assert [r.text for r in regions] == ["X7200B", ""]
    assert [r.score for r in regions] == pytest.approx([0.8, 0.7])


def test_text_regions_are_lines_with_query_words_best_coverage_first() -> None:
    regions = page_regions("quarterly revenue", _meta(), None, SearchMode.TEXT)
    assert [(r.text, r.score, r.source) for r in regions] == [
        ("Quarterly revenue north", 1.0, "text"),
        ("revenue total", 0.5, "text"),
    ]
    assert regions[0].bbox == pytest.approx((10 / WIDTH, 10 / HEIGHT, 170 / WIDTH, 24 / HEIGHT), abs=1e-5)


def test_equal_coverage_ranks_the_phrase_in_query_order_first() -> None:
    words = [[0, 0, 20, 10, "total"], [25, 0, 50, 10, "revenue"], [0, 30, 20, 40, "revenue"], [25, 30, 50, 40, "total"]]
    regions = page_regions("revenue total", {"image_grid": [2, 2], "words": words}, None, SearchMode.TEXT)
    assert [r.text for r in regions] == ["revenue total", "total revenue"]


def test_hybrid_puts_text_first_and_drops_visual_areas_over_them() -> None:
    scores = _map((0, 3), (2, 3))  # "revenue" (line 1) and "X7200B"
    regions = page_regions("revenue", _meta(), scores, SearchMode.HYBRID)
    assert [(r.source, r.text) for r in regions] == [
        ("text", "Quarterly revenue north"),
        ("text", "revenue total"),
        ("visual", "X7200B"),  # the area on line 1 overlaps a text region: left out
    ]


def test_at_most_five_regions_and_none_without_a_grid() -> None:
    words = [[0, 12 * i, 20, 12 * i + 10, "alpha"] for i in range(9)]
    assert len(page_regions("alpha", {"image_grid": [4, 1], "words": words}, None, SearchMode.TEXT)) == MAX_REGIONS
    assert page_regions("alpha", {"words": words}, None, SearchMode.TEXT) == []  # no image grid: no fractions


def test_chunk_text_regions_are_runs_of_lines_with_query_words() -> None:
    text = "def load(path):\n    data = read(path)\n\n    return parse(data)\n"
    regions = chunk_regions("read data", text, 10, None, SearchMode.TEXT)
    assert [(r.lines, r.score, r.source) for r in regions] == [((11, 11), 1.0, "text"), ((13, 13), 0.5, "text")]
    assert regions[0].text == "    data = read(path)"
    assert regions[0].bbox is None


def test_chunk_visual_regions_from_token_maxsim_per_line() -> None:
    text = "alpha\nbeta gamma\ndelta"
    offsets = [(0, 5), (5, 6), (6, 10), (10, 16), (16, 17), (17, 22)]
    token_lines = token_spans(offsets, text)
    assert token_lines.tolist() == [0, 0, 1, 1, 1, 2]  # a newline token belongs to the line it ends
    e = np.eye(4, dtype=np.float32)
    chunk = np.stack([e[0], e[3], e[1], e[2], e[3], e[3], e[3]])  # one extra row past the text (the gap)
    query = np.stack([e[1], e[2]])  # matches "beta" and "gamma" exactly
    scores = line_scores(query, chunk, token_lines, 3)
    assert scores.tolist() == pytest.approx([0.0, 1.0, 0.0])
    regions = chunk_regions(None, text, 1, scores, SearchMode.VISUAL)
    assert [(r.lines, r.text, r.source) for r in regions] == [((2, 2), "beta gamma", "visual")]
    assert regions[0].score == pytest.approx(1.0)


def test_pooled_chunk_collections_refuse_visual_regions_and_warn_in_hybrid() -> None:
    pooled = CollectionConfig(dense_dim=128, multivector_dim=128, pool_factor=2, unit_kind="chunk", task="code")
    with pytest.raises(UnprocessableError, match="pool_factor 2") as raised:
        check_regions(pooled, SearchMode.VISUAL)
    assert raised.value.code == "regions_unavailable"
    assert "text ones only" in (check_regions(pooled, SearchMode.HYBRID) or "")
    assert check_regions(pooled, SearchMode.TEXT) is None
    pages = CollectionConfig(dense_dim=128, multivector_dim=128, pool_factor=2)
    assert check_regions(pages, SearchMode.VISUAL) is None  # pages' maps come from re-embedding the image


def test_chunk_token_lines_follow_the_late_chunking_spans(tiny_encoder: Any) -> None:
    """The stored rows of a chunk are the tokens of its piece as prepare_late_chunks encodes it (the document's
    first chunk behind the passage prompt): the alignment maps exactly those rows to the chunk's lines."""
    processor = tiny_encoder.processor
    pieces = ["def f(x):\n    return x\n\n", "class K:\n    value = 1\n"]
    spec = TaskSpec(Task.CODE, PromptType.PASSAGE)
    spans = processor.prepare_late_chunks(pieces, spec).spans
    store = SimpleNamespace(config=CollectionConfig(dense_dim=8, task="code", unit_kind="chunk"))
    for unit, (piece, (start, stop)) in enumerate(zip(pieces, spans, strict=True)):
        text = piece.rstrip("\n")  # the chunk's own text; the whitespace after it was fed too
        hit = SimpleNamespace(unit=unit)
        lines = _chunk_token_lines(store, hit, text, processor.tokenizer)  # type: ignore[arg-type]
        on_lines = lines[lines >= 0]
        assert 0 <= (stop - start) - len(lines) <= 1  # the rows left over: the newlines fed after the chunk
        assert sorted(set(on_lines.tolist())) == list(range(text.count("\n") + 1))  # every line has tokens
        prompt_rows = int((lines < 0).sum())
        assert prompt_rows == (len(processor.tokenizer.encode(spec.prefix).ids) if unit == 0 else 0)
