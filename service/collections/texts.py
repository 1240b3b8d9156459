"""Index one text or code document: bytes -> decoded text -> chunks -> late-chunked vectors -> one atomic add.

Pipeline (:meth:`TextIndexer.prepared` then :meth:`TextIndexer.embed`; the write path stores the units)::

    bytes ──the text converter (service.collections.converters.text): decode (413 over JEV4_MAX_TEXT_BYTES,
            415 for binaries, invalid UTF-8 replaced and counted) ──▶ text ──tokenize once ──▶ split_text
            (chunks by definitions / sections / paragraphs / line windows, each ≤ JEV4_CHUNK_MAX_TOKENS)
            ──▶ late-chunking windows (pieces, windows)     (all in a pool thread, before any model work)
          ──for each window: prepare_late_chunks + embed_late_chunks (the batcher: the /v1/embeddings path)
          ──▶ units (kind "chunk": dense truncated to the collection's size, multi-vector, the chunk's text,
              its colbert.units.ChunkInfo {path, language, chunk_kind, name, lines, char_span})
          ──▶ (the write path, :mod:`service.collections.writing`) one add_document: every chunk or none; a
              replaced document's chunks swap in one transaction

Passages use the collection's task (``retrieval`` or ``code``, :func:`~service.collections.tasks.task_spec`)
with the passage prompt.

The document's metadata gets (besides the caller's) ``path`` and ``language`` (so filters can select them),
``syntax_errors: true`` when the parser met errors, and, when some bytes were not UTF-8, ``encoding_errors``
(the count of replaced sequences). Its ``content_hash`` (:func:`~service.collections.duplicates.text_content_hash`)
is ``sha256:`` and the hash of the bytes, the language, the task and the chunking settings: re-indexing with
``skip_unchanged`` compares it with the stored document's (:func:`service.collections.writing.unchanged`, the one
skip-unchanged rule) and does nothing when they are equal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from colbert.store import UnitRecord
from colbert.units import ChunkInfo
from service.collections.chunking import ChunkLimits, language_of
from service.collections.converters import text as text_converter
from service.collections.duplicates import text_content_hash
from service.collections.embedder import QueueRetry, truncate_dense
from service.collections.late import LateChunker
from service.engine import memory

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from model.types import EmbeddingOutput, TaskSpec
    from service.collections.chunking import Chunk
    from service.collections.indexing import Progress
    from service.engine.runtime import Runtime
    from service.limits import InputLimits
    from service.settings import Settings

__all__ = ["PlannedText", "TextIndexer", "TextOptions", "TextSource", "text_indexer"]


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
    def from_settings(cls, settings: Settings, limits: InputLimits) -> TextOptions:
        return cls(
            max_bytes=limits.max_text_bytes,
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
        """Convert (decode, chunk) and plan the windows (blocking; every 4xx about the content is raised here)."""
        converted = text_converter.convert(
            source.data,
            source.path,
            source.language,
            self._offsets,
            max_bytes=self.options.max_bytes,
            limits=self.options.limits,
        )
        pieces, windows = self.chunker.plan(converted.text, converted.chunks, spec)
        language = source.language or language_of(source.path) or converted.language
        key = text_content_hash(source.data, language, spec.api_name, self.options.fingerprint())
        meta: dict[str, Any] = {"path": source.path, "language": converted.language}
        if converted.replaced:
            meta["encoding_errors"] = converted.replaced
        if converted.syntax_errors:
            meta["syntax_errors"] = True
        return PlannedText(converted.text, converted.chunks, pieces, windows, meta, key)

    def _offsets(self, text: str) -> Sequence[tuple[int, int]]:
        offsets: Sequence[tuple[int, int]] = self.chunker.processor.tokenizer.encode(
            text, add_special_tokens=False
        ).offsets
        return offsets

    async def prepared(self, source: TextSource, spec: TaskSpec) -> PlannedText:
        """:meth:`prepare` in the pool; after a large document the tokenizer's freed buffers go back to the OS."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.pool, self.prepare, source, spec)
        finally:
            if len(source.data) >= memory.LARGE_BYTES:
                await loop.run_in_executor(self.pool, memory.trim)

    async def embed(
        self, planned: PlannedText, spec: TaskSpec, dim: int, progress: Progress | None = None
    ) -> tuple[list[UnitRecord], int]:
        """Embed a planned document with late chunking: its units (every chunk, in order) and the tokens the model
        ran over. The write path (:mod:`service.collections.writing`) stores them in one ``add_document``."""
        if progress is not None:
            progress.start(len(planned.chunks))
        advance = None if progress is None else progress.advance
        outputs, tokens = await self.chunker.embed(planned.pieces, planned.windows, spec, advance)
        return self._units(planned, outputs, dim), tokens

    def _units(self, planned: PlannedText, outputs: list[EmbeddingOutput], dim: int) -> list[UnitRecord]:
        dense = np.stack([out.dense for out in outputs])  # (C, hidden)
        dense = truncate_dense(dense, dim, self.hidden_size, self.matryoshka_dims)  # (C, dim)
        units = []
        for k, (chunk, out) in enumerate(zip(planned.chunks, outputs, strict=True)):
            if out.multivector is None:
                raise RuntimeError("the encoder returned no multi-vector although one was requested")
            info = ChunkInfo(
                path=planned.metadata["path"],
                language=planned.metadata["language"],
                chunk_kind=chunk.kind,
                name=chunk.name,
                lines=(chunk.start_line, chunk.end_line),
                char_span=(chunk.start, chunk.end),
                part=chunk.part,
                extra=chunk.extra,
            )
            units.append(
                UnitRecord(
                    unit=k,
                    dense=dense[k],
                    multivector=out.multivector,
                    kind="chunk",
                    text=chunk.text_of(planned.text),
                    metadata=info.to_metadata(),
                )
            )
        return units


def text_indexer(runtime: Runtime, *, wait_when_full: bool) -> TextIndexer:
    """A :class:`TextIndexer` on the runtime's batcher (late chunking through the same queue as the API).

    On a full model queue the first window raises QueueFullError (429) unless ``wait_when_full`` (a background
    job); later windows always wait and retry, since the document is under way (:class:`QueueRetry`)."""
    encoder, batcher, _preparer = runtime.engine()
    options = TextOptions.from_settings(runtime.settings, runtime.limits)
    retry = QueueRetry(wait_when_full, runtime.retry_after_s)

    async def embed_late(late: Any) -> Any:
        return await retry.call(lambda: batcher.embed_late_chunks(late, return_multivector=True))

    chunker = LateChunker(encoder.processor, embed_late, window=options.window, overlap=options.overlap)
    return TextIndexer(
        chunker,
        runtime.pool,
        options,
        hidden_size=encoder.info.hidden_size,
        matryoshka_dims=encoder.info.matryoshka_dims,
    )
