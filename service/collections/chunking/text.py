"""Markdown by headings (then paragraphs), plain text by paragraphs, anything else by line windows.

- Markdown (parsed with ``markdown-it-py``, CommonMark): a section runs from a heading to the next heading of any
  level [``section``, the heading's text; ``headings``: the path of headings above it, e.g. ``["Install", "From
  source"]``]; text before the first heading is a section without a name. A section longer than ``max_tokens``
  is cut between its blocks (paragraphs, lists, code fences), then at line ends.
- Plain text: paragraphs (separated by blank lines) packed greedily up to ``max_tokens`` [``paragraph``].
- Line windows [``lines``]: ``window_lines`` lines each (the fallback for code that does not parse).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import replace

from service.collections.chunking.spans import Chunk, ChunkLimits, TokenIndex, cap_size, line_of

__all__ = ["line_windows", "markdown_chunks", "paragraph_chunks", "trimmed"]


def trimmed(text: str, start: int, end: int) -> tuple[int, int] | None:
    """``[start, end)`` without leading/trailing whitespace, or None when only whitespace is left."""
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return None
    head = len(piece) - len(piece.lstrip())
    return start + head, start + head + len(stripped)


def make_chunk(text: str, starts: Sequence[int], start: int, end: int, kind: str, name: str | None) -> Chunk | None:
    span = trimmed(text, start, end)
    if span is None:
        return None
    a, b = span
    return Chunk(a, b, line_of(starts, a), line_of(starts, b - 1), kind, name)


def markdown_chunks(text: str, starts: Sequence[int], tokens: TokenIndex, limits: ChunkLimits) -> list[Chunk]:
    from markdown_it import MarkdownIt

    parsed = MarkdownIt("commonmark").parse(text)
    blocks = [t for t in parsed if t.level == 0 and t.map is not None and t.nesting >= 0]
    headings: list[tuple[int, int, str]] = []  # (line index, level, title)
    for i, token in enumerate(parsed):
        if token.type == "heading_open" and token.map is not None:
            title = parsed[i + 1].content.strip() if i + 1 < len(parsed) else ""
            headings.append((token.map[0], int(token.tag[1:]), title))
    block_starts = sorted({starts[t.map[0]] for t in blocks if t.map is not None and t.map[0] < len(starts)})
    cuts = [0, *(starts[line] for line, _, _ in headings if line < len(starts)), len(text)]
    path: list[tuple[int, str]] = []
    chunks: list[Chunk] = []
    titles = {starts[line]: (level, title) for line, level, title in headings if line < len(starts)}
    for a, b in itertools.pairwise(cuts):
        name = None
        if a in titles:
            level, title = titles[a]
            path = [(lv, t) for lv, t in path if lv < level] + [(level, title)]
            name = title
        chunk = make_chunk(text, starts, a, b, "section", name)
        if chunk is None:
            continue
        if name is not None:
            chunk.extra["headings"] = [t for _, t in path]
        inside = block_starts[
            bisect.bisect_right(block_starts, chunk.start) : bisect.bisect_left(block_starts, chunk.end)
        ]
        chunks.extend(_pack(text, chunk, inside, starts, tokens, limits))
    return chunks


def paragraph_chunks(text: str, starts: Sequence[int], tokens: TokenIndex, limits: ChunkLimits) -> list[Chunk]:
    """Paragraphs packed greedily up to ``max_tokens``."""
    whole = make_chunk(text, starts, 0, len(text), "paragraph", None)
    if whole is None:
        return []
    paragraphs = [
        starts[i]
        for i in range(1, len(starts))
        if not text[starts[i - 1] : starts[i]].strip() and text[starts[i] : starts[i] + 1].strip()
    ]
    inside = [p for p in paragraphs if whole.start < p < whole.end]
    return _pack(text, whole, inside, starts, tokens, limits)


def line_windows(
    text: str, starts: Sequence[int], start: int, end: int, tokens: TokenIndex, limits: ChunkLimits
) -> list[Chunk]:
    """``[start, end)`` in windows of ``window_lines`` lines (each capped at ``max_tokens``) [``lines``]."""
    first = line_of(starts, start) - 1
    last = line_of(starts, max(start, end - 1))
    chunks: list[Chunk] = []
    for line in range(first, last, limits.window_lines):
        a = max(start, starts[line])
        stop = line + limits.window_lines
        b = min(end, starts[stop]) if stop < len(starts) else end
        chunk = make_chunk(text, starts, a, b, "lines", None)
        if chunk is not None:
            chunks.extend(cap_size(chunk, starts, tokens, limits))
    return chunks


def _pack(
    text: str, chunk: Chunk, boundaries: Sequence[int], starts: Sequence[int], tokens: TokenIndex, limits: ChunkLimits
) -> list[Chunk]:
    """``chunk`` cut greedily at ``boundaries`` into pieces of ≤ ``max_tokens`` (a piece still too long is cut
    at line ends by :func:`cap_size`)."""
    if tokens.count(chunk.start, chunk.end) <= limits.max_tokens:
        return [chunk]
    pieces: list[Chunk] = []
    piece_start = chunk.start
    previous = chunk.start
    for boundary in [*boundaries, chunk.end]:
        if tokens.count(piece_start, boundary) > limits.max_tokens and previous > piece_start:
            pieces.extend(_piece(chunk, piece_start, previous, text, starts))
            piece_start = previous
        previous = boundary
    pieces.extend(_piece(chunk, piece_start, chunk.end, text, starts))
    out: list[Chunk] = []
    for piece in pieces:
        out.extend(cap_size(piece, starts, tokens, limits))
    return [replace(c, part=n) for n, c in enumerate(out, start=1)] if len(out) > 1 else out


def _piece(text_chunk: Chunk, a: int, b: int, text: str, starts: Sequence[int]) -> list[Chunk]:
    span = trimmed(text, a, b)
    if span is None:
        return []
    a, b = span
    return [replace(text_chunk, start=a, end=b, start_line=line_of(starts, a), end_line=line_of(starts, b - 1))]
