"""Index one text or code document: bytes -> decoded text -> chunks -> late-chunked vectors -> one atomic add.

Pipeline (:meth:`TextIndexer.plan` then :meth:`TextIndexer.index`)::

    bytes ──decode (413 over JEV4_MAX_TEXT_BYTES, 415 for binaries, invalid UTF-8 replaced and counted)──▶ text
          ──tokenize once ──▶ split_text (chunks by definitions / sections / paragraphs / line windows, each
            ≤ JEV4_CHUNK_MAX_TOKENS) ──▶ late-chunking windows (pieces, windows)         (all in a pool thread,
                                                                                          before any model work)
          ──for each window: prepare_late_chunks + embed_late_chunks (the batcher: the /v1/embeddings path)
          ──▶ units (kind "chunk": dense truncated to the collection's size, multi-vector, the chunk's text,
              its info {path, language, chunk_kind, name, lines, char_span})
          ──▶ store.add_document(...) (every chunk or none; a replaced document's chunks swap in one transaction)

Passages use the collection's task (``retrieval`` or ``code``) with the passage prompt.

The document's metadata gets (besides the caller's) ``path`` and ``language`` (so filters can select them),
``syntax_errors: true`` when the parser met errors, and, when some bytes were not UTF-8, ``encoding_errors``
(the count of replaced sequences). Its ``content_hash`` is the sha256 of the bytes, the language, the task and
the chunking settings: re-indexing with ``skip_unchanged`` compares it with the stored document's and does
nothing when they are equal.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from colbert.errors import DocumentExistsError
from service.collections.chunking import (
    CODE_LANGUAGES,
    TEXT_LANGUAGES,
    ChunkLimits,
    decode_text,
    language_of,
    split_text,
)
from service.collections.late import LateChunker
from service.collections.vectors import truncate_dense
from service.engine import memory
from service.errors import UnprocessableError, UnsupportedMediaTypeError

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from colbert.store import DocumentInfo, OriginalFile, Store
    from model.types import EmbeddingOutput, TaskSpec
    from service.collections.chunking import Chunk
    from service.collections.indexing import Progress
    from service.settings import Settings

__all__ = ["PlannedText", "TextIndexer", "TextOptions", "TextResult", "TextSource"]


@dataclass(frozen=True, slots=True)
class TextSource:
    """A text/code document: its bytes, its path (the language comes from the extension) or an explicit language."""

    data: bytes
    path: str
    language: str | None = None


@dataclass(frozen=True, slots=True)
class TextOptions:
    max_bytes: int = 4 * 1024 * 1024
    limits: ChunkLimits = field(default_factory=ChunkLimits)
    window: int = 8192
    overlap: int = 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> TextOptions:
        return cls(
            max_bytes=settings.max_text_bytes,
            limits=ChunkLimits(
                settings.chunk_max_tokens,
                settings.chunk_window_lines,
                max_code_line_chars=settings.max_code_line_chars,
            ),
            window=settings.late_chunk_window_tokens,
            overlap=settings.late_chunk_overlap_tokens,
        )

    def fingerprint(self) -> str:
        """What else, besides the bytes, decides the chunks and vectors (part of ``content_hash``)."""
        return f"chunks:{self.limits.max_tokens}/{self.limits.window_lines};late:{self.window}/{self.overlap}"


@dataclass(frozen=True, slots=True)
class PlannedText:
    """A document ready to embed: its text, chunks, late-chunking pieces and windows, and its metadata."""

    text: str
    chunks: list[Chunk]
    pieces: list[str]
    windows: list[tuple[int, int, int]]
    metadata: dict[str, Any]
    content_hash: str


@dataclass(frozen=True, slots=True)
class TextResult:
    document: DocumentInfo
    tokens: int  # tokens the model ran over (0 when skipped as unchanged)
    skipped: bool = False  # unchanged (same content_hash): nothing was embedded or written


class TextIndexer:
    """Turns text/code documents into stored chunks (see the module doc)."""

    def __init__(
        self,
        chunker: LateChunker,
        pool: Executor,
        options: TextOptions,
        *,
        hidden_size: int,
        matryoshka_dims: Sequence[int],
    ) -> None:
        self.chunker = chunker
        self.pool = pool
        self.options = options
        self.hidden_size = hidden_size
        self.matryoshka_dims = tuple(matryoshka_dims)

    def prepare(self, source: TextSource, spec: TaskSpec) -> PlannedText:
        """Decode, chunk and plan the windows (blocking; every 4xx about the content is raised here)."""
        known = sorted(CODE_LANGUAGES | TEXT_LANGUAGES)
        if source.language is not None and source.language not in known:
            raise UnprocessableError(
                f"language must be one of {', '.join(known)}, got {source.language[:40]!r}", code="unknown_language"
            )
        language = source.language or language_of(source.path)
        if language is None:
            raise UnsupportedMediaTypeError(
                f"{source.path!r}: unknown file type for a text document; use a known extension (.py, .js, .ts, "
                ".go, .rs, .java, .c, .cpp, .sh, .md, .txt, …) or send language (e.g. 'text')",
                code="unknown_language",
            )
        decoded = decode_text(source.data, max_bytes=self.options.max_bytes, name=source.path)
        if not decoded.text.strip():
            raise UnprocessableError(f"{source.path!r} holds no text (empty or only whitespace)", code="empty_input")
        tokenizer = self.chunker.processor.tokenizer

        def offsets() -> Any:  # called by split_text after the checks that need no tokens
            return tokenizer.encode(decoded.text, add_special_tokens=False).offsets

        split = split_text(decoded.text, source.path, offsets, self.options.limits, language=language)
        pieces, windows = self.chunker.plan(decoded.text, split.chunks, spec)
        digest = hashlib.sha256(source.data)
        digest.update(f"\0{language}\0{spec.api_name}\0{self.options.fingerprint()}".encode())
        meta: dict[str, Any] = {"path": source.path, "language": split.language}
        if decoded.replaced:
            meta["encoding_errors"] = decoded.replaced
        if split.syntax_errors:
            meta["syntax_errors"] = True
        return PlannedText(decoded.text, split.chunks, pieces, windows, meta, digest.hexdigest())

    async def plan(
        self, store: Store, collection: str, document_id: str, source: TextSource, spec: TaskSpec, *, replace: bool
    ) -> PlannedText:
        """:meth:`prepare` in the pool, then the id check (409 unless ``replace``)."""
        loop = asyncio.get_running_loop()
        try:
            planned = await loop.run_in_executor(self.pool, self.prepare, source, spec)
        finally:
            if len(source.data) >= memory.LARGE_BYTES:  # the tokenizer's buffers are free now: give them back
                await loop.run_in_executor(self.pool, memory.trim)
        if not replace and await asyncio.to_thread(store.get_document, document_id) is not None:
            raise DocumentExistsError(
                f"document {document_id!r} already exists in collection {collection!r} (send replace=true)"
            )
        return planned

    async def index(
        self,
        store: Store,
        document_id: str,
        planned: PlannedText,
        spec: TaskSpec,
        metadata: Mapping[str, Any] | None = None,
        *,
        replace: bool = False,
        skip_unchanged: bool = False,
        progress: Progress | None = None,
        original: OriginalFile | None = None,
    ) -> TextResult:
        """Embed and store one planned document (all chunks or none), with its original file when given
        (``JEV4_KEEP_ORIGINALS``, in the same write)."""
        if skip_unchanged:
            existing = await asyncio.to_thread(store.get_document, document_id)
            if existing is not None and existing.content_hash == planned.content_hash:
                return TextResult(existing, 0, skipped=True)
        if progress is not None:
            progress.start(len(planned.chunks))
        advance = None if progress is None else progress.advance
        outputs, tokens = await self.chunker.embed(planned.pieces, planned.windows, spec, advance)
        units = self._units(planned, outputs, store.config.dense_dim)
        doc_meta = {**(metadata or {}), **planned.metadata}
        info = await asyncio.to_thread(
            functools.partial(
                store.add_document,
                document_id,
                units,
                doc_meta,
                replace=replace,
                content_hash=planned.content_hash,
                original=original,
            )
        )
        del outputs, units
        if len(planned.text) >= memory.LARGE_BYTES:  # vectors and batches of a large document are free now
            await asyncio.get_running_loop().run_in_executor(self.pool, memory.trim)
        return TextResult(info, tokens)

    def _units(self, planned: PlannedText, outputs: list[EmbeddingOutput], dim: int) -> list[Any]:
        from colbert.store import UnitRecord

        dense = np.stack([out.dense for out in outputs])  # (C, hidden)
        dense = truncate_dense(dense, dim, self.hidden_size, self.matryoshka_dims)  # (C, dim)
        units = []
        for k, (chunk, out) in enumerate(zip(planned.chunks, outputs, strict=True)):
            if out.multivector is None:
                raise RuntimeError("the encoder returned no multi-vector although one was requested")
            info = {"path": planned.metadata["path"], "language": planned.metadata["language"], **chunk.info()}
            units.append(
                UnitRecord(
                    unit=k,
                    dense=dense[k],
                    multivector=out.multivector,
                    kind="chunk",
                    text=chunk.text_of(planned.text),
                    metadata=info,
                )
            )
        return units
