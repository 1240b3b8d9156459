"""A page's tokens are stored against centroids from its sketch's shortlist (:mod:`colbert.local.assign`)."""

from __future__ import annotations

import numpy as np

from colbert.codebook import Codebook, train
from colbert.local.assign import SHORTLIST, page_centroid_ids
from colbert.local.sketch import page_sketch


def _unit(a: np.ndarray) -> np.ndarray:
    out: np.ndarray = (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)
    return out


def _topic_pages(rng: np.random.Generator, topics: np.ndarray, n: int, pages: int) -> list[np.ndarray]:
    out = []
    for _ in range(pages):
        chosen = topics[rng.choice(topics.shape[0], 3, replace=False)]  # (3, d)
        out.append(_unit(chosen[rng.integers(0, 3, n)] + 0.08 * rng.normal(size=(n, topics.shape[1]))))
    return out


def test_small_codebook_is_searched_whole() -> None:
    rng = np.random.default_rng(0)
    x = _unit(rng.normal(size=(50, 16)))
    book = train(x, 2, k=16)
    assert book.k <= SHORTLIST * 8
    np.testing.assert_array_equal(page_centroid_ids(book, x, page_sketch(x, 8)), book.assign(x))


def test_shortlist_matches_the_exact_choice_on_topic_pages() -> None:
    rng = np.random.default_rng(1)
    d = 32
    topics = _unit(rng.normal(size=(200, d)))
    pages = _topic_pages(rng, topics, 120, 40)
    centroids = _unit(np.concatenate([topics + 0.05 * rng.normal(size=topics.shape) for _ in range(5)]))  # (1000, d)
    book = Codebook(centroids, 2, np.zeros((d, 1), np.float32), np.array([[-0.01, 0.01]] * d, np.float32))
    assert book.k > SHORTLIST * 8
    same = total = 0
    for x in pages:
        ids = page_centroid_ids(book, x, page_sketch(x, 8))
        exact = book.assign(x)
        # each token's centroid is the best of a shortlist: never better than the exact best, rarely worse
        got, best = np.sum(x * centroids[ids], axis=1), np.sum(x * centroids[exact], axis=1)
        assert np.all(got <= best + 1e-6)
        same += int((ids == exact).sum())
        total += x.shape[0]
        # the codes are computed against the chosen centroid: the decoded token is that centroid + its buckets
        decoded = book.decode(book.encode(x, ids), x.shape[0])
        np.testing.assert_allclose(decoded - centroids[ids], np.where(x - centroids[ids] > 0, 0.01, -0.01), atol=1e-6)
    assert same / total > 0.95, same / total
