"""The filter syntax and its reference semantics (:func:`colbert.filters.matches`), which both backends
implement; malformed filters are typed errors naming the problem."""

from __future__ import annotations

from typing import Any

import pytest

from colbert.errors import InvalidFilterError
from colbert.filters import matches, parse_filter

META: dict[str, dict[str, Any]] = {
    "a": {"lang": "en", "year": 2019, "tags": ["x", "y"], "score": 0.5, "draft": True},
    "b": {"lang": "de", "year": 2021, "tags": ["y"], "score": 1.5, "owner": None},
    "c": {"lang": "en", "year": 2024, "tags": [], "owner": "ann"},
    "d": {"lang": "fr", "year": "2022", "draft": False, "owner": "bob"},
    "e": {"lang": "en", "year": 2023.5, "tags": "x", "n": 1},
    "f": {"n": True},
}

CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({"lang": "en"}, {"a", "c", "e"}),
    ({"lang": {"$eq": "en"}}, {"a", "c", "e"}),
    ({"lang": {"$ne": "en"}}, {"b", "d", "f"}),  # a missing key passes $ne
    ({"lang": {"$in": ["de", "fr"]}}, {"b", "d"}),
    ({"tags": "x"}, {"a", "e"}),  # a list matches by any element; a scalar by itself
    ({"tags": {"$ne": "y"}}, {"c", "d", "e", "f"}),
    ({"tags": {"$in": ["y", "z"]}}, {"a", "b"}),
    ({"year": {"$gte": 2021}}, {"b", "c", "e"}),  # "2022" (a string) never satisfies a range
    ({"year": {"$gt": 2019, "$lt": 2024}}, {"b", "e"}),
    ({"year": {"$lte": 2019}}, {"a"}),
    ({"score": {"$gt": 1}}, {"b"}),
    ({"n": 1}, {"e"}),  # 1 is not true
    ({"n": True}, {"f"}),
    ({"n": {"$gte": 1}}, {"e"}),  # true is not a number
    ({"owner": {"$exists": True}}, {"c", "d"}),  # null does not count as present
    ({"owner": {"$exists": False}}, {"a", "b", "e", "f"}),
    ({"tags": {"$exists": False}}, {"c", "d", "f"}),  # [] counts as absent
    ({"draft": {"$ne": True}, "lang": "en"}, {"c", "e"}),
    ({"lang": "en", "year": {"$gte": 2020}, "tags": {"$exists": True}}, {"e"}),
]


@pytest.mark.parametrize(("flt", "want"), CASES, ids=[str(c[0]) for c in CASES])
def test_reference_semantics(flt: dict[str, Any], want: set[str]) -> None:
    assert {d for d, m in META.items() if matches(parse_filter(flt), m)} == want


MALFORMED: list[tuple[Any, str]] = [
    ({"year": {"$gte": "2020"}}, "needs a finite number"),
    ({"year": {"$gt": True}}, "needs a finite number"),
    ({"year": {"$lt": float("nan")}}, "needs a finite number"),
    ({"tag": {"$in": []}}, r"needs a list of 1\.\.1024"),
    ({"tag": {"$in": "x"}}, "needs a list"),
    ({"tag": {"$in": [1.5]}}, "must be a str, int or bool"),
    ({"tag": {"$regex": "x"}}, "unknown filter operator '\\$regex'"),
    ({"tag": {}}, "empty object"),
    ({"tag": {"$exists": 1}}, "needs true or false"),
    ({"score": 0.5}, "use a range"),
    ({"a.b": 1}, "filter key must match"),
    (["lang", "en"], "must be a JSON object"),
]


@pytest.mark.parametrize(("flt", "message"), MALFORMED, ids=[m for _, m in MALFORMED])
def test_malformed_filters_are_typed_errors(flt: Any, message: str) -> None:
    with pytest.raises(InvalidFilterError, match=message):
        parse_filter(flt)
