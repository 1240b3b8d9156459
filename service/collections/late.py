"""Late chunking of a text document: one forward pass per window, each chunk pooled over its own span.

The model runs over the document's chunks joined in order (the same joined sequence ``/v1/embeddings`` builds
with ``late_chunking=true``: :meth:`model.processor.Processor.prepare_late_chunks` then
:meth:`model.encoder.Encoder.embed_late_chunks`, through the batcher — one code path for both). Each chunk's
single vector is the mean of its own tokens' hidden states (L2-normalised), its multi-vector its own tokens'
projected rows. A chunk that is the whole document therefore equals the document's plain embedding.

Pieces. Chunk ``k`` is fed as its text plus what lies between it and chunk ``k+1`` (whitespace, a closing
brace; more than ``_MAX_GAP`` characters of it are fed as one blank line), so the model reads the document as
written.

Windows. A document longer than ``window`` tokens (``JEV4_LATE_CHUNK_WINDOW_TOKENS``, default 8192; the model's
context is 32768) is embedded in several passes: each window emits the next chunks that fit and starts with up to
``overlap`` tokens (``JEV4_LATE_CHUNK_OVERLAP_TOKENS``) of the chunks before them as context, which are run again
but not emitted. Every chunk is emitted exactly once.

>>> plan_windows([3, 3, 3, 3], window=8, overlap=3, prefix=2)    # (first context piece, first emitted, end)
[(0, 0, 2), (1, 2, 3), (2, 3, 4)]
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.errors import UnprocessableError

if TYPE_CHECKING:
    from model.processor import LateChunkInput, Processor
    from model.types import EmbeddingOutput, TaskSpec
    from service.collections.chunking import Chunk

__all__ = ["LateChunker", "chunk_pieces", "plan_windows"]

_MAX_GAP = 200
_SLACK = 16
EmbedLateFn = Callable[["LateChunkInput"], Awaitable["list[EmbeddingOutput]"]]


def chunk_pieces(text: str, chunks: Sequence[Chunk]) -> list[str]:
    """The text fed for each chunk: its own text and the whitespace after it (see the module doc)."""
    pieces = []
    for k, chunk in enumerate(chunks):
        gap_end = chunks[k + 1].start if k + 1 < len(chunks) else len(text)
        gap = text[chunk.end : gap_end]
        if len(gap) > _MAX_GAP:
            gap = "\n\n" if "\n" in gap else " "
        pieces.append(text[chunk.start : chunk.end] + gap)
    return pieces


def plan_windows(tokens: Sequence[int], *, window: int, overlap: int, prefix: int) -> list[tuple[int, int, int]]:
    """Windows over pieces of ``tokens`` tokens each: ``(a, i, b)`` runs pieces ``a:b`` (``prefix`` tokens of
    prompt first) and emits ``i:b``; ``a:i`` is context of ≤ ``overlap`` tokens."""
    plans = []
    i = 0
    while i < len(tokens):
        a, context = i, 0
        while a > 0 and context + tokens[a - 1] <= overlap:
            a -= 1
            context += tokens[a]
        total, b = prefix + context, i
        while b < len(tokens) and total + tokens[b] <= window:
            total += tokens[b]
            b += 1
        if b == i:  # one piece alone does not fit beside the context: run it alone
            if prefix + tokens[i] > window:
                raise UnprocessableError(
                    f"a chunk of {tokens[i]} tokens does not fit in a late-chunking window of {window} tokens "
                    "(JEV4_LATE_CHUNK_WINDOW_TOKENS must exceed JEV4_CHUNK_MAX_TOKENS by a margin)",
                    code="chunk_too_long",
                )
            a, b = i, i + 1
        plans.append((a, i, b))
        i = b
    return plans


@dataclass(frozen=True, slots=True)
class LateChunker:
    """Embeds the chunks of one document with late chunking (see the module doc)."""

    processor: Processor
    embed_late: EmbedLateFn
    window: int = 8192
    overlap: int = 1024

    def plan(self, text: str, chunks: Sequence[Chunk], spec: TaskSpec) -> tuple[list[str], list[tuple[int, int, int]]]:
        """Pieces and windows (blocking: tokenizes)."""
        pieces = chunk_pieces(text, chunks)
        encodings = self.processor.tokenizer.encode_batch([spec.prefix, *pieces], add_special_tokens=False)
        counts = [len(e.ids) for e in encodings]
        return pieces, plan_windows(counts[1:], window=self.window, overlap=self.overlap, prefix=counts[0])

    async def embed(
        self,
        pieces: Sequence[str],
        windows: Sequence[tuple[int, int, int]],
        spec: TaskSpec,
        on_window: Callable[[int], None] | None = None,
    ) -> tuple[list[EmbeddingOutput], int]:
        """One output per piece (in order) and the tokens the model ran over; ``on_window(chunks)`` after each
        window with the number of chunks it emitted."""
        outputs: list[EmbeddingOutput] = []
        tokens = 0
        for a, i, b in windows:
            # planned with the prompt counted alone; joined with the first piece it may tokenize a little differently
            late = await asyncio.to_thread(
                self.processor.prepare_late_chunks, list(pieces[a:b]), spec, max_length=self.window + _SLACK
            )
            window_outputs = await self.embed_late(late)
            outputs.extend(window_outputs[i - a :])
            tokens += late.prepared.num_tokens
            if on_window is not None:
                on_window(b - i)
        return outputs, tokens
