"""The boxes of a query's words on a page image, from the page's stored words (:mod:`.units` owns their stored
form: :func:`~service.collections.units.read_words`).

Highlight rule: a word of the page is highlighted when one of its :mod:`colbert.text` tokens is a token of the
query — the same tokens BM25 matched, so ``page`` highlights ``parse_page_selection`` and ``Café`` matches
``cafe``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from colbert.text import tokens
from service.collections.units import read_words

__all__ = ["Box", "highlight"]


@dataclass(frozen=True, slots=True)
class Box:
    """A matched word's box in pixels of the stored page image (x right, y down) and the query tokens it
    matched."""

    x0: float
    y0: float
    x1: float
    y1: float
    word: str
    terms: tuple[str, ...]


def highlight(terms: tuple[str, ...], unit_metadata: Mapping[str, Any]) -> list[Box]:
    """Boxes of the page's words that share a token with the query's ``terms`` (its :func:`colbert.text.query_terms`,
    split once per search; empty: no text layer or no match)."""
    wanted = set(terms)
    words = read_words(unit_metadata)
    boxes = []
    for x0, y0, x1, y1, word in words:
        matched = tuple(dict.fromkeys(t for t in tokens(str(word)) if t in wanted))
        if matched:
            boxes.append(Box(x0, y0, x1, y1, word, matched))
    return boxes
