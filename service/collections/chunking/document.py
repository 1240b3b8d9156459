"""One entry point: a decoded text document + its path -> chunks (see the package doc for the rules).

The limits of ``bounds.py`` are checked here, before the costly steps: a code document's line lengths before
it is parsed or tokenized, its definitions as the syntax tree is walked (before tokenizing: ``offsets`` may be
a function called only then), every document's chunks as they are made.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from service.collections.chunking.bounds import ChunkCounter, check_code_lines
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


Offsets = Sequence[tuple[int, int]]


def split_text(
    text: str,
    path: str,
    offsets: Offsets | Callable[[], Offsets],
    limits: ChunkLimits,
    *,
    language: str | None = None,
) -> ChunkedText:
    """Chunks of ``text`` (its model-token ``offsets`` from one tokenization, or the function that tokenizes);
    the language is ``language`` or the one of ``path``'s extension; unknown languages are cut into line windows
    (``language="text"`` when the path says nothing is handled as plain text by paragraphs). Over a limit of
    ``bounds.py``: 413 naming it."""
    lang = language or language_of(path) or "unknown"
    starts = line_starts(text)
    counter = ChunkCounter(limits, path)
    definitions: list[Definition] = []
    errors = False
    if lang in CODE_LANGUAGES:
        check_code_lines(text, limits, path)
        definitions, errors = find_definitions(text, lang, ChunkCounter(limits, path, definitions=True))
    tokens = TokenIndex(offsets() if callable(offsets) else offsets)
    if lang not in CODE_LANGUAGES:
        if lang == "markdown":
            chunks = markdown_chunks(text, starts, tokens, limits)
        elif lang == "text":
            chunks = paragraph_chunks(text, starts, tokens, limits)
        else:
            chunks = line_windows(text, starts, 0, len(text), tokens, limits)
        counter.add(len(chunks))
        return ChunkedText(chunks, lang)
    chunks = []
    position = 0
    for definition in [*definitions, Definition(len(text), len(text), "end", None)]:
        made = len(chunks)
        if definition.start > position:  # the code between definitions
            chunks.extend(_gap(text, starts, position, definition.start, tokens, limits, errors))
        if definition.kind != "end":
            chunk = make_chunk(text, starts, definition.start, definition.end, definition.kind, definition.name)
            if chunk is not None:
                chunks.extend(cap_size(chunk, starts, tokens, limits))
        counter.add(len(chunks) - made)
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
