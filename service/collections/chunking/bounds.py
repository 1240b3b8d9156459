"""The limits on one text/code document that are checked BEFORE the expensive step, not after it.

A document's cost grows with its tokens (the tokenizer, then the model over every late-chunking window) and with
its chunks (one unit each); a hostile file makes either explode while staying under ``JEV4_MAX_TEXT_BYTES``:

- a code line longer than ``max_code_line_chars`` (``JEV4_MAX_CODE_LINE_CHARS``, 1 Mi characters by default)
  -> 413 ``line_too_long``, checked on the decoded text before it is tokenized or parsed: nobody reads such a
  line as source (a 2 MB line of ``[``, a 4 MB one-line bundle holding ~170,000 tiny definitions); a string
  literal of a million characters is still indexed, cut at token boundaries;
- more chunks than ``max_chunks`` (the store's units per document) -> 413 ``too_many_chunks``, raised by
  :class:`ChunkCounter` as soon as one chunk too many is made (code definitions are counted as the syntax tree
  is walked, before the document is tokenized), so no late-chunking window is planned or embedded for it;
- nesting deeper than :data:`MAX_NESTING` definitions (600 nested classes, 2,000 nested Rust modules) is not a
  refusal: the walk stops descending there and the deeper code is chunked as plain code (``code`` chunks, capped
  at ``max_tokens``), so the file is indexed in bounded time and stack.

>>> longest_line("a\\nbcd\\n\\nef")
(2, 3)
"""

from __future__ import annotations

from typing import Final

from service.collections.chunking.spans import ChunkLimits
from service.errors import PayloadTooLargeError

__all__ = ["MAX_NESTING", "ChunkCounter", "check_code_lines", "longest_line"]

MAX_NESTING: Final = 64
"""Definitions inside definitions followed at most (class in class, mod in mod); deeper code is plain code."""


def longest_line(text: str) -> tuple[int, int]:
    """(1-based line number, length in characters) of the longest line of ``text`` (the first when tied)."""
    best_line, best_length, line, position = 1, 0, 1, 0
    while True:
        end = text.find("\n", position)
        length = (len(text) if end == -1 else end) - position
        if length > best_length:
            best_line, best_length = line, length
        if end == -1:
            return best_line, best_length
        position, line = end + 1, line + 1


def check_code_lines(text: str, limits: ChunkLimits, name: str) -> None:
    """413 ``line_too_long`` when a line of the code document ``name`` is over ``max_code_line_chars``."""
    line, length = longest_line(text)
    if length > limits.max_code_line_chars:
        raise PayloadTooLargeError(
            f"{name}: line {line} has {length} characters, more than the limit of {limits.max_code_line_chars} "
            "for a line of code (JEV4_MAX_CODE_LINE_CHARS); minified or generated code is not indexed as code: "
            "send the source it was built from, send the file as language 'text', or raise the setting",
            code="line_too_long",
        )


class ChunkCounter:
    """Counts the chunks of one document as they are made; 413 ``too_many_chunks`` at one over the limit.
    ``definitions``: what is counted are code definitions (the hint then is to send the file as text)."""

    def __init__(self, limits: ChunkLimits, name: str, *, definitions: bool = False) -> None:
        self.limit = limits.max_chunks
        self.name = name
        self.definitions = definitions
        self.count = 0

    def add(self, count: int = 1) -> None:
        self.count += count
        if self.count > self.limit:
            what, hint = (
                (
                    "definitions",
                    "split the file, or send it as language 'text' (paragraphs packed up to "
                    "JEV4_CHUNK_MAX_TOKENS tokens a chunk)",
                )
                if self.definitions
                else ("chunks", "split the file, or raise JEV4_CHUNK_MAX_TOKENS so that its chunks are larger")
            )
            raise PayloadTooLargeError(
                f"{self.name} makes more than {self.limit} {what}, the limit of chunks (units) per document; it "
                f"was stopped before any of it was embedded: {hint}",
                code="too_many_chunks",
            )
