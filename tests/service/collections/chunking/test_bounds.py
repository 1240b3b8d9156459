"""The limits checked before the costly steps (``chunking/bounds.py``): line length, chunk count, nesting depth.

Each refusal must come before the document is tokenized: ``split_text`` gets a tokenizer function that fails
the test when it is called.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from service.collections.chunking import ChunkLimits, split_text
from service.collections.chunking.bounds import MAX_NESTING, longest_line
from service.errors import PayloadTooLargeError

Offsets = Callable[[str], list[tuple[int, int]]]


def _never() -> list[tuple[int, int]]:
    raise AssertionError("the document was tokenized although a limit refuses it first")


def test_longest_line() -> None:
    assert longest_line("") == (1, 0)
    assert longest_line("abc") == (1, 3)
    assert longest_line("a\nbcd\n\nef\n") == (2, 3)
    assert longest_line("ab\ncd") == (1, 2)  # the first of equal lines


def test_a_code_line_over_the_limit_is_refused_before_tokenizing() -> None:
    text = "x = 1\n" + "[" * 5001 + "\n"
    with pytest.raises(PayloadTooLargeError) as info:
        split_text(text, "a.js", _never, ChunkLimits(max_code_line_chars=5000))
    assert info.value.code == "line_too_long"
    assert "line 2 has 5001 characters" in info.value.message
    assert "JEV4_MAX_CODE_LINE_CHARS" in info.value.message


def test_the_line_limit_is_for_code_only(offsets: Offsets) -> None:
    text = "word " * 2000 + "\n"  # one 10,000-character line of prose
    chunks = split_text(text, "a.txt", offsets(text), ChunkLimits(max_code_line_chars=5000)).chunks
    assert "".join(c.text_of(text) for c in chunks) == text.strip()


def test_too_many_definitions_are_refused_before_tokenizing() -> None:
    text = "".join(f"def f{i}():\n    return {i}\n\n" for i in range(30))
    with pytest.raises(PayloadTooLargeError) as info:
        split_text(text, "many.py", _never, ChunkLimits(max_chunks=20))
    assert info.value.code == "too_many_chunks"
    assert "more than 20 definitions" in info.value.message
    assert "'text'" in info.value.message


def test_too_many_chunks_of_text(offsets: Offsets) -> None:
    text = "".join(f"row {i}\n" for i in range(100))  # line windows of 40 lines: 3 chunks
    assert len(split_text(text, "d.xyz", offsets(text), ChunkLimits(max_chunks=3)).chunks) == 3
    with pytest.raises(PayloadTooLargeError) as info:
        split_text(text, "d.xyz", offsets(text), ChunkLimits(max_chunks=2))
    assert info.value.code == "too_many_chunks"
    assert "JEV4_CHUNK_MAX_TOKENS" in info.value.message


def test_the_limit_counts_parts_of_long_definitions(offsets: Offsets) -> None:
    body = "".join(f"    x{i} = {i} + {i} * {i}\n" for i in range(200))
    text = f"def big():\n{body}"  # one definition cut into parts of 64 tokens
    limits = ChunkLimits(max_tokens=64)
    parts = len(split_text(text, "big.py", offsets(text), limits).chunks)
    assert parts > 5
    with pytest.raises(PayloadTooLargeError):
        split_text(text, "big.py", offsets(text), ChunkLimits(max_tokens=64, max_chunks=parts - 1))


def _nested_python(depth: int) -> str:
    return "".join(" " * i + f"class C{i}:\n" for i in range(depth)) + " " * depth + "def leaf(self): return 1\n"


def _nested_rust(depth: int) -> str:
    return "".join(f"mod m{i} {{\n" for i in range(depth)) + "fn leaf() {}\n" + "}\n" * depth


@pytest.mark.parametrize(("path", "make", "depth"), [("deep.py", _nested_python, 600), ("deep.rs", _nested_rust, 2000)])
def test_deep_nesting_is_chunked_without_recursing(
    offsets: Offsets, path: str, make: Callable[[int], str], depth: int
) -> None:
    text = make(depth)
    result = split_text(text, path, offsets(text), ChunkLimits())
    assert result.chunks
    joined = "".join(c.text_of(text) for c in result.chunks)
    assert "leaf" in joined  # the innermost code is indexed, as plain code
    for chunk in result.chunks:
        assert (chunk.name or "").count(".") <= MAX_NESTING + 1  # names nest no deeper than the walk goes


def test_nesting_within_the_bound_keeps_its_names(offsets: Offsets) -> None:
    text = _nested_python(5)
    names = [c.name for c in split_text(text, "n.py", offsets(text), ChunkLimits()).chunks]
    assert "C0.C1.C2.C3.C4.leaf" in names
