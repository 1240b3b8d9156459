"""A parsed :class:`colbert.filters.MetadataFilter` as SQL over the embedded index's tables.

Each condition selects document ids; the page ids of the documents that pass every condition are returned.
Equality and ``$in`` use the indexed postings table ``doc_fields`` (one row per scalar value, and per scalar
element of a list value, as canonical JSON, so ``1`` and ``true`` stay distinct); ``$ne`` is its complement.
Ranges and ``$exists`` read the document's metadata JSON (``json_each`` over a list or a single value),
a scan over the documents table (documents, not pages).
"""

from __future__ import annotations

import json
from typing import Any

from colbert._validate import canonical_json
from colbert.filters import Condition, MetadataFilter

__all__ = ["doc_field_rows", "filter_docs_sql", "filter_sql"]

_SQL_OP = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_EXISTS = (
    "SELECT doc_id FROM documents WHERE json_type(metadata, ?) NOT IN ('null') "
    "AND NOT (json_type(metadata, ?) = 'array' AND json_array_length(metadata, ?) = 0)"
)


def _path(key: str) -> str:
    return '$."' + key + '"'  # keys match [A-Za-z0-9_][A-Za-z0-9_-]* (colbert.filters), no quoting needed


def _condition(cond: Condition) -> tuple[str, list[Any]]:
    if cond.op == "$eq":
        return "SELECT doc_id FROM doc_fields WHERE key = ? AND value = ?", [cond.key, canonical_json(cond.value)]
    if cond.op == "$in":
        values = json.dumps([canonical_json(v) for v in cond.value])
        return "SELECT doc_id FROM doc_fields WHERE key = ? AND value IN (SELECT value FROM json_each(?))", [
            cond.key,
            values,
        ]
    if cond.op == "$ne":
        return (
            "SELECT doc_id FROM documents EXCEPT SELECT doc_id FROM doc_fields WHERE key = ? AND value = ?",
            [cond.key, canonical_json(cond.value)],
        )
    path = _path(cond.key)
    if cond.op == "$exists":
        if cond.value:
            return _EXISTS, [path, path, path]
        return f"SELECT doc_id FROM documents EXCEPT {_EXISTS}", [path, path, path]
    sql = (
        "SELECT doc_id FROM documents WHERE json_type(metadata, ?) IN ('integer', 'real', 'array') AND EXISTS "
        f"(SELECT 1 FROM json_each(metadata, ?) j WHERE j.type IN ('integer', 'real') AND j.value {_SQL_OP[cond.op]} ?)"
    )
    return sql, [path, path, cond.value]


def filter_docs_sql(flt: MetadataFilter) -> tuple[str, list[Any]]:
    """SQL selecting the ids of the documents that pass every condition of a non-empty ``flt``."""
    parts = [_condition(c) for c in flt.conditions]
    sql = " INTERSECT ".join(f"SELECT * FROM ({p[0]})" for p in parts)
    return sql, [x for p in parts for x in p[1]]


def filter_sql(flt: MetadataFilter) -> tuple[str, list[Any]]:
    """SQL selecting ascending ids of the pages whose document passes every condition of a non-empty ``flt``."""
    docs, params = filter_docs_sql(flt)
    return f"SELECT id FROM pages WHERE doc_id IN ({docs}) ORDER BY id", params


def doc_field_rows(doc_id: str, metadata: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``doc_fields`` rows of a document: (key, canonical JSON value, doc_id) for each scalar and list element."""
    rows: set[tuple[str, str, str]] = set()
    for key, value in metadata.items():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str | int) and not isinstance(v, float):
                rows.add((key, canonical_json(v), doc_id))
    return sorted(rows)
