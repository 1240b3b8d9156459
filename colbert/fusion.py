"""Fusing ranked lists from several signals (full-text BM25, visual first stage, exact MaxSim) into one.

Two methods, both small pure functions over ``{item: score}`` maps (higher is better in every input):

* :func:`rrf` — reciprocal-rank fusion (Cormack et al. 2009): ``sum_s weight_s / (k + rank_s)``, ranks from 1,
  an item missing from a signal contributing nothing for it. Scale-free: BM25 scores (unbounded, query-dependent)
  and MaxSim scores (sums of cosines) need no calibration. ``k = 60`` as in the paper and in Qdrant,
  Elasticsearch and LightOn's next-plaid. Hybrid search uses the weighted sum by default (docs/collections.md has
  the evaluation behind the choice).
* :func:`weighted_sum` — min-max normalise each signal over its own list to [0, 1], then ``sum_s weight_s ·
  norm_s`` (missing: 0). Uses the score gaps that RRF discards; sensitive to outliers in either list.

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

from collections.abc import Hashable, Mapping
from typing import Final, TypeVar

__all__ = ["DEFAULT_RRF_K", "ranks", "rrf", "weighted_sum"]

DEFAULT_RRF_K: Final = 60
T = TypeVar("T", bound=Hashable)


def ranks(scores: Mapping[T, float]) -> dict[T, int]:
    """1-based rank of each item, best score first (ties: the smaller item first).

    >>> ranks({"x": 0.5, "y": 2.0, "z": 0.5})
    {'y': 1, 'x': 2, 'z': 3}
    """
    order = sorted(scores, key=lambda item: (-scores[item], item))
    return {item: i + 1 for i, item in enumerate(order)}


def _sorted(fused: dict[T, float]) -> list[tuple[T, float]]:
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))


def rrf(
    signals: Mapping[str, Mapping[T, float]], weights: Mapping[str, float] | None = None, *, k: int = DEFAULT_RRF_K
) -> list[tuple[T, float]]:
    """Reciprocal-rank fusion of ``signals`` (name -> {item: score}); ``weights`` default to 1 per signal."""
    if k < 1:
        raise ValueError(f"the RRF constant k must be >= 1, got {k}")
    fused: dict[T, float] = {}
    for name, scores in signals.items():
        w = 1.0 if weights is None else float(weights.get(name, 1.0))
        for item, rank in ranks(scores).items():
            fused[item] = fused.get(item, 0.0) + w / (k + rank)
    return _sorted(fused)


def weighted_sum(
    signals: Mapping[str, Mapping[T, float]], weights: Mapping[str, float] | None = None
) -> list[tuple[T, float]]:
    """Min-max normalised weighted sum; a signal's weight defaults to ``1 - sum(given weights)`` shared evenly
    among the signals not given (so ``{"text": 0.3}`` over text+visual means 0.3 text, 0.7 visual)."""
    given = dict(weights or {})
    rest = [name for name in signals if name not in given]
    share = (1.0 - sum(given.values())) / len(rest) if rest else 0.0
    fused: dict[T, float] = {}
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
