"""Metadata filters: one syntax, parsed and validated once, the same meaning on every backend.

A filter is a JSON object of conditions on top-level keys of the *document* metadata, all of which must hold::

    {"lang": "en",                       # equality (str, int or bool; 1 does not match true)
     "year": {"$gte": 2020, "$lt": 2025}, # numeric ranges: $gt $gte $lt $lte (int or float)
     "tag": {"$in": ["a", "b"]},          # equal to any of a non-empty list
     "draft": {"$ne": true},              # not equal (a document without the key matches)
     "owner": {"$exists": true}}          # the key is present with a value other than null and []

Several operators under one key are ANDed. Semantics shared by both backends (the contract suite checks them):

* A metadata value that is a **list** matches equality/``$in``/ranges if **any element** does (as in Qdrant
  and MongoDB); ``$ne`` holds when **no** element equals the value.
* Ranges compare numbers only (a string or bool value never satisfies a range; ``true`` is not ``1``).
* ``$exists: false`` matches a missing key, ``null`` and ``[]``; ``$exists: true`` the rest.
* Equality values may not be floats (exact float equality is a trap: use a range).

A malformed filter is an :class:`~colbert.errors.InvalidFilterError` naming the key and what to send instead.

>>> parse_filter({"year": {"$gte": 2020}, "lang": "en"}).conditions
(Condition(key='year', op='$gte', value=2020), Condition(key='lang', op='$eq', value='en'))
>>> matches(parse_filter({"tag": {"$in": ["x"]}, "n": {"$lt": 3}}), {"tag": ["y", "x"], "n": 2.5})
True
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from colbert.errors import InvalidFilterError

__all__ = [
    "CONDITION_SCHEMA",
    "KEY_SCHEMA",
    "OPERATORS",
    "Condition",
    "MetadataFilter",
    "Scalar",
    "matches",
    "parse_filter",
]

Scalar = str | int | bool
OPERATORS: Final = ("$eq", "$ne", "$in", "$gt", "$gte", "$lt", "$lte", "$exists")
RANGE_OPS: Final = ("$gt", "$gte", "$lt", "$lte")
MAX_IN_VALUES: Final = 1024
_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]{0,127}$")
_INT64 = (-(2**63), 2**63 - 1)  # what SQLite and Qdrant store as an integer; a larger one cannot be compared

# The same language as JSON Schema (the API's OpenAPI states it: service.http.openapi_rules): a key, and what a
# key may be given (a scalar, or an object of operators and their values).
KEY_SCHEMA: Final = {"pattern": _KEY.pattern, "maxLength": 128}
_SCALAR = {
    "anyOf": [{"type": "string"}, {"type": "boolean"}, {"type": "integer", "minimum": _INT64[0], "maximum": _INT64[1]}]
}
_NUMBER = {"type": "number", "minimum": _INT64[0], "maximum": _INT64[1]}
_OPERATOR_SCHEMAS = {
    "$eq": _SCALAR,
    "$ne": _SCALAR,
    "$in": {"type": "array", "items": _SCALAR, "minItems": 1, "maxItems": MAX_IN_VALUES},
    **dict.fromkeys(("$gt", "$gte", "$lt", "$lte"), _NUMBER),
    "$exists": {"type": "boolean"},
}
CONDITION_SCHEMA: Final = {
    "anyOf": [
        _SCALAR,
        {"type": "object", "properties": _OPERATOR_SCHEMAS, "additionalProperties": False, "minProperties": 1},
    ]
}


def _int64(key: str, value: int, where: str) -> None:
    if not _INT64[0] <= value <= _INT64[1]:
        raise InvalidFilterError(
            f"filter {where} for {key!r}: a {value.bit_length()}-bit integer is outside the 64-bit range "
            "[-2**63, 2**63 - 1]; send an integer within it (a range also takes a float)"
        )


@dataclass(frozen=True)
class Condition:
    """One check on one key: ``op`` in :data:`OPERATORS`; value a scalar, a tuple of scalars ($in), a number
    (ranges) or a bool ($exists)."""

    key: str
    op: str
    value: Any


@dataclass(frozen=True)
class MetadataFilter:
    """All ``conditions`` must hold (empty: everything matches)."""

    conditions: tuple[Condition, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.conditions)


def _scalar(key: str, value: object, where: str) -> Scalar:
    if isinstance(value, str | bool | int):
        if isinstance(value, int) and not isinstance(value, bool):
            _int64(key, value, where)
        return value
    kind = type(value).__name__
    hint = ' (floats: use a range such as {"$gte": x, "$lte": x})' if isinstance(value, float) else ""
    raise InvalidFilterError(f"filter {where} for {key!r} must be a str, int or bool, got {kind}{hint}")


def _number(key: str, op: str, value: object) -> int | float:
    if isinstance(value, int) and not isinstance(value, bool):
        _int64(key, value, op)  # first: math.isfinite cannot convert a huge int to a float
        return value
    if not isinstance(value, float) or not math.isfinite(value):
        raise InvalidFilterError(f"filter {op} for {key!r} needs a finite number, got {value!r:.60}")
    return value


def _operator(key: str, op: str, value: object) -> Condition:
    if op == "$eq" or op == "$ne":
        return Condition(key, op, _scalar(key, value, f"{op} value"))
    if op == "$in":
        if not isinstance(value, list | tuple) or not 1 <= len(value) <= MAX_IN_VALUES:
            raise InvalidFilterError(
                f"filter $in for {key!r} needs a list of 1..{MAX_IN_VALUES} str/int/bool values, got {value!r:.60}"
            )
        return Condition(key, op, tuple(_scalar(key, v, "$in value") for v in value))
    if op in RANGE_OPS:
        return Condition(key, op, _number(key, op, value))
    if op == "$exists":
        if not isinstance(value, bool):
            raise InvalidFilterError(f"filter $exists for {key!r} needs true or false, got {value!r:.60}")
        return Condition(key, op, value)
    raise InvalidFilterError(f"unknown filter operator {op!r} for {key!r}: expected one of {', '.join(OPERATORS)}")


def parse_filter(filter: Mapping[str, Any] | MetadataFilter | None) -> MetadataFilter:
    """Validate ``filter`` (module syntax) once; the result is what backends translate."""
    if filter is None:
        return MetadataFilter()
    if isinstance(filter, MetadataFilter):
        return filter
    if not isinstance(filter, Mapping):
        raise InvalidFilterError(f"filter must be a JSON object of key -> condition, got {type(filter).__name__}")
    out: list[Condition] = []
    for key, cond in filter.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):  # fullmatch: $ also matches before a final \n
            raise InvalidFilterError(
                f"filter key must match {_KEY.pattern} (a top-level metadata key), got {key!r:.80}"
            )
        if isinstance(cond, Mapping):
            if not cond:
                raise InvalidFilterError(f"filter for {key!r} is an empty object: give an operator such as $eq")
            for op, value in cond.items():
                out.append(_operator(key, str(op), value))
        else:
            out.append(Condition(key, "$eq", _scalar(key, cond, "value")))
    return MetadataFilter(tuple(out))


def _equal(a: object, b: Scalar) -> bool:
    return type(a) is type(b) and a == b


def _holds(cond: Condition, present: bool, value: Any) -> bool:
    items = value if isinstance(value, list) else [value]
    if cond.op == "$exists":
        return bool(cond.value) == (present and value is not None and value != [])
    if cond.op == "$ne":
        return not (present and any(_equal(v, cond.value) for v in items))
    if not present:
        return False
    if cond.op == "$eq":
        return any(_equal(v, cond.value) for v in items)
    if cond.op == "$in":
        return any(_equal(v, c) for v in items for c in cond.value)
    numbers = [v for v in items if isinstance(v, int | float) and not isinstance(v, bool)]
    test = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}[cond.op]
    return any(bool(test(v, cond.value)) for v in numbers)


def matches(filter: MetadataFilter, metadata: Mapping[str, Any]) -> bool:
    """Whether ``metadata`` satisfies ``filter`` (the reference semantics the backends implement)."""
    return all(_holds(c, c.key in metadata, metadata.get(c.key)) for c in filter.conditions)
