"""bench/regions.py's probes (no model): phrases come from MuPDF's own lines of a hand-built PDF, each with the
line's box as fractions of the page, never a window of dot leaders only; ``inside`` with its slack."""

from __future__ import annotations

import pymupdf
import pytest

from bench.regions import inside, probes

LINES = ["Quarterly revenue rose in every region", "Contents . . . . . . . . . . 3", "two words"]


def _pdf() -> bytes:
    doc = pymupdf.open()
    page = doc.new_page(width=400, height=200)
    for i, line in enumerate(LINES):
        page.insert_text((20, 40 + 50 * i), line, fontsize=12)
    data: bytes = doc.tobytes()
    return data


def test_probes_are_phrases_of_known_lines_with_their_boxes() -> None:
    found = probes(_pdf(), pages=1, count=10, seed=1)
    assert len(found) == 2  # "two words" has fewer than 3 words
    with pymupdf.open(stream=_pdf(), filetype="pdf") as doc:
        words = doc[0].get_text("words", sort=True)
    for probe in found:
        line = next(text for text in LINES if probe.phrase in text)
        assert any(c.isalpha() for c in probe.phrase)  # the contents line's window holds "Contents"
        mine = [w for w in words if w[4] in line.split()]
        x0 = min(w[0] for w in mine) / 400
        assert probe.box[0] == pytest.approx(x0)
        assert probe.page == 1


def test_inside_allows_the_slack_on_each_side() -> None:
    assert inside((0.1, 0.1, 0.5, 0.2), [0.1, 0.1, 0.5, 0.2], 0.0)
    assert inside((0.1, 0.1, 0.5, 0.2), [0.104, 0.1, 0.5, 0.2], 0.005)
    assert not inside((0.1, 0.1, 0.5, 0.2), [0.11, 0.1, 0.5, 0.2], 0.005)
