"""The MCP tools' views of stored data, exact on hand-built cases: a code file rebuilt from its chunks (gaps are
indentation and blank lines), numbered line windows, snippets around the query's words, scaled page images."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from service.mcp.reading import MAX_LINES, line_window, scaled_png, snippet, text_from_chunks

DOC = "import os\n\n\nclass Beta:\n    def gamma(self):\n        return 'g'\n\n    def delta(self):\n        pass\n"


def _chunk(start: int, end: int) -> tuple[dict[str, Any], str]:
    text = DOC[start:end]
    first = DOC[:start].count("\n") + 1
    return {"char_span": [start, end], "lines": [first, first + text.count("\n")]}, text


def test_a_document_is_rebuilt_from_chunks_that_skip_indentation_and_blank_lines() -> None:
    gamma, delta = DOC.index("def gamma"), DOC.index("def delta")
    chunks = [_chunk(delta, len(DOC) - 1), _chunk(0, 9), _chunk(DOC.index("class"), DOC.index("class") + 11)]
    chunks.append(_chunk(gamma, DOC.index("'g'") + 3))
    assert text_from_chunks(chunks) == DOC[:-1]


def test_overlapping_chunks_count_each_character_once() -> None:
    assert text_from_chunks([_chunk(0, 30), _chunk(20, len(DOC))]) == DOC


def test_line_window_numbers_lines_and_caps_its_length() -> None:
    lines = dict(enumerate(DOC.split("\n"), start=1))
    shown, first, last = line_window(lines, 4, 5, len(lines))
    assert (first, last) == (4, 5)
    assert shown.splitlines() == ["4| class Beta:", "5|     def gamma(self):"]
    many = dict.fromkeys(range(1, 2000), "x")
    _shown, first, last = line_window(many, 10, None, 1999)
    assert (first, last) == (10, 10 + MAX_LINES - 1)


def test_snippet_is_cut_around_the_first_query_word() -> None:
    text = "a " * 400 + "the revenue by region was highest in EMEA " + "b " * 400
    cut = snippet(text, "Which region had the highest revenue?", width=120)
    assert "revenue by region" in cut
    assert cut.startswith("…")
    assert cut.endswith("…")
    assert snippet("short text", "q") == "short text"


def test_scaled_png_never_grows_and_keeps_the_aspect() -> None:
    out = io.BytesIO()
    Image.new("RGB", (800, 400), "white").save(out, format="PNG")
    png, width, height = scaled_png(out.getvalue(), 200)
    assert (width, height) == (200, 100)
    assert Image.open(io.BytesIO(png)).size == (200, 100)
    assert scaled_png(out.getvalue(), 4000)[1:] == (800, 400)
