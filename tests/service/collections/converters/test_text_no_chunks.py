"""A text document whose bytes decode to characters no chunk keeps (only U+FFFD replacement characters) is a 422
``empty_input`` before any model work — it reached the embedder with zero chunks and answered 500 (found by
schemathesis' stateful phase)."""

from __future__ import annotations

import pytest

from service.collections.chunking import ChunkLimits
from service.collections.converters import text as text_converter
from service.errors import UnprocessableError, error_info


@pytest.mark.parametrize("data", [b"\xff\xfe\xfd", "\ufffd\ufffd\ufffd".encode()])
def test_no_chunk_is_an_empty_input(data: bytes) -> None:
    def offsets(text: str) -> list[tuple[int, int]]:
        return [(i, i + 1) for i in range(len(text))]

    with pytest.raises(UnprocessableError, match="no chunk") as caught:
        text_converter.convert(data, "file.ts", "typescript", offsets, max_bytes=1 << 20, limits=ChunkLimits())
    info = error_info(caught.value)
    assert info is not None
    assert (info.status, info.code) == (422, "empty_input")
