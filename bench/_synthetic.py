"""Structured synthetic pages and queries for ``bench/search.py``, and the exact top-k they should return.

* ``topics`` unit centroids in ``dim`` dimensions (seeded).
* Page ``i`` (its own seeded generator, so any page can be regenerated): picks ``topics_per_page`` distinct
  topics with Dirichlet(1) weights and ``n ≈ vectors`` (±10%) tokens; each token is its topic's centroid
  plus isotropic Gaussian noise of norm ≈ ``noise``, renormalised.
* Dense first-stage vector of a page (and of a query): the normalised mean of its tokens (stated in the
  report; the real encoder's dense vector is a separately trained head, so this is a stand-in).
* A query is ``query_tokens`` tokens sampled from one page, each perturbed by noise of norm ≈
  ``query_noise`` and renormalised.

:class:`ExactTopK` keeps, per query, the exact MaxSim top-k over every page streamed through it, computed
with plain numpy matmuls (independent of :mod:`colbert`), on the float32 values the store will score
(``round_to`` rounds the pages to the codec's precision first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Corpus", "ExactTopK", "Page"]


@dataclass(frozen=True)
class Page:
    tokens: np.ndarray  # (n, dim) float32 unit rows
    dense: np.ndarray  # (dim,) float32 unit
    topics: np.ndarray  # (topics_per_page,) int


def _unit(a: np.ndarray) -> np.ndarray:
    out: np.ndarray = (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)
    return out


@dataclass(frozen=True)
class Corpus:
    seed: int = 0
    dim: int = 128
    vectors: int = 1024
    topics: int = 2000
    topics_per_page: int = 4
    noise: float = 1.0
    query_tokens: int = 32
    query_noise: float = 0.3

    def centroids(self) -> np.ndarray:
        rng = np.random.default_rng((self.seed, 0xC0FFEE))
        return _unit(rng.standard_normal((self.topics, self.dim), dtype=np.float32))  # (topics, dim)

    def page(self, index: int, centroids: np.ndarray) -> Page:
        rng = np.random.default_rng((self.seed, index))
        chosen = rng.choice(self.topics, self.topics_per_page, replace=False)  # (t,)
        weights = rng.dirichlet(np.ones(self.topics_per_page))  # (t,)
        n = int(rng.integers(int(self.vectors * 0.9), int(self.vectors * 1.1) + 1))
        which = rng.choice(self.topics_per_page, n, p=weights)  # (n,)
        scale = self.noise / np.sqrt(self.dim)
        noise = rng.standard_normal((n, self.dim), dtype=np.float32) * np.float32(scale)  # (n, dim)
        tokens = _unit(centroids[chosen[which]] + noise)  # (n, dim)
        return Page(tokens, _unit(tokens.mean(axis=0)), chosen)

    def query(self, page: Page, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(query tokens (query_tokens, dim), dense (dim,)) drawn from ``page``."""
        rows = rng.choice(page.tokens.shape[0], self.query_tokens, replace=False)
        scale = self.query_noise / np.sqrt(self.dim)
        noise = rng.standard_normal((self.query_tokens, self.dim), dtype=np.float32) * np.float32(scale)
        q = _unit(page.tokens[rows] + noise)  # (Lq, dim)
        return q, _unit(q.mean(axis=0))


class ExactTopK:
    """Running exact MaxSim top-k of ``queries`` (Q, Lq, dim) over pages streamed in id order."""

    def __init__(self, queries: np.ndarray, k: int) -> None:
        self.q = queries.reshape(-1, queries.shape[-1]).astype(np.float32)  # (Q*Lq, dim)
        self.nq, self.lq = queries.shape[0], queries.shape[1]
        self.k = k
        self.ids = np.empty((self.nq, 0), dtype=np.int64)
        self.scores = np.empty((self.nq, 0), dtype=np.float32)

    def add(self, first_id: int, pages: list[np.ndarray]) -> None:
        """Score pages with ids ``first_id, first_id+1, …`` (each (n_i, dim) float32)."""
        tokens = np.concatenate(pages)  # (T, dim)
        starts = np.cumsum([0] + [p.shape[0] for p in pages[:-1]])  # (P,)
        sims = self.q @ tokens.T  # (Q*Lq, T)
        best = np.maximum.reduceat(sims, starts, axis=1)  # (Q*Lq, P) max over each page's tokens
        scores = best.reshape(self.nq, self.lq, len(pages)).sum(axis=1)  # (Q, P)
        ids = np.broadcast_to(np.arange(first_id, first_id + len(pages)), scores.shape)
        all_ids = np.concatenate([self.ids, ids], axis=1)
        all_scores = np.concatenate([self.scores, scores.astype(np.float32)], axis=1)
        if all_ids.shape[1] > self.k:
            keep = np.argsort(-all_scores, axis=1, kind="stable")[:, : self.k]
            all_ids = np.take_along_axis(all_ids, keep, axis=1)
            all_scores = np.take_along_axis(all_scores, keep, axis=1)
        self.ids, self.scores = all_ids, all_scores

    def snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        return self.ids.copy(), self.scores.copy()
