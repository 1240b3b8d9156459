"""The full-text tokeniser and the fusion functions (their worked examples run as doctests here too)."""

from __future__ import annotations

import doctest

import pytest

import colbert.filters
import colbert.hybrid
import colbert.text
from colbert.hybrid import ranks, rrf, weighted_sum
from colbert.text import MAX_TOKEN_CHARS, query_terms, term_counts, tokens


@pytest.mark.parametrize("module", [colbert.text, colbert.hybrid, colbert.filters])
def test_worked_examples(module: object) -> None:
    result = doctest.testmod(module, raise_on_error=False)  # type: ignore[arg-type]
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize(
    ("query", "want"),
    [
        ('"unbalanced quote', ["unbalanced", "quote"]),
        ("error NEAR/3 code", ["error", "near", "3", "code"]),
        ("pay* -refund", ["pay", "refund"]),
        ("((a OR b) AND", ["a", "or", "b", "and"]),
        ("col:value ^start", ["col", "value", "start"]),
        ("'; DROP TABLE pages; --", ["drop", "table", "pages"]),
        ("***", []),
        ("", []),
    ],
)
def test_fts5_syntax_is_plain_words(query: str, want: list[str]) -> None:
    assert query_terms(query) == want


def test_identifiers_find_each_other() -> None:
    snake = set(tokens("def parse_page_selection(spec):"))
    camel = set(tokens("parsePageSelection(spec)"))
    pascal = set(tokens("ParsePageSelection"))
    assert {"parse", "page", "selection", "parsepageselection"} <= snake & camel & pascal
    assert tokens("HTTPServer") == ["http", "server", "httpserver"]
    assert tokens("utf8Decode X7200B v4") == ["utf8", "decode", "utf8decode", "x7200b", "v4"]
    assert tokens("__init__ a__b") == ["init", "a", "b", "ab"]


def test_normalisation() -> None:
    assert tokens("ＡＢＣ ﬁle Café São Ñandú") == ["abc", "file", "cafe", "sao", "nandu"]
    assert tokens("日本語です") == ["日", "本", "語", "で", "す"]
    assert tokens("नमस्ते") == ["नमस्ते"]  # marks of other scripts are part of the word
    assert tokens("x" * MAX_TOKEN_CHARS + " " + "y" * (MAX_TOKEN_CHARS + 1)) == ["x" * MAX_TOKEN_CHARS]
    assert term_counts("the cat the hat") == {"the": 2, "cat": 1, "hat": 1}


def test_ranks_and_fusion_edges() -> None:
    assert ranks({}) == {}
    assert rrf({}) == []
    assert rrf({"text": {"a": 1.0}}, k=1) == [("a", 0.5)]
    with pytest.raises(ValueError, match="k must be >= 1"):
        rrf({"text": {"a": 1.0}}, k=0)
    # a weight scales a signal's contribution; equal scores in one list all normalise to 1
    assert rrf({"t": {"a": 1.0}, "v": {"b": 1.0}}, {"t": 2.0}) == [("a", 2 / 61), ("b", 1 / 61)]
    assert weighted_sum({"t": {"a": 3.0, "b": 3.0}}) == [("a", 1.0), ("b", 1.0)]
    assert weighted_sum({"t": {}, "v": {"x": 1.0}}) == [("x", 0.5)]
