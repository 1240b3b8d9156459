"""Code search by identifier: the definition first, and a few chunks of one function at most.

Chunks of code carry their definition's name in their unit metadata (``name``: ``"Store.get"``, ``chunk_kind``:
``"method"``, ``part``: 1, 2, … when a long definition was cut). Two rules over a ranked list of such hits
(read with ``include_unit_metadata``), for a query that is one identifier:

* **Definition first.** A hit whose own name is the query — the whole name, or its last dotted part
  (``get`` finds ``Store.get``; ``Store.get`` finds it too) — and whose kind is a definition moves ahead of the
  hits that merely mention the identifier (callers, imports, re-exports rank high on BM25 and MaxSim alike).
  Order among the moved hits, and among the rest, is kept; scores are not changed, and a moved hit carries the
  signal ``definition`` (score 1, its rank among the moved hits).
* **At most ``max_per_span`` chunks of one definition** (one name in one document; chunks without a name count
  per document) in the top ``k``: the parts of one long function no longer fill the whole top 3. The chunks
  left out make room for the next hits.

A query that is not one identifier (``"parse the header"``) is only capped, never reordered.

>>> from colbert.store import Hit
>>> def chunk(doc, name, kind="function", score=1.0):
...     return Hit(doc, 0, score, {}, "chunk", unit_metadata={"name": name, "chunk_kind": kind})
>>> hits = [chunk("a/__init__.py", None, "code"), chunk("a/cli.py", "main"), chunk("a/util.py", "get_app_dir")]
>>> [h.doc_id for h in rank_definitions(hits, "get_app_dir", 3)]
['a/util.py', 'a/__init__.py', 'a/cli.py']
>>> parts = [chunk("a.py", "long", score=s) for s in (3, 2, 1)] + [chunk("b.py", "other", score=0.5)]
>>> [(h.doc_id, h.score) for h in rank_definitions(parts, "anything else", 3, max_per_span=2)]
[('a.py', 3), ('a.py', 2), ('b.py', 0.5)]
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Final

from colbert.hybrid import Signal
from colbert.store import Hit

__all__ = ["DEFINITION_KINDS", "identifier", "rank_definitions"]

DEFINITION_KINDS: Final = frozenset(
    {"function", "method", "class", "struct", "enum", "interface", "trait", "impl", "type", "definition", "macro"}
)
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:(?:\.|::)[A-Za-z_$][A-Za-z0-9_$]*)*")


def identifier(query: str | None) -> str | None:
    """The query as one identifier (``get_app_dir``, ``Store.get``, ``fmt::Display``), None when it is not one.

    >>> identifier(" get_app_dir "), identifier("Store.get"), identifier("get the dir"), identifier("x()")
    ('get_app_dir', 'Store.get', None, None)
    """
    text = (query or "").strip()
    return text if _IDENTIFIER.fullmatch(text) else None


def _last(name: str) -> str:
    return re.split(r"\.|::", name)[-1]


def _defines(hit: Hit, ident: str) -> bool:
    meta = hit.unit_metadata or {}
    name, kind = meta.get("name"), meta.get("chunk_kind")
    if not isinstance(name, str) or kind not in DEFINITION_KINDS:
        return False
    return name == ident or _last(name) == _last(ident)


def _span(hit: Hit) -> tuple[str, str | None]:
    name = (hit.unit_metadata or {}).get("name")
    return hit.doc_id, name if isinstance(name, str) else None


def rank_definitions(hits: Sequence[Hit], query: str | None, k: int, max_per_span: int | None = None) -> list[Hit]:
    """The top ``k`` of ``hits`` (best first) under the two rules of the module docstring; ``max_per_span``
    None or 0: no cap. Hits need their unit metadata (``include_unit_metadata``); hits without it are kept
    where they are."""
    ident = identifier(query)
    ordered = list(hits)
    if ident is not None:
        first = [h for h in ordered if _defines(h, ident)]
        first = [replace(h, signals={**h.signals, "definition": Signal(1.0, i + 1)}) for i, h in enumerate(first)]
        ordered = first + [h for h in ordered if not _defines(h, ident)]
    if not max_per_span:
        return ordered[:k]
    taken: Counter[tuple[str, str | None]] = Counter()
    out = []
    for hit in ordered:
        span = _span(hit)
        if taken[span] >= max_per_span:
            continue
        taken[span] += 1
        out.append(hit)
        if len(out) == k:
            break
    return out
