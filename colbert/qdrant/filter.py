"""A parsed :class:`colbert.filters.MetadataFilter` as a Qdrant ``Filter`` on ``metadata.<key>`` payload fields.

Qdrant's own semantics line up with ours (:mod:`colbert.filters`): a list value matches a condition if any
element does; ``must_not`` a match holds for a missing key; ``IsEmpty`` matches a missing key, ``null`` and
``[]``. ``$in`` is a nested ``should`` of exact matches (``MatchAny`` cannot mix strings, ints and bools).
"""

from __future__ import annotations

from qdrant_client import models as qm

from colbert.filters import Condition, MetadataFilter

__all__ = ["qdrant_filter"]


def _field(key: str) -> str:
    return f"metadata.{key}"


def _match(key: str, value: str | int | bool) -> qm.FieldCondition:
    return qm.FieldCondition(key=_field(key), match=qm.MatchValue(value=value))


def _range(cond: Condition) -> qm.FieldCondition:
    bound = {cond.op[1:]: float(cond.value)}
    return qm.FieldCondition(key=_field(cond.key), range=qm.Range(**bound))


def qdrant_filter(flt: MetadataFilter, extra: list[qm.Condition] | None = None) -> qm.Filter | None:
    """The Qdrant filter of ``flt`` ANDed with ``extra`` conditions (None when there is nothing to filter)."""
    must: list[qm.Condition] = list(extra or [])
    must_not: list[qm.Condition] = []
    for cond in flt.conditions:
        if cond.op == "$eq":
            must.append(_match(cond.key, cond.value))
        elif cond.op == "$ne":
            must_not.append(_match(cond.key, cond.value))
        elif cond.op == "$in":
            must.append(qm.Filter(should=[_match(cond.key, v) for v in cond.value]))
        elif cond.op == "$exists":
            empty = qm.IsEmptyCondition(is_empty=qm.PayloadField(key=_field(cond.key)))
            (must_not if cond.value else must).append(empty)
        else:
            must.append(_range(cond))
    if not must and not must_not:
        return None
    return qm.Filter(must=must or None, must_not=must_not or None)
