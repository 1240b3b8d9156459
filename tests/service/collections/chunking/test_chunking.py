"""Chunk boundaries on real files of every supported language (line ranges checked by hand against the files in
tests/data/code), Markdown sections, the syntax-error fallback, the token cap and the coverage invariant."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from service.collections.chunking import ChunkLimits, language_of, split_text
from tests.service.collections.chunking.conftest import DATA

Offsets = Callable[[str], list[tuple[int, int]]]

EXPECTED = {
    "sample.py": [
        ("code", None, 1, 3),
        ("class", "Encoder", 6, 9),
        ("method", "Encoder.__init__", 11, 12),
        ("method", "Encoder.encode_text", 14, 17),  # the decorator belongs to the method
        ("function", "make_encoder", 20, 22),  # the comment right above belongs to the function
    ],
    "sample.js": [
        ("code", None, 1, 1),
        ("function", "readConfig", 3, 6),  # JSDoc + export
        ("code", None, 8, 8),  # a plain constant is not a definition
        ("definition", "double", 10, 10),  # an arrow function is
        ("class", "Cache", 12, 12),
        ("method", "Cache.constructor", 13, 15),
        ("method", "Cache.get", 17, 19),
    ],
    "sample.ts": [
        ("interface", "Point", 1, 4),
        ("type", "Pair", 6, 6),
        ("class", "Shape", 8, 8),
        ("method", "Shape.constructor", 9, 9),
        ("method", "Shape.area", 11, 13),
        ("function", "distance", 16, 18),
    ],
    "sample.go": [
        ("code", None, 1, 3),
        ("type", "Store", 5, 8),
        ("method", "Store.Get", 10, 17),  # receiver type prefixes the name
        ("function", "New", 19, 21),
    ],
    "sample.rs": [
        ("code", None, 1, 1),
        ("struct", "Store", 3, 7),  # doc comment and #[derive] belong to it
        ("impl", "Store", 9, 9),
        ("method", "Store.new", 10, 12),
        ("method", "Store.get", 14, 17),
        ("function", "total", 20, 22),
    ],
    "Sample.java": [
        ("code", None, 1, 3),
        ("class", "Sample", 5, 6),
        ("method", "Sample.Sample", 8, 10),
        ("method", "Sample.count", 12, 15),
    ],
    "sample.c": [
        ("code", None, 1, 1),
        ("struct", "point", 3, 6),
        ("function", "add", 8, 11),
        ("function", "main", 13, 16),
    ],
    "sample.cpp": [
        ("code", None, 1, 3),
        ("class", "geo.Polygon", 5, 6),  # namespaces prefix names
        ("method", "geo.Polygon.Polygon", 7, 7),
        ("method", "geo.Polygon.sides", 9, 11),
        ("class", "geo.Polygon", 13, 15),  # the fields after the last member
        ("code", None, 17, 17),
        ("function", "twice", 19, 22),  # template<…> belongs to it
    ],
    "sample.sh": [
        ("code", None, 1, 2),
        ("function", "greet", 4, 7),
        ("function", "cleanup", 9, 11),
        ("code", None, 13, 13),
    ],
    "guide.md": [
        ("section", None, 1, 1),
        ("section", "Install", 3, 5),
        ("section", "From source", 7, 9),
        ("section", "Usage", 11, 13),
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_boundaries_by_hand(name: str, offsets: Offsets) -> None:
    text = (DATA / name).read_text()
    result = split_text(text, name, offsets(text), ChunkLimits())
    assert [(c.kind, c.name, c.start_line, c.end_line) for c in result.chunks] == EXPECTED[name]
    assert not result.syntax_errors
    for chunk in result.chunks:  # spans and line ranges agree, text is trimmed
        piece = chunk.text_of(text)
        assert piece == piece.strip()
        assert text.count("\n", 0, chunk.start) + 1 == chunk.start_line
        assert text.count("\n", 0, chunk.end - 1) + 1 == chunk.end_line


def test_markdown_heading_path(offsets: Offsets) -> None:
    text = (DATA / "guide.md").read_text()
    chunks = split_text(text, "guide.md", offsets(text), ChunkLimits()).chunks
    assert chunks[2].extra["headings"] == ["Install", "From source"]
    assert chunks[3].extra["headings"] == ["Usage"]
    assert chunks[2].info()["lines"] == [7, 9]


def test_syntax_error_falls_back_to_line_windows(offsets: Offsets) -> None:
    text = (DATA / "broken.py").read_text()
    result = split_text(text, "broken.py", offsets(text), ChunkLimits(window_lines=3))
    assert result.syntax_errors
    assert (result.chunks[0].kind, result.chunks[0].name) == ("function", "good")
    rest = result.chunks[1:]
    assert {c.kind for c in rest} == {"lines"}
    assert rest[0].start_line == 5
    assert rest[-1].end_line == 10
    assert all(c.end_line - c.start_line < 3 for c in rest)


def test_long_function_is_cut_at_line_ends_under_the_cap(offsets: Offsets, tokenizer: object) -> None:
    body = "".join(f"    value_{i} = compute_something(value_{i - 1}, {i})\n" for i in range(1, 200))
    text = f"def long_function(value_0):\n{body}    return value_199\n"
    limits = ChunkLimits(max_tokens=128)
    chunks = split_text(text, "long.py", offsets(text), limits).chunks
    assert len(chunks) > 5
    assert {(c.kind, c.name) for c in chunks} == {("function", "long_function")}
    assert [c.part for c in chunks] == list(range(1, len(chunks) + 1))
    for a, b in itertools.pairwise(chunks):
        assert b.start_line == a.end_line + 1  # cut at line ends, nothing lost
    for chunk in chunks:
        assert len(offsets(chunk.text_of(text))) <= limits.max_tokens + 2  # retokenized alone: boundary slack


def test_one_million_character_line(offsets: Offsets) -> None:
    text = "x = '" + "ab" * 500_000 + "'\n"
    chunks = split_text(text, "huge.py", offsets(text), ChunkLimits(max_tokens=4096)).chunks
    assert len(chunks) > 1
    assert all(c.start_line == 1 and c.end_line == 1 for c in chunks)
    assert "".join(c.text_of(text) for c in chunks) == text.strip()  # contiguous: nothing dropped


def test_unknown_language_gets_line_windows(offsets: Offsets) -> None:
    text = "".join(f"row {i}\n" for i in range(100))
    result = split_text(text, "data.xyz", offsets(text), ChunkLimits(window_lines=40))
    assert result.language == "unknown"
    assert [(c.start_line, c.end_line) for c in result.chunks] == [(1, 40), (41, 80), (81, 100)]


def test_plain_text_paragraphs_packed(offsets: Offsets) -> None:
    paragraphs = [" ".join(f"word{i}_{j}" for j in range(30)) for i in range(12)]
    text = "\n\n".join(paragraphs) + "\n"
    chunks = split_text(text, "notes.txt", offsets(text), ChunkLimits(max_tokens=200)).chunks
    assert len(chunks) > 1
    for chunk in chunks:  # every cut falls between paragraphs
        assert chunk.text_of(text).startswith("word")
        assert chunk.text_of(text).split()[-1].startswith("word")
        assert text[chunk.start - 2 : chunk.start] in ("\n\n", "")


def test_language_table() -> None:
    assert language_of("a/b/c.PY") == "python"
    assert language_of("x.tsx") == "tsx"
    assert language_of("lib.rs") == "rust"
    assert language_of("Makefile") == "text"
    assert language_of("photo.png") is None
