"""Retrieval metrics for :mod:`bench.eval`, as in BEIR / ``pytrec_eval`` (graded relevance, linear gain).

* ``ndcg(ranked, qrels, k)``: DCG@k = sum over the first k results of ``rel / log2(rank + 1)`` (rank from 1),
  divided by the DCG@k of the ideal ordering of the judged documents (0 when nothing is relevant).
* ``recall(ranked, qrels, k)``: relevant (rel > 0) documents in the first k / all relevant documents.
* ``mrr(ranked, qrels, k)``: 1 / rank of the first relevant result within the first k (0 if none).
* ``success(ranked, qrels, k)``: 1 when a relevant document is among the first k, else 0 (its mean is the
  "found in the top k" rate; ``success@3`` is what the code-search check of issue 16 reads).

Worked example: results ``[d3, d1, d9]``, judgements ``{d1: 2, d2: 1, d3: 0}``::

    DCG@3  = 0/log2(2) + 2/log2(3) + 0/log2(4)  = 1.2618595
    IDCG@3 = 2/log2(2) + 1/log2(3)              = 2.6309298
    nDCG@3 = 0.4796249;  recall@3 = 1/2;  MRR = 1/2;  success@1 = 0, success@3 = 1

>>> run, judged = ["d3", "d1", "d9"], {"d1": 2, "d2": 1, "d3": 0}
>>> round(ndcg(run, judged, 3), 7), recall(run, judged, 3), mrr(run, judged, 3)
(0.4796249, 0.5, 0.5)
>>> success(run, judged, 1), success(run, judged, 3)
(0.0, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["mean_metrics", "mrr", "ndcg", "recall", "success"]


def _dcg(gains: Sequence[float]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg(ranked: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    ideal = _dcg(sorted((g for g in qrels.values() if g > 0), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return _dcg([max(qrels.get(d, 0), 0) for d in ranked[:k]]) / ideal


def recall(ranked: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    relevant = {d for d, g in qrels.items() if g > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr(ranked: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    for i, d in enumerate(ranked[:k]):
        if qrels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def success(ranked: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    return 1.0 if any(qrels.get(d, 0) > 0 for d in ranked[:k]) else 0.0


def mean_metrics(
    runs: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]], recall_k: Sequence[int] = (10, 100)
) -> dict[str, float]:
    """Means over the judged queries (a judged query with no results scores 0) of nDCG@5/@10, recall@k, MRR@10
    and success@3."""
    queries = [q for q in qrels if any(g > 0 for g in qrels[q].values())]
    if not queries:
        raise ValueError("no query has a relevant document in the qrels")
    out: dict[str, float] = {}
    fns = {"ndcg@5": (ndcg, 5), "ndcg@10": (ndcg, 10), "mrr@10": (mrr, 10)}
    fns.update({f"recall@{k}": (recall, k) for k in recall_k})
    fns["success@3"] = (success, 3)
    for name, (fn, k) in fns.items():
        out[name] = sum(fn(runs.get(q, []), qrels[q], k) for q in queries) / len(queries)
    return out
