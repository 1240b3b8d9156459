"""A page's text layer as stored with its unit, and the boxes of a query's words on the page image.

Stored form (unit metadata key ``words``, written at indexing): ``[[x0, y0, x1, y1, "word"], ...]`` in pixels
of the stored page image (the image the model saw: ``cols*28 x rows*28``), reading order, 1 decimal, kept packed
(:mod:`colbert.word_boxes`: the same values in a quarter of the bytes); indexes written before hold the list. The unit's
text (its full-text index entry) is the words joined by spaces and newlines.

Highlight rule: a word of the page is highlighted when one of its :mod:`colbert.text` tokens is a token of the
query — the same tokens BM25 matched, so ``page`` highlights ``parse_page_selection`` and ``Café`` matches
``cafe``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from colbert import word_boxes
from colbert.text import query_terms, tokens
from model.types import TextLayer

__all__ = ["WORDS_KEY", "Box", "highlight", "read_words", "stored_words"]

WORDS_KEY = "words"


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


def stored_words(layer: TextLayer) -> list[list[Any]]:
    """The ``words`` value kept in the unit's metadata."""
    return [[round(w.x0, 1), round(w.y0, 1), round(w.x1, 1), round(w.y1, 1), w.text] for w in layer.words]


def read_words(unit_metadata: Mapping[str, Any]) -> list[tuple[float, float, float, float, str]]:
    """The stored ``words`` of a page unit (empty: no text layer); the one reader of that key (packed or the list
    of older indexes; a damaged packed value raises :class:`~colbert.word_boxes.WordBoxesError`)."""
    stored = unit_metadata.get(WORDS_KEY) or []
    if isinstance(stored, str):
        return word_boxes.unpack(stored)
    words: Sequence[Any] = stored
    return [(float(x0), float(y0), float(x1), float(y1), str(word)) for x0, y0, x1, y1, word in words]


def highlight(query: str, unit_metadata: Mapping[str, Any]) -> list[Box]:
    """Boxes of the page's words that share a token with ``query`` (empty: no text layer or no match)."""
    terms = set(query_terms(query))
    words = read_words(unit_metadata)
    boxes = []
    for x0, y0, x1, y1, word in words:
        matched = tuple(dict.fromkeys(t for t in tokens(str(word)) if t in terms))
        if matched:
            boxes.append(Box(x0, y0, x1, y1, word, matched))
    return boxes
