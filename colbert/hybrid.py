"""Search modes, the hybrid ranking rule shared by both backends, and the fusion methods it uses.

* ``visual`` — the first stage (dense cosine or pooled sketches) picks ``candidates`` units, exact MaxSim ranks
  them (the original path). Signals: ``visual`` (first-stage score) and ``maxsim``.
* ``text`` — BM25 over the units' text (:mod:`colbert.text` tokens; FTS5 or Qdrant sparse+IDF). Signal: ``text``.
  Units without text are never returned.
* ``hybrid`` — the BM25 top-``candidates`` and the visual first stage's top-``candidates`` (each with the filter
  applied inside it), exact MaxSim over their union, then the final score fuses the BM25 scores with the MaxSim
  scores (a min-max normalised weighted sum by default, or RRF of the ranks: the fusion methods below). Every
  hit says which signals found it: ``text`` and/or ``visual`` (each with its score and 1-based rank in its own candidate
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

**The fusion methods.**

Two methods, both small pure functions over ``{item: score}`` maps (higher is better in every input):

* :func:`rrf` — reciprocal-rank fusion (Cormack et al. 2009): ``sum_s weight_s / (k + rank_s)``, ranks from 1,
  an item missing from a signal contributing nothing for it. Scale-free: BM25 scores (unbounded, query-dependent)
  and MaxSim scores (sums of cosines) need no calibration; ``k = 60`` as in the paper and in Qdrant,
  Elasticsearch and LightOn's next-plaid.
* :func:`weighted_sum` — min-max normalise each signal over its own list to [0, 1], then ``sum_s weight_s ·
  norm_s`` (missing: 0). Uses the score gaps that RRF discards; sensitive to outliers in either list. **The
  default** of hybrid search (``JEV4_SEARCH_FUSION=weighted``; see docs/collections.md for the evaluation behind
  the choice).

Ties in the fused score are broken by the item itself (ascending), so results are deterministic.

Worked example (ranks: a is 1st by text, 2nd by visual; b is 2nd / 1st; c only visual, 3rd)::

    rrf(a) = 1/(60+1) + 1/(60+2) = 0.0163934 + 0.0161290 = 0.0325225
    rrf(b) = 1/(60+2) + 1/(60+1)                         = 0.0325225   (tie: "a" < "b")
    rrf(c) =            1/(60+3)                         = 0.0158730

>>> text = {"a": 12.0, "b": 7.5}
>>> visual = {"b": 0.91, "a": 0.80, "c": 0.42}
>>> [(item, round(score, 7)) for item, score in rrf({"text": text, "visual": visual})]
[('a', 0.0325225), ('b', 0.0325225), ('c', 0.015873)]

Weighted sum of the same lists (text normalised: a 1.0, b 0.0; visual: b 1.0, a (0.80-0.42)/0.49, c 0.0)::

>>> [(item, round(score, 4)) for item, score in weighted_sum({"text": text, "visual": visual}, {"text": 0.5})]
[('a', 0.8878), ('b', 0.5), ('c', 0.0)]
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Final, TypeVar

from colbert.errors import InvalidQueryError

__all__ = [
    "DEFAULT_RRF_K",
    "FIRST_STAGES",
    "Fusion",
    "SearchMode",
    "Signal",
    "fuse",
    "ranks",
    "rrf",
    "signals_of",
    "weighted_sum",
]

K = TypeVar("K", bound=Hashable)
DEFAULT_RRF_K: Final = 60
# how the visual side picks its candidates (SearchOptions.first_stage); here, not in colbert.search, so that the
# settings check can read the names without importing the codecs (and torch)
FIRST_STAGES: Final = ("dense", "pooled", "ivf", "pooled_ivf")


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


def ranks(scores: Mapping[K, float]) -> dict[K, int]:
    """1-based rank of each item, best score first (ties: the smaller item first).

    >>> ranks({"x": 0.5, "y": 2.0, "z": 0.5})
    {'y': 1, 'x': 2, 'z': 3}
    """
    order = sorted(scores, key=lambda item: (-scores[item], item))
    return {item: i + 1 for i, item in enumerate(order)}


def _sorted(fused: dict[K, float]) -> list[tuple[K, float]]:
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))


def rrf(
    signals: Mapping[str, Mapping[K, float]], weights: Mapping[str, float] | None = None, *, k: int = DEFAULT_RRF_K
) -> list[tuple[K, float]]:
    """Reciprocal-rank fusion of ``signals`` (name -> {item: score}); ``weights`` default to 1 per signal."""
    if k < 1:
        raise ValueError(f"the RRF constant k must be >= 1, got {k}")
    fused: dict[K, float] = {}
    for name, scores in signals.items():
        w = 1.0 if weights is None else float(weights.get(name, 1.0))
        for item, rank in ranks(scores).items():
            fused[item] = fused.get(item, 0.0) + w / (k + rank)
    return _sorted(fused)


def weighted_sum(
    signals: Mapping[str, Mapping[K, float]], weights: Mapping[str, float] | None = None
) -> list[tuple[K, float]]:
    """Min-max normalised weighted sum; a signal's weight defaults to ``1 - sum(given weights)`` shared evenly
    among the signals not given (so ``{"text": 0.3}`` over text+visual means 0.3 text, 0.7 visual)."""
    given = dict(weights or {})
    rest = [name for name in signals if name not in given]
    share = (1.0 - sum(given.values())) / len(rest) if rest else 0.0
    fused: dict[K, float] = {}
    for name, scores in signals.items():
        w = float(given.get(name, share))
        if not scores:
            continue
        lo, hi = min(scores.values()), max(scores.values())
        for item, s in scores.items():
            norm = (s - lo) / (hi - lo) if hi > lo else 1.0
            fused[item] = fused.get(item, 0.0) + w * norm
    for scores in signals.values():
        for item in scores:
            fused.setdefault(item, 0.0)
    return _sorted(fused)
