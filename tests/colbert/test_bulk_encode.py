"""The bulk path's encoding (:mod:`colbert.local.sketch`'s batched k-means, :mod:`colbert.local.bulk`'s encoding
ahead of the writer): the same results as a plain per-page computation and as one batch at a time."""

from __future__ import annotations

import numpy as np

from colbert.local.sketch import page_sketches


def _reference_sketch(x: np.ndarray, k: int, iterations: int = 8) -> np.ndarray:
    """The sketch of one page written out plainly (sketch module docstring): farthest-first start, spherical
    k-means rounds until no token moves, centroids scaled by their cluster's mean token norm."""
    norms = np.linalg.norm(x, axis=1)
    unit = x / np.maximum(norms, 1e-12)[:, None]
    chosen = [0]
    for _ in range(1, k):
        chosen.append(int(np.argmin((unit @ unit[chosen].T).max(axis=1))))
    centroids = unit[chosen].copy()
    assign = np.full(x.shape[0], -1)
    for _ in range(iterations):
        new = (unit @ centroids.T).argmax(axis=1)
        if np.array_equal(new, assign):
            break
        assign = new
        for c in range(k):
            if (assign == c).any():
                s = unit[assign == c].sum(axis=0)
                centroids[c] = s / np.linalg.norm(s)
    scale = np.array([norms[assign == c].mean() if (assign == c).any() else norms.mean() for c in range(k)])
    out: np.ndarray = (centroids * scale[:, None]).astype(np.float32)
    return out


def test_batched_sketches_equal_a_plain_per_page_k_means() -> None:
    rng = np.random.default_rng(3)
    topics = rng.normal(size=(6, 32))
    pages = []
    for n in (9, 50, 200, 333, 64, 120, 700, 12):  # lengths that pad within a block and across blocks
        x = topics[rng.integers(0, 6, n)] + rng.normal(scale=0.7, size=(n, 32))
        pages.append((x * rng.uniform(0.5, 2.0, size=(n, 1))).astype(np.float32))
    # 3 directions, 4 copies each with norms 1..3: farthest-first repeats a centroid, every token ties between
    # two of them and goes to the first (an empty duplicate takes the page's mean norm)
    pages.append(np.repeat(np.eye(32, dtype=np.float32)[:3] * np.array([[1], [2], [3]], np.float32), 4, axis=0))
    for x, got in zip(pages, page_sketches(pages, 8), strict=True):
        np.testing.assert_allclose(got, _reference_sketch(x, 8), atol=1e-5)
