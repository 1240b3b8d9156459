"""Text and code documents -> chunks (units of ``kind="chunk"``), each with its kind, name, line range and span.

- :func:`split_text`: the one entry point (``document.py``); Markdown and plain text in ``text.py``, code with
  tree-sitter in ``code.py``, the language table in ``languages.py``, sizes in model tokens in ``spans.py``.
- :func:`decode_text`: bytes -> text, refusing binaries (``decode.py``).
"""

from __future__ import annotations

from service.collections.chunking.decode import DecodedText, decode_text
from service.collections.chunking.document import ChunkedText, split_text
from service.collections.chunking.languages import CODE_LANGUAGES, TEXT_LANGUAGES, language_of
from service.collections.chunking.spans import Chunk, ChunkLimits, TokenIndex

__all__ = [
    "CODE_LANGUAGES",
    "TEXT_LANGUAGES",
    "Chunk",
    "ChunkLimits",
    "ChunkedText",
    "DecodedText",
    "TokenIndex",
    "decode_text",
    "language_of",
    "split_text",
]
