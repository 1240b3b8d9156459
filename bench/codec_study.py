"""Which token code could keep the answers at ≤ 16 KB a page? A numpy study of candidate codes (issue 26 item 1).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m bench.codec_study --sets syn2000,real
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m bench.codec_study --sets syn10000 --schemes int8,residual1,…

For each set (``synN``: ``N`` structured synthetic pages of :mod:`bench._synthetic` with the benches' seeds —
~768 tokens × 128, 2,000 topics, queries drawn as ``bench/codec_agreement.py`` draws them; ``real``: the
real-page vectors of :mod:`bench._real_pages`) and each scheme (:data:`SCHEMES`: the store's codecs and the
candidate codes of :mod:`bench._study_coders`, optionally after ×2 token pooling), the pages are coded as the
scheme would store them and every page is scored exhaustively by MaxSim of the float32 query against the
decoded values (asymmetric; what a byte-table kernel over those codes computes). The reference is exhaustive
float32 MaxSim over the original tokens, computed here with numpy (no :mod:`colbert` code). Pages are streamed
in chunks, so 10,000 pages need no more than a few hundred MB.

Columns: stored bytes per original token and per page (codes only: the first-stage structures come on top),
``agree``: |top-k ∩ float32 top-k| / k averaged over the queries; ``noise``: the standard deviation of
(scheme score − float32 score) over each query's float32 top-2k pages after removing that query's mean offset
(a constant offset does not change a ranking) — to be read against the set's **gap**, the median float32 score
difference between ranks k and k + 1, printed above each table; ``tok err``: mean squared error of the decoded
tokens (unit tokens, so relative); ``enc µs/tok``: CPU time to encode (centroid assignment and pooling
included, per original token). Codebooks are trained on ``--train-tokens`` tokens sampled from ``--train-pages``
pages spread over the set (K: :func:`colbert.codebook.choose_k` of the sample, as the store chooses it).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._real_pages import load_real_set
from bench._study_coders import Coder, Spec, assign, kmeans_spherical, train_coder
from bench._synthetic import Corpus
from colbert.codebook import choose_k
from colbert.pooling import pool_tokens
from colbert.quantize import decode, encode

__all__ = ["SCHEMES", "main"]

# name -> (a store codec name or a Spec, pool factor)
SCHEMES: dict[str, tuple[str | Spec, int]] = {
    "float16": ("float16", 1),
    "int8": ("int8", 1),
    "residual2": (Spec("kmeans", "none", "s2"), 1),
    "respq4": (Spec("kmeans", "none", "pq4"), 1),
    "binary": ("binary", 1),
    "bin-rand": (Spec("mean", "random", "s1"), 1),
    "bin-itq": (Spec("mean", "itq", "s1"), 1),
    "bin-itq+s": (Spec("mean", "itq", "s1", True), 1),
    "pq8": (Spec("mean", "none", "pq8"), 1),
    "residual1": (Spec("kmeans", "none", "s1"), 1),
    "res1+s": (Spec("kmeans", "none", "s1", True), 1),
    "res1-itq": (Spec("kmeans", "itq", "s1"), 1),
    "res1-itq+s": (Spec("kmeans", "itq", "s1", True), 1),
    "respq8": (Spec("kmeans", "none", "pq8"), 1),
    "respq8-rot": (Spec("kmeans", "random", "pq8"), 1),
    "respq8+s": (Spec("kmeans", "none", "pq8", True), 1),
    "residual2:p2": (Spec("kmeans", "none", "s2"), 2),
    "respq4:p2": (Spec("kmeans", "none", "pq4"), 2),
    "respq4+s:p2": (Spec("kmeans", "none", "pq4", True), 2),
}


@dataclass
class DataSet:
    name: str
    queries: list[np.ndarray]  # (Lq_j, d) float32
    chunks: Iterator[list[np.ndarray]]  # pages in id order, a list at a time
    train_pages: list[np.ndarray]
    n_pages: int


def synthetic(n: int, a: argparse.Namespace) -> DataSet:
    corpus = Corpus(seed=a.seed, dim=128, vectors=768, topics=2000)
    cents = corpus.centroids()
    rng = np.random.default_rng(a.seed + 1)
    queries = [corpus.query(corpus.page(int(i), cents), rng)[0] for i in rng.choice(n, a.queries, False)]

    def chunks() -> Iterator[list[np.ndarray]]:
        for s in range(0, n, a.chunk):
            yield [corpus.page(i, cents).tokens for i in range(s, min(s + a.chunk, n))]

    train = [corpus.page(int(i), cents).tokens for i in np.linspace(0, n - 1, min(n, a.train_pages)).astype(int)]
    return DataSet(f"synthetic {n:,} pages", queries, chunks(), train, n)


def real(a: argparse.Namespace) -> DataSet:
    r = load_real_set()
    chunks = (r.pages[s : s + a.chunk] for s in range(0, len(r.pages), a.chunk))
    return DataSet(f"real {len(r.pages)} pages", r.queries, chunks, r.pages, len(r.pages))


class MaxSim:
    """Exact MaxSim of every query against pages given as flat tokens + page starts, numpy float32."""

    def __init__(self, queries: list[np.ndarray]) -> None:
        self.q = np.concatenate(queries).astype(np.float32)  # (ΣLq, d)
        self.starts = np.cumsum([0] + [q.shape[0] for q in queries[:-1]])

    def __call__(self, tokens: np.ndarray, starts: np.ndarray) -> np.ndarray:
        best = np.maximum.reduceat(self.q @ tokens.T, starts, axis=1)  # (ΣLq, P)
        out: np.ndarray = np.add.reduceat(best, self.starts, axis=0)  # (Q, P)
        return out


def _flat(pages: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate(pages), np.cumsum([0] + [p.shape[0] for p in pages[:-1]])


@dataclass
class Shared:
    """Per chunk, what several schemes reuse (pooled pages, centroid ids), with the CPU time it cost."""

    pages: list[np.ndarray]
    pooled: dict[int, tuple[list[np.ndarray], float]] = field(default_factory=dict)
    ids: dict[int, tuple[np.ndarray, float]] = field(default_factory=dict)

    def pool(self, factor: int) -> tuple[list[np.ndarray], float]:
        if factor == 1:
            return self.pages, 0.0
        if factor not in self.pooled:
            t0 = time.process_time()
            self.pooled[factor] = ([pool_tokens(p, factor) for p in self.pages], time.process_time() - t0)
        return self.pooled[factor]

    def assign(self, factor: int, tokens: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, float]:
        if centroids.shape[0] == 1:
            return np.zeros(tokens.shape[0], dtype=np.int64), 0.0
        if factor not in self.ids:
            t0 = time.process_time()
            self.ids[factor] = (assign(tokens, centroids), time.process_time() - t0)
        return self.ids[factor]


@dataclass
class Result:
    scores: list[np.ndarray] = field(default_factory=list)  # (Q, P) per chunk
    stored: int = 0
    tokens: int = 0
    cpu: float = 0.0
    sq_err: float = 0.0
    coded: int = 0


class Study:
    def __init__(self, data: DataSet, names: list[str], a: argparse.Namespace) -> None:
        self.data, self.names, self.a = data, names, a
        self.coders: dict[str, Coder] = {}
        self.centroids: dict[int, np.ndarray] = {}
        for name in names:
            what, pool = SCHEMES[name]
            if isinstance(what, Spec):
                self.coders[name] = self._train(what, pool)

    def _sample(self, pool: int) -> np.ndarray:
        pages = [pool_tokens(p, pool) for p in self.data.train_pages] if pool > 1 else self.data.train_pages
        tokens = np.concatenate(pages)
        rng = np.random.default_rng(self.a.seed + 2)
        n = min(self.a.train_tokens, tokens.shape[0])
        return tokens[np.sort(rng.choice(tokens.shape[0], n, replace=False))]

    def _train(self, spec: Spec, pool: int) -> Coder:
        sample = self._sample(pool)
        if spec.base == "kmeans" and pool not in self.centroids:
            self.centroids[pool] = kmeans_spherical(sample, choose_k(sample.shape[0]), self.a.seed)
        cents = self.centroids[pool] if spec.base == "kmeans" else sample.mean(axis=0, keepdims=True)
        return train_coder(spec, sample, cents.astype(np.float32), self.a.seed)

    def run(self, every: int = 0) -> tuple[np.ndarray, dict[str, Result]]:
        """Score every chunk; with ``every`` > 0, also print the table of the pages scored so far each time
        another ``every`` pages are done (a long run leaves a smaller but complete measurement as it goes)."""
        exact = MaxSim(self.data.queries)
        ref: list[np.ndarray] = []
        results = {n: Result() for n in self.names}
        done = 0
        for pages in self.data.chunks:
            tokens, starts = _flat(pages)
            ref.append(exact(tokens, starts))
            shared = Shared(pages)
            for name in self.names:
                self._chunk(name, shared, exact, results[name], tokens.shape[0])
            if every and (done + len(pages)) // every > done // every and done + len(pages) < self.data.n_pages:
                report(
                    f"{self.data.name}: the first {done + len(pages)} pages", np.concatenate(ref, 1), results, self.a.k
                )
            done += len(pages)
        return np.concatenate(ref, axis=1), results

    def _chunk(self, name: str, shared: Shared, exact: MaxSim, res: Result, n_tokens: int) -> None:
        what, pool = SCHEMES[name]
        kept, cpu = shared.pool(pool)
        x, starts = _flat(kept)
        d = x.shape[1]
        if isinstance(what, str):
            t0 = time.process_time()
            blob = encode(x, what)
            cpu += time.process_time() - t0
            values, stored = decode(blob, x.shape[0], d, what), len(blob)
        else:
            coder = self.coders[name]
            ids, spent = shared.assign(pool, x, coder.centroids)
            t0 = time.process_time()
            parts = coder.encode(x, ids)
            cpu += spent + time.process_time() - t0
            values, stored = coder.decode(*parts), coder.row_bytes * x.shape[0]
        res.scores.append(exact(values, starts))
        res.stored += stored
        res.tokens += n_tokens
        res.cpu += cpu
        if res.coded < 100_000:
            res.sq_err += float(((values - x) ** 2).sum())
            res.coded += x.shape[0]


def summary(ref: np.ndarray, res: Result, k: int) -> dict[str, float]:
    got = np.concatenate(res.scores, axis=1)  # (Q, N)
    truth = np.argsort(-ref, axis=1, kind="stable")
    top = np.argsort(-got, axis=1, kind="stable")[:, :k]
    agree = np.mean([len(set(top[i]) & set(truth[i, :k])) / k for i in range(ref.shape[0])])
    near = truth[:, : 2 * k]
    diff = np.take_along_axis(got, near, 1) - np.take_along_axis(ref, near, 1)
    noise = float(np.std(diff - diff.mean(axis=1, keepdims=True)))
    return {
        "B/token": res.stored / res.tokens,
        "agree": float(agree),
        "noise": noise,
        "tok err": res.sq_err / max(res.coded, 1),
        "enc µs/tok": 1e6 * res.cpu / res.tokens,
        "pages": float(ref.shape[1]),
    }


def gaps(ref: np.ndarray, k: int) -> str:
    s = -np.sort(-ref, axis=1)
    g = s[:, k - 1] - s[:, k]
    spread = s[:, 0] - s[:, 2 * k - 1]
    return (
        f"float32 score at rank {k}: median {np.median(s[:, k - 1]):.3f}; gap rank {k}→{k + 1}: median "
        f"{np.median(g):.4f} (p25 {np.quantile(g, 0.25):.4f}); rank 1→{2 * k} spread: median {np.median(spread):.3f}"
    )


def noise_for(ref: np.ndarray, k: int, target: float, seed: int) -> float:
    """The standard deviation of independent Gaussian noise on every page's score at which agreement@k with the
    noiseless ranking falls to ``target`` (3 draws per level, log-spaced levels from 1e-4): the noise a code may
    add; 0.0 when it falls already at 1e-4."""
    rng = np.random.default_rng(seed)
    truth = [set(r) for r in np.argsort(-ref, axis=1, kind="stable")[:, :k].tolist()]
    for sigma in np.geomspace(1e-4, 1.0, 49):
        agree = []
        for _ in range(3):
            top = np.argsort(-(ref + rng.normal(0, sigma, ref.shape)), axis=1, kind="stable")[:, :k]
            agree += [len(set(t) & want) / k for t, want in zip(top.tolist(), truth, strict=True)]
        if np.mean(agree) < target:
            return float(sigma) if sigma > 1e-4 else 0.0
    return 1.0


def report(
    label: str, ref: np.ndarray, results: dict[str, Result], k: int, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Print one set's table (module docstring) and return its measures per scheme."""
    print(f"\n## {label}, {ref.shape[0]} queries\n{gaps(ref, k)}")
    sigma = noise_for(ref, k, 0.95, seed)
    print(
        f"independent score noise at which agreement@{k} falls below 0.95: σ {f'≈ {sigma:.4f}' if sigma else '< 1e-4'}"
    )
    print(f"{'scheme':<14}{'B/token':>8}{'B/page':>9}{'agree':>7}{'noise':>8}{'tok err':>9}{'enc µs/tok':>11}")
    out = {}
    for name, res in results.items():
        m = out[name] = summary(ref, res, k)
        row = f"{name:<14}{m['B/token']:>8.1f}{m['B/token'] * res.tokens / ref.shape[1]:>9,.0f}{m['agree']:>7.3f}"
        print(row + f"{m['noise']:>8.4f}{m['tok err']:>9.4f}{m['enc µs/tok']:>11.2f}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", default="syn2000,syn10000,real", help="synN (N synthetic pages) and/or real")
    p.add_argument("--schemes", default=",".join(SCHEMES), help=f"comma-separated, from {', '.join(SCHEMES)}")
    p.add_argument("--queries", type=int, default=30, help="synthetic queries (real: every line query)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--chunk", type=int, default=48, help="pages scored at a time")
    p.add_argument("--train-pages", type=int, default=512)
    p.add_argument("--train-tokens", type=int, default=131072)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--report-every", type=int, default=0, help="also print the table every N pages (0: at the end)")
    a = p.parse_args(argv)
    names = [n for n in a.schemes.split(",") if n]
    unknown = [n for n in names if n not in SCHEMES]
    if unknown:
        p.error(f"unknown scheme(s) {unknown}; choose from {list(SCHEMES)}")
    table: dict[str, dict[str, dict[str, float]]] = {}
    for s in a.sets.split(","):
        data = real(a) if s == "real" else synthetic(int(s.removeprefix("syn")), a)
        t0 = time.process_time()
        ref, results = Study(data, names, a).run(a.report_every)
        table[s] = report(f"{data.name} (CPU {time.process_time() - t0:.0f} s)", ref, results, a.k, a.seed)
    sets = list(table)
    print(f"\n## agreement@{a.k} with exhaustive float32 MaxSim\n| scheme | B/token | " + " | ".join(sets) + " |")
    print("|---|---|" + "---|" * len(sets))
    for name in names:
        cells = [f"{table[s][name]['agree']:.3f}" for s in sets]
        print(f"| {name} | {table[sets[0]][name]['B/token']:.1f} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
