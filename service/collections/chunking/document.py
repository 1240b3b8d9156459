"""One entry point: a decoded text document + its path -> chunks (see the package doc for the rules)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service.collections.chunking.code import Definition, find_definitions
from service.collections.chunking.languages import CODE_LANGUAGES, language_of
from service.collections.chunking.spans import Chunk, ChunkLimits, TokenIndex, cap_size, line_starts
from service.collections.chunking.text import line_windows, make_chunk, markdown_chunks, paragraph_chunks

__all__ = ["ChunkedText", "split_text"]


@dataclass(frozen=True, slots=True)
class ChunkedText:
    """The chunks of one document in order, its language and whether its parse had syntax errors."""

    chunks: list[Chunk]
    language: str
    syntax_errors: bool = False


def split_text(
    text: str, path: str, offsets: Sequence[tuple[int, int]], limits: ChunkLimits, *, language: str | None = None
) -> ChunkedText:
    """Chunks of ``text`` (its model-token ``offsets`` from one tokenization); the language is ``language`` or
    the one of ``path``'s extension; unknown languages are cut into line windows (``language="text"`` when the
    path says nothing is handled as plain text by paragraphs)."""
    lang = language or language_of(path) or "unknown"
    starts = line_starts(text)
    tokens = TokenIndex(offsets)
    if lang == "markdown":
        return ChunkedText(markdown_chunks(text, starts, tokens, limits), lang)
    if lang == "text":
        return ChunkedText(paragraph_chunks(text, starts, tokens, limits), lang)
    if lang not in CODE_LANGUAGES:
        return ChunkedText(line_windows(text, starts, 0, len(text), tokens, limits), lang)
    definitions, errors = find_definitions(text, lang)
    chunks: list[Chunk] = []
    position = 0
    for definition in [*definitions, Definition(len(text), len(text), "end", None)]:
        if definition.start > position:  # the code between definitions
            chunks.extend(_gap(text, starts, position, definition.start, tokens, limits, errors))
        if definition.kind != "end":
            chunk = make_chunk(text, starts, definition.start, definition.end, definition.kind, definition.name)
            if chunk is not None:
                chunks.extend(cap_size(chunk, starts, tokens, limits))
        position = max(position, definition.end)
    return ChunkedText(chunks, lang, errors)


def _gap(
    text: str,
    starts: Sequence[int],
    start: int,
    end: int,
    tokens: TokenIndex,
    limits: ChunkLimits,
    errors: bool,
) -> list[Chunk]:
    """Code outside definitions: one ``code`` chunk (capped); line windows when the file has syntax errors (the
    parser's view of that region is not trusted)."""
    if errors:
        return line_windows(text, starts, start, end, tokens, limits)
    chunk = make_chunk(text, starts, start, end, "code", None)
    if chunk is None or not any(ch.isalnum() for ch in chunk.text_of(text)):
        return []  # whitespace or a closing brace: context for the model (late chunking), not a chunk
    return cap_size(chunk, starts, tokens, limits)
