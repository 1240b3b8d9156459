"""Search modes and the hybrid ranking rule shared by both backends.

* ``visual`` — the first stage (dense cosine or pooled sketches) picks ``candidates`` units, exact MaxSim ranks
  them (the original path). Signals: ``visual`` (first-stage score) and ``maxsim``.
* ``text`` — BM25 over the units' text (:mod:`colbert.text` tokens; FTS5 or Qdrant sparse+IDF). Signal: ``text``.
  Units without text are never returned.
* ``hybrid`` — the BM25 top-``candidates`` and the visual first stage's top-``candidates`` (each with the filter
  applied inside it), exact MaxSim over their union, then the final score fuses the BM25 scores with the MaxSim
  scores (:mod:`colbert.fusion`; a min-max normalised weighted sum by default, or RRF of the ranks). Every hit says
  which signals found it: ``text`` and/or ``visual`` (each with its score and 1-based rank in its own candidate
  list), and its ``maxsim`` score and rank within the union.

:func:`fuse` is the backend-independent last step: backends supply the three score maps keyed by their own unit
ids.

>>> text, visual, maxsim = {"a": 9.0, "b": 4.0}, {"b": 0.8, "c": 0.7}, {"a": 3.0, "b": 5.0, "c": 4.0}
>>> [(u, round(s, 5), sorted(sig)) for u, s, sig in fuse(text, visual, maxsim, 3, Fusion("rrf"))]
[('b', 0.01626, ['maxsim', 'text', 'visual']), ('a', 0.01613, ['maxsim', 'text']), ('c', 0.00806, ['maxsim', 'visual'])]

(RRF with the default ``text_weight`` 0.5: each list's reciprocal ranks count half.)

Weighted (the default): text normalised a=1, b=0; MaxSim a=0, b=1, c=0.5; text_weight 0.3 gives
a = 0.3, b = 0.7, c = 0.35:

>>> [(u, round(s, 5)) for u, s, _ in fuse(text, visual, maxsim, 3, Fusion("weighted", text_weight=0.3))]
[('b', 0.7), ('c', 0.35), ('a', 0.3)]
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from colbert.errors import InvalidQueryError
from colbert.fusion import DEFAULT_RRF_K, ranks, rrf, weighted_sum
from colbert.text import query_terms

__all__ = ["Fusion", "SearchMode", "Signal", "check_query_text", "fuse", "parse_mode", "signals_of"]

K = TypeVar("K", bound=Hashable)


class SearchMode(enum.StrEnum):
    VISUAL = "visual"
    TEXT = "text"
    HYBRID = "hybrid"


@dataclass(frozen=True)
class Signal:
    """One signal's view of a hit: its score and its 1-based rank among that signal's candidates."""

    score: float
    rank: int


@dataclass(frozen=True)
class Fusion:
    """How ``hybrid`` fuses the BM25 and MaxSim rankings: ``weighted`` (the default: each list min-max normalised)
    or ``rrf`` (reciprocal ranks, constant ``k``). ``text_weight`` has one meaning in both: the share of BM25 in
    the fused score, in 0..1 (default 0.5); MaxSim gets ``1 - text_weight``. docs/collections.md#search-modes
    has the measurements behind the default."""

    method: str = "weighted"
    k: int = DEFAULT_RRF_K
    text_weight: float = 0.5

    def __post_init__(self) -> None:
        if self.method not in ("rrf", "weighted"):
            raise InvalidQueryError(f"fusion must be 'rrf' or 'weighted', got {self.method!r}")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise InvalidQueryError(f"the RRF constant k must be an int >= 1, got {self.k!r}")
        w = self.text_weight
        if isinstance(w, bool) or not isinstance(w, int | float) or not 0.0 <= w <= 1.0:
            raise InvalidQueryError(
                f"text_weight must be a number in 0..1 (the share of BM25 in the fused score), got {w!r:.40}"
            )

    @property
    def weights(self) -> dict[str, float]:
        """The weight of each fused list."""
        return {"text": float(self.text_weight), "maxsim": 1.0 - float(self.text_weight)}


def parse_mode(mode: object) -> SearchMode:
    """``mode`` as a :class:`SearchMode`; ``InvalidQueryError`` naming the accepted values."""
    try:
        return SearchMode(str(mode)) if isinstance(mode, str) else SearchMode(mode)  # type: ignore[arg-type]
    except ValueError:
        raise InvalidQueryError(
            f"mode must be one of {', '.join(m.value for m in SearchMode)}, got {mode!r:.40}"
        ) from None


def check_query_text(query_text: object, max_terms: int) -> str:
    """The query text of a text/hybrid search; ``InvalidQueryError`` when missing or with too many terms."""
    if not isinstance(query_text, str) or not query_text.strip():
        raise InvalidQueryError("modes 'text' and 'hybrid' need query_text: a non-empty string of words")
    n = len(query_terms(query_text))
    if n > max_terms:
        raise InvalidQueryError(f"query_text has {n} distinct words, at most {max_terms} are searched: shorten it")
    return query_text


def signals_of(**lists: Mapping[K, float]) -> dict[K, dict[str, Signal]]:
    """Per unit, each named signal's score and rank (only the signals whose list holds the unit)."""
    out: dict[K, dict[str, Signal]] = {}
    for name, scores in lists.items():
        for unit, rank in ranks(scores).items():
            out.setdefault(unit, {})[name] = Signal(float(scores[unit]), rank)
    return out


def fuse(
    text: Mapping[K, float], visual: Mapping[K, float], maxsim: Mapping[K, float], k: int, fusion: Fusion
) -> list[tuple[K, float, dict[str, Signal]]]:
    """The hybrid top-``k``: (unit, fused score, signals), best first. ``maxsim`` must cover every unit of
    ``text`` and ``visual`` that still exists (their union is what was reranked)."""
    lists = {"text": text, "maxsim": maxsim}
    weights = fusion.weights
    fused = rrf(lists, weights, k=fusion.k) if fusion.method == "rrf" else weighted_sum(lists, weights)
    signals = signals_of(text=text, visual=visual, maxsim=maxsim)
    return [(unit, score, signals[unit]) for unit, score in fused[:k] if unit in signals]
