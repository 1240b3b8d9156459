"""What a stored unit's metadata holds, as types: :class:`PageUnitInfo` for pages, :class:`~colbert.units.ChunkInfo`
for text/code chunks. Writers build these and call ``to_metadata``; readers call ``from_metadata`` (one parser
each), so no other module spells the stored keys.

A page's stored metadata is built here in one call (:meth:`PageUnitInfo.of_page` then ``to_metadata``) and read
here (:meth:`PageUnitInfo.from_metadata`, :func:`read_words`). Stored form (unit metadata, JSON; the words packed
since issue 26; older indexes hold their list)::

    {"image_grid": [rows, cols], "num_tokens": n, "image_span": [start, stop], "words": "<packed word boxes>",
     "text_source": "pdf" | "ocr", "ocr_confidence": c}

``image_span``: the rows of the unit's multi-vector holding the image tokens (``rows*cols`` of them); ``words``
(only for pages with a text layer): ``[[x0, y0, x1, y1, "word"], ...]`` in pixels of the stored page image (the
image the model saw: ``cols*28 x rows*28``), reading order, 1 decimal (:func:`stored_words`), kept packed by
:mod:`colbert.word_boxes` (a string: the same values in a quarter of the bytes). The unit's text (its full-text
index entry) is the words joined by spaces and newlines.

>>> from model.layout import PageLayout
>>> info = PageUnitInfo(PageLayout(2, 3), num_tokens=20, image_span=(4, 10))
>>> info.to_metadata()
{'image_grid': [2, 3], 'num_tokens': 20, 'image_span': [4, 10]}
>>> PageUnitInfo.from_metadata(info.to_metadata()) == info
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from colbert import word_boxes
from colbert.units import ChunkInfo
from model.layout import PageLayout

if TYPE_CHECKING:
    from model.types import TextLayer

__all__ = ["WORDS_KEY", "ChunkInfo", "PageUnitInfo", "read_words", "stored_words"]

WORDS_KEY = "words"


def stored_words(layer: TextLayer) -> list[list[Any]]:
    """A text layer's words as kept in the unit's metadata (before packing): boxes rounded to 1 decimal."""
    return [[round(w.x0, 1), round(w.y0, 1), round(w.x1, 1), round(w.y1, 1), w.text] for w in layer.words]


def read_words(unit_metadata: Mapping[str, Any]) -> list[tuple[float, float, float, float, str]]:
    """The stored ``words`` of a page unit (empty: no text layer); the one reader of that key (packed or the list
    of older indexes; a damaged packed value raises :class:`~colbert.word_boxes.WordBoxesError`)."""
    stored = unit_metadata.get(WORDS_KEY) or []
    if isinstance(stored, str):
        return word_boxes.unpack(stored)
    words: Sequence[Any] = stored
    return [(float(x0), float(y0), float(x1), float(y1), str(word)) for x0, y0, x1, y1, word in words]


@dataclass(frozen=True, slots=True)
class PageUnitInfo:
    """One page unit's geometry: its merged patch grid, the tokens the model saw, where the image tokens are in
    its multi-vector, and its words with their boxes (None: no text layer)."""

    layout: PageLayout
    num_tokens: int = 0
    image_span: tuple[int, int] | None = None
    words: Sequence[Sequence[Any]] | None = None
    text_source: str | None = None  # where the words come from: "pdf" (the document's text) or "ocr" (model.ocr)
    ocr_confidence: float | None = None  # OCR's mean recognition confidence, 0..1

    @classmethod
    def of_page(
        cls, layout: PageLayout, num_tokens: int, image_span: tuple[int, int] | None, layer: TextLayer | None
    ) -> PageUnitInfo:
        """An embedded page's info: its layout, tokens and image span, and its text layer's words (with where they
        come from and OCR's confidence) when it has one."""
        if layer is None:
            return cls(layout, num_tokens, image_span)
        return cls(layout, num_tokens, image_span, stored_words(layer), layer.source, layer.confidence)

    def to_metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {**self.layout.to_metadata(), "num_tokens": self.num_tokens}
        if self.image_span is not None:
            meta["image_span"] = [self.image_span[0], self.image_span[1]]
        if self.words is not None:
            meta[WORDS_KEY] = word_boxes.pack(self.words)
        if self.text_source is not None:
            meta["text_source"] = self.text_source
        if self.ocr_confidence is not None:
            meta["ocr_confidence"] = self.ocr_confidence
        return meta

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> PageUnitInfo | None:
        """The page info stored with a unit; None when it has no grid (a text chunk, a forged record)."""
        layout = PageLayout.from_metadata(metadata)
        if layout is None:
            return None
        span = metadata.get("image_span")
        image_span = None
        if isinstance(span, list | tuple) and len(span) == 2:
            image_span = (int(span[0]), int(span[1]))
        words = read_words(metadata) if WORDS_KEY in metadata else None
        source = metadata.get("text_source")
        confidence = metadata.get("ocr_confidence")
        return cls(
            layout,
            int(metadata.get("num_tokens", 0)),
            image_span,
            words,
            source if isinstance(source, str) else None,
            float(confidence) if isinstance(confidence, int | float) else None,
        )
