"""What the MCP read tools show a model, computed from stored data: a snippet of a hit's text around the query's
words, a page image scaled to the size the client asks for, and the lines of a text/code document."""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from typing import Any

from PIL import Image

__all__ = ["MAX_LINES", "line_window", "scaled_png", "snippet", "text_from_chunks"]

MAX_LINES = 400  # read_lines answers at most this many lines per call (a model's context is the cost)
_WORD = re.compile(r"\w{3,}")


def snippet(text: str | None, query: str, width: int = 300) -> str:
    """About ``width`` characters of ``text`` around the first query word (3+ letters) found in it, else its start;
    whitespace runs collapsed; ``…`` marks a cut."""
    flat = " ".join((text or "").split())
    if len(flat) <= width:
        return flat
    lower = flat.lower()
    found = [i for w in _WORD.findall(query.lower()) if (i := lower.find(w)) >= 0]
    start = max(0, min(found) - width // 3) if found else 0
    start = min(start, len(flat) - width)
    return ("…" if start > 0 else "") + flat[start : start + width] + ("…" if start + width < len(flat) else "")


def scaled_png(png: bytes, max_side: int) -> tuple[bytes, int, int]:
    """``png`` scaled down (never up) so its longer side is at most ``max_side``: PNG bytes, width, height."""
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        copy = image.copy()
    if max(copy.size) > max_side:
        copy.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    copy.save(out, format="PNG", optimize=True)
    return out.getvalue(), copy.size[0], copy.size[1]


def text_from_chunks(chunks: Iterable[tuple[Mapping[str, Any], str]]) -> str:
    """The document's text put back together from its stored chunks ``(metadata with "char_span": [start, end)
    and "lines": [first, last], text)``, when its original file was not kept. Chunkers cut at whitespace, so a
    gap between two chunks is taken to be whitespace: the newlines the line numbers call for, then spaces (a
    method's indentation); overlapping chunks contribute each character once."""
    spans = []
    for meta, text in chunks:
        span, lines = meta.get("char_span") or [], meta.get("lines") or []
        if len(span) == 2 and len(lines) == 2:
            spans.append((int(span[0]), int(lines[0]), text))
    parts: list[str] = []
    pos, line = 0, 1
    for start, first_line, text in sorted(spans):
        if start < pos:
            text = text[pos - start :]
        elif start > pos:
            newlines = max(0, min(first_line - line, start - pos))
            parts.append("\n" * newlines + " " * (start - pos - newlines))
            line += newlines
        parts.append(text)
        pos, line = max(pos, start + len(text) + max(0, pos - start)), line + text.count("\n")
    return "".join(parts)


def line_window(lines: Mapping[int, str], start: int, end: int | None, total: int) -> tuple[str, int, int]:
    """Lines ``start..end`` (inclusive, at most :data:`MAX_LINES`) as ``"  12| text"`` rows; a line no stored chunk
    covers shows as ``"  12| ⟨not stored⟩"``. Returns the text and the range actually shown."""
    last = min(total, end if end is not None else start + MAX_LINES - 1, start + MAX_LINES - 1)
    width = len(str(last))
    rows = [f"{n:>{width}}| {lines.get(n, '⟨not stored⟩')}" for n in range(start, last + 1)]
    return "\n".join(rows), start, last
