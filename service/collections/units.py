"""What a stored unit's metadata holds, as types: :class:`PageUnitInfo` for pages, :class:`~colbert.units.ChunkInfo`
for text/code chunks. Writers build these and call ``to_metadata``; readers call ``from_metadata`` (one parser
each), so no other module spells the stored keys.

Stored form of a page (unit metadata, JSON; the words packed since issue 26; older indexes hold their list)::

    {"image_grid": [rows, cols], "num_tokens": n, "image_span": [start, stop], "words": "<packed word boxes>"}

``image_span``: the rows of the unit's multi-vector holding the image tokens (``rows*cols`` of them); ``words``
(only for pages with a text layer): :mod:`.highlight`'s form, packed by :mod:`colbert.word_boxes` (a string).

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
from typing import Any

from colbert import word_boxes
from colbert.units import ChunkInfo
from model.layout import PageLayout
from service.collections.highlight import WORDS_KEY, read_words

__all__ = ["ChunkInfo", "PageUnitInfo"]


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
