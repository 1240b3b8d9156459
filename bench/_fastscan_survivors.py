"""Fast-scan pruning on structured synthetic pages (:mod:`bench._synthetic`), for ``bench/codec_speed.py``.

Per compact codec: the pages of ``Corpus(vectors=ld)`` encoded as the embedded index stores them (residual codecs:
a codebook trained on the pages with the index's default K), queries drawn from pages. Each query's top-``k`` is
searched through the index's own :class:`colbert.local.scan.PageScorer` (blocks of 128 pages, as the index reads
them), once with the fast scan off and once on, in two scenarios: **exhaustive** (every page) and **rerank** (the
``candidates`` best pages by exact score, in id order: the hardest case for pruning, every candidate strong). Printed:
the fraction of pages the exact kernel still scored (survivors: mean, min, max over the queries), and the CPU
seconds of both searches (process time, all threads, best of 3) with their ratio. The answers must be equal bit for
bit (checked; a difference aborts the run).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from unittest import mock

import numpy as np

from bench._synthetic import Corpus
from colbert.search import DEFAULT_CANDIDATES

__all__ = ["report"]

BLOCK_PAGES = 128  # colbert.local.handle.LocalOptions.scan_block_pages' default
CANDIDATES = DEFAULT_CANDIDATES  # up to 100k pages (colbert.search.default_candidates)


def _cpu(fn: Callable[[], object], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def _stored(codec: str, pages: list[np.ndarray]):  # type: ignore[no-untyped-def]
    """(collection config, codebook or None, blobs) as the embedded index stores ``pages``."""
    from colbert.quantize import Codec, encode, needs_codebook, train_codebook
    from colbert.store import CollectionConfig

    config = CollectionConfig(8, 128, codec=Codec(codec))
    if needs_codebook(codec):
        book = train_codebook(codec, np.concatenate(pages))
        return config, book, [book.encode(p) for p in pages]
    return config, None, [encode(p, codec) for p in pages]


class _Recorder:
    """Stands in for ``FastScan.build``: builds as usual and keeps what it built (to read the survivor counts)."""

    def __init__(self, real: Callable[..., object]) -> None:
        self.real, self.scans = real, []  # type: ignore[var-annotated]

    def __call__(self, *args: object, **kwargs: object) -> object:
        scan = self.real(*args, **kwargs)
        self.scans.append(scan)
        return scan


def _search(scorer: object, q: np.ndarray, k: int, ids: np.ndarray, stored: tuple, build: object) -> tuple:  # type: ignore[type-arg]
    """``scorer.top_of`` over the pages ``ids``, ``FastScan.build`` replaced by ``build`` (None: fast scan off)."""
    from colbert import fastscan

    with mock.patch.object(fastscan.FastScan, "build", build or mock.Mock(return_value=None)):
        return scorer.top_of(q, k, _blocks(ids, *stored))  # type: ignore[attr-defined,no-any-return]


def _one(codec: str, pages: list[np.ndarray], queries: list[np.ndarray], k: int) -> list[str]:
    from colbert import fastscan
    from colbert.local.scan import PageScorer

    config, book, blobs = _stored(codec, pages)
    scorer = PageScorer(config, BLOCK_PAGES, lambda: book)
    stored = ([p.shape[0] for p in pages], blobs)
    rows = []
    for scenario in ("exhaustive", f"rerank {CANDIDATES}"):
        kept, times = [], np.zeros(2)
        for q in queries:
            ids = np.arange(len(pages))
            if scenario != "exhaustive":
                ids = np.sort(_search(scorer, q, len(pages), ids, stored, None)[0][:CANDIDATES])
            spy = _Recorder(fastscan.FastScan.build)
            exact, pruned = _search(scorer, q, k, ids, stored, None), _search(scorer, q, k, ids, stored, spy)
            if not (np.array_equal(exact[0], pruned[0]) and np.array_equal(exact[1], pruned[1])):
                raise SystemExit(f"{codec}: the pruned top-{k} differs from the exact one")
            kept.append(spy.scans[-1].pages_kept / max(1, spy.scans[-1].pages_seen))
            times += [_cpu(functools.partial(_search, scorer, q, k, ids, stored, build)) for build in (None, spy)]
        rows.append(
            f"{codec:10s} {scenario:11s} {np.mean(kept):9.1%} {min(kept):6.1%} {max(kept):6.1%} "
            f"{times[0] * 1e3 / len(queries):10.1f} {times[1] * 1e3 / len(queries):10.1f} {times[0] / times[1]:6.2f}"
        )
    return rows


def _blocks(ids: np.ndarray, counts: list[int], blobs: list[bytes]) -> list[tuple[np.ndarray, list[int], list[bytes]]]:
    return [
        (
            ids[s : s + BLOCK_PAGES],
            [counts[i] for i in ids[s : s + BLOCK_PAGES]],
            [blobs[i] for i in ids[s : s + BLOCK_PAGES]],
        )
        for s in range(0, ids.size, BLOCK_PAGES)
    ]


def report(codecs: list[str], n_pages: int, ld: int, k: int, n_queries: int) -> None:
    """Print the survivor fractions and CPU times (module docstring)."""
    corpus = Corpus(seed=0, dim=128, vectors=ld)
    centroids = corpus.centroids()
    pages = [corpus.page(i, centroids) for i in range(n_pages)]
    rng = np.random.default_rng(1)
    queries = [corpus.query(pages[int(j)], rng)[0] for j in rng.choice(n_pages, n_queries, replace=False)]
    print(
        f"\nfast-scan pruning, top-{k}: {n_pages} synthetic pages (bench/_synthetic.py, ~{ld} tokens), "
        f"{n_queries} queries of {corpus.query_tokens} tokens; CPU ms per query (best of 3), answers equal bit for bit"
    )
    print(
        f"{'codec':10s} {'scenario':11s} {'survivors':>9s} {'min':>6s} {'max':>6s} {'exact ms':>10s} "
        f"{'pruned ms':>10s} {'×':>6s}"
    )
    tokens = [p.tokens for p in pages]
    for codec in codecs:
        for row in _one(codec, tokens, queries, k):
            print(row)
