"""Text and code (UTF-8, or UTF-16/32 with a BOM) -> chunks: decoded, its language told, split by structure.

Chosen when the upload declares a ``language`` or its path has a known text/code extension
(:func:`~service.collections.chunking.language_of`). Every 4xx about the content is raised here, before any model
work: 413 over ``JEV4_MAX_TEXT_BYTES``, 415 for binaries or an unknown file type, 422 for an unknown language or
a document without text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.collections.chunking import (
    CODE_LANGUAGES,
    TEXT_LANGUAGES,
    ChunkLimits,
    decode_text,
    language_of,
    split_text,
)
from service.errors import UnprocessableError, UnsupportedMediaTypeError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from service.collections.chunking import Chunk

__all__ = ["ConvertedText", "claims", "convert"]


@dataclass(frozen=True, slots=True)
class ConvertedText:
    """A text document split into chunks (spans of ``text``)."""

    text: str
    language: str
    chunks: list[Chunk]
    replaced: int  # invalid UTF-8 sequences replaced by U+FFFD
    syntax_errors: bool


def claims(path: str | None, language: str | None) -> bool:
    """Whether an upload is a text document: a declared language, or a path with a known extension."""
    return language is not None or (path is not None and language_of(path) is not None)


def convert(
    data: bytes,
    path: str,
    language: str | None,
    offsets: Callable[[str], Sequence[tuple[int, int]]],
    *,
    max_bytes: int,
    limits: ChunkLimits,
) -> ConvertedText:
    """Decode and chunk one document; ``offsets`` tokenizes the text once (chunk sizes are in model tokens)."""
    known = sorted(CODE_LANGUAGES | TEXT_LANGUAGES)
    if language is not None and language not in known:
        raise UnprocessableError(
            f"language must be one of {', '.join(known)}, got {language[:40]!r}", code="unknown_language"
        )
    language = language or language_of(path)
    if language is None:
        raise UnsupportedMediaTypeError(
            f"{path!r}: unknown file type for a text document; use a known extension (.py, .js, .ts, "
            ".go, .rs, .java, .c, .cpp, .sh, .md, .txt, …) or send language (e.g. 'text')",
            code="unknown_language",
        )
    decoded = decode_text(data, max_bytes=max_bytes, name=path)
    if not decoded.text.strip():
        raise UnprocessableError(f"{path!r} holds no text (empty or only whitespace)", code="empty_input")
    # tokenized only after the checks that need no tokens (line lengths, chunk counts)
    split = split_text(decoded.text, path, lambda: offsets(decoded.text), limits, language=language)
    if not split.chunks:  # e.g. only bytes that decode to replacement characters the chunker drops
        raise UnprocessableError(f"{path!r} holds no text to index (no chunk could be made of it)", code="empty_input")
    return ConvertedText(decoded.text, split.language, split.chunks, decoded.replaced, split.syntax_errors)
