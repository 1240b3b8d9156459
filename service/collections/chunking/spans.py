"""The chunk record, the document's token index, and the size rules every chunker shares.

A chunk is a span of the decoded document text: ``[start, end)`` in characters (Python ``str`` indexes, i.e.
Unicode code points) and lines ``start_line``…``end_line`` (1-based, inclusive). Sizes are measured in MODEL
tokens: the document is tokenized once (:class:`TokenIndex`) and a span's size is the number of tokens that start
inside it.

>>> index = TokenIndex([(0, 3), (3, 4), (4, 9)])
>>> index.count(0, 4), index.count(3, 9), index.count(9, 9)
(2, 2, 0)
>>> index.cut_points(0, 9, 2)        # where to cut [0, 9) so that no piece has more than 2 tokens
[4]
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["Chunk", "ChunkLimits", "TokenIndex", "cap_size", "line_of", "line_starts"]


@dataclass(frozen=True, slots=True)
class ChunkLimits:
    """Size rules (from the settings ``JEV4_CHUNK_MAX_TOKENS`` and ``JEV4_CHUNK_WINDOW_LINES``)."""

    max_tokens: int = 512
    """No chunk has more model tokens than this; a longer definition or section is cut at line ends
    (a single longer line at token boundaries), each part keeping the name and kind."""
    window_lines: int = 40
    """Lines per chunk of the line-window fallback (unknown languages, unparsable files)."""
    max_chunks: int = 4096
    """Chunks of one document at most (the store's units per document); checked as chunks are made, before
    any late-chunking window is planned or embedded."""
    max_code_line_chars: int = 1_048_576
    """Characters of one line of a code document at most (minified or generated code), checked before the
    document is tokenized or parsed."""

    def __post_init__(self) -> None:
        if self.max_tokens < 16:
            raise ValueError(f"chunk max_tokens must be ≥ 16, got {self.max_tokens}")
        if self.window_lines < 1:
            raise ValueError(f"chunk window_lines must be ≥ 1, got {self.window_lines}")
        if self.max_chunks < 1 or self.max_code_line_chars < 1:
            raise ValueError(
                f"max_chunks and max_code_line_chars must be ≥ 1, got {self.max_chunks}, {self.max_code_line_chars}"
            )


@dataclass(frozen=True, slots=True)
class Chunk:
    """One unit of a text document (see the module doc for the coordinates)."""

    start: int
    end: int
    start_line: int
    end_line: int
    kind: str  # function | method | class | definition | code | section | paragraph | lines
    name: str | None = None  # e.g. "Encoder.encode_text", or a Markdown heading
    part: int | None = None  # 1, 2, … when a definition or section longer than max_tokens was cut
    extra: dict[str, Any] = field(default_factory=dict)  # per-kind info (e.g. "headings" of a section)

    def text_of(self, text: str) -> str:
        return text[self.start : self.end]

    def info(self) -> dict[str, Any]:
        """The per-unit metadata stored beside the chunk (JSON)."""
        meta: dict[str, Any] = {
            "chunk_kind": self.kind,
            "char_span": [self.start, self.end],
            "lines": [self.start_line, self.end_line],
        }
        if self.name is not None:
            meta["name"] = self.name
        if self.part is not None:
            meta["part"] = self.part
        meta.update(self.extra)
        return meta


class TokenIndex:
    """Start/end character offsets of every token of the document (one tokenization, many span queries)."""

    def __init__(self, offsets: Sequence[tuple[int, int]]) -> None:
        self.starts = [start for start, _ in offsets]
        self.ends = [end for _, end in offsets]

    def count(self, start: int, end: int) -> int:
        """Tokens that start in ``[start, end)``."""
        return bisect.bisect_left(self.starts, end) - bisect.bisect_left(self.starts, start)

    def cut_points(self, start: int, end: int, max_tokens: int) -> list[int]:
        """Character positions (token starts) that cut ``[start, end)`` into pieces of ≤ ``max_tokens`` tokens."""
        first = bisect.bisect_left(self.starts, start)
        last = bisect.bisect_left(self.starts, end)
        return [self.starts[i] for i in range(first + max_tokens, last, max_tokens)]


def line_starts(text: str) -> list[int]:
    """Character offset of the start of every line (line 1 starts at 0)."""
    starts = [0]
    position = text.find("\n")
    while position != -1:
        starts.append(position + 1)
        position = text.find("\n", position + 1)
    return starts


def line_of(starts: Sequence[int], offset: int) -> int:
    """1-based line number of the character at ``offset``."""
    return bisect.bisect_right(starts, offset)


def cap_size(chunk: Chunk, starts: Sequence[int], tokens: TokenIndex, limits: ChunkLimits) -> list[Chunk]:
    """``chunk`` itself when it fits in ``max_tokens``; else parts cut at line ends, greedily filled (a line that
    alone is too long is cut at token boundaries), numbered ``part`` 1, 2, …"""
    limit = limits.max_tokens
    if tokens.count(chunk.start, chunk.end) <= limit:
        return [chunk]
    first = bisect.bisect_right(starts, chunk.start)
    last = bisect.bisect_left(starts, chunk.end)
    boundaries = [*starts[first:last], chunk.end]  # line starts inside the chunk, then its end
    cuts: list[int] = []
    piece_start = previous = chunk.start
    for boundary in boundaries:
        if tokens.count(piece_start, boundary) > limit:
            if previous > piece_start:  # cut at the end of the line before
                cuts.append(previous)
                piece_start = previous
            if tokens.count(piece_start, boundary) > limit:  # this line alone is too long
                cuts.extend(tokens.cut_points(piece_start, boundary, limit))
                piece_start = cuts[-1]
        previous = boundary
    bounds = [chunk.start, *cuts, chunk.end]
    return [
        replace(chunk, start=a, end=b, start_line=line_of(starts, a), end_line=line_of(starts, b - 1), part=number)
        for number, (a, b) in enumerate(itertools.pairwise(bounds), start=1)
    ]
