"""Late chunking of documents: the equality rule, the shared code path with /v1/embeddings, windows."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from model.types import PromptType, Task, TaskSpec
from service.collections.chunking import ChunkLimits, split_text
from service.collections.late import LateChunker, chunk_pieces, plan_windows
from tests.service.collections.chunking.conftest import DATA

PASSAGE = TaskSpec(Task.RETRIEVAL, PromptType.PASSAGE)
CODE = TaskSpec(Task.CODE, PromptType.PASSAGE)


def _chunker(encoder: Any, window: int = 8192, overlap: int = 1024) -> LateChunker:
    async def embed_late(late: Any) -> Any:
        return encoder.embed_late_chunks(late, return_multivector=True)

    return LateChunker(encoder.processor, embed_late, window=window, overlap=overlap)


def _embed(chunker: LateChunker, text: str, chunks: Any, spec: TaskSpec) -> tuple[list[Any], int]:
    pieces, windows = chunker.plan(text, chunks, spec)
    return asyncio.run(chunker.embed(pieces, windows, spec))


def test_one_chunk_equal_to_the_document_equals_its_plain_embedding(tiny_encoder: Any) -> None:
    text = "def add(a, b):\n    return a + b"
    chunks = split_text(text, "add.py", [], ChunkLimits()).chunks  # no offsets: everything fits
    assert len(chunks) == 1
    assert chunks[0].text_of(text) == text
    (out,), _ = _embed(_chunker(tiny_encoder), text, chunks, CODE)
    dense = tiny_encoder.encode_text(text, task="code", prompt_name="passage", return_numpy=True)
    multi = tiny_encoder.encode_text(
        text, task="code", prompt_name="passage", return_multivector=True, return_numpy=True
    )
    np.testing.assert_allclose(out.dense, dense, atol=1e-5)
    np.testing.assert_allclose(out.multivector, multi, atol=1e-5)


def test_same_path_as_the_embeddings_api(tiny_encoder: Any, offsets: Any) -> None:
    """Chunks of one window = ``encode_text(pieces, late_chunking=True)`` (what /v1/embeddings runs)."""
    text = (DATA / "sample.py").read_text()
    chunks = split_text(text, "sample.py", offsets(text), ChunkLimits()).chunks
    outputs, tokens = _embed(_chunker(tiny_encoder), text, chunks, PASSAGE)
    pieces = chunk_pieces(text, chunks)
    assert "".join(pieces) == text[chunks[0].start :]  # the model reads the document as written
    expected = tiny_encoder.encode_text(pieces, task="retrieval", prompt_name="passage", late_chunking=True)
    assert len(outputs) == len(chunks) == len(expected)
    for out, want in zip(outputs, expected, strict=True):
        np.testing.assert_allclose(out.dense, want.numpy(), atol=1e-5)
    assert tokens == len(offsets("Passage: " + pieces[0])) + sum(len(offsets(p)) for p in pieces[1:])


def test_windows_emit_every_chunk_once_with_context(tiny_encoder: Any, offsets: Any) -> None:
    text = (DATA / "sample.py").read_text()
    chunks = split_text(text, "sample.py", offsets(text), ChunkLimits()).chunks
    small = _chunker(tiny_encoder, window=80, overlap=30)
    pieces, windows = small.plan(text, chunks, PASSAGE)
    assert len(windows) > 1
    emitted = [k for _a, i, b in windows for k in range(i, b)]
    assert emitted == list(range(len(chunks)))
    assert any(a < i for a, i, _b in windows)  # later windows start with context
    outputs, _ = asyncio.run(small.embed(pieces, windows, PASSAGE))
    assert len(outputs) == len(chunks)
    a, i, b = next(w for w in windows if w[0] < w[1])
    alone = tiny_encoder.encode_text(list(pieces[a:b]), task="retrieval", prompt_name="passage", late_chunking=True)
    np.testing.assert_allclose(outputs[i].dense, alone[i - a].numpy(), atol=1e-5)


def test_plan_windows_refuses_a_piece_larger_than_the_window() -> None:
    from service.errors import UnprocessableError

    assert plan_windows([5, 50, 5], window=60, overlap=10, prefix=2) == [
        (0, 0, 2),
        (2, 2, 3),
    ]  # 50 > overlap: no context
    with pytest.raises(UnprocessableError, match="JEV4_LATE_CHUNK_WINDOW_TOKENS"):
        plan_windows([5, 70], window=60, overlap=10, prefix=2)
