"""The pooled first stage of the embedded index: a few k-means centroids per page, scored by approximate MaxSim.

Why: a page's single dense vector (e.g. the mean of its tokens) blurs which topics the page holds *and how much
of the page each takes*, and that is what exact MaxSim rewards (a query token's best match is higher on a page
with many tokens near it). A **sketch** of ``k`` centroids per page (spherical k-means over the page's tokens,
each centroid rescaled to the mean norm of its cluster) keeps both: a topic covering much of the page gets
several centroids, and the max over them rises like the exact max does. The sketch score

    approx(q, P) = Σ_i max_c ⟨q_i, centroid_c(P)⟩

is MaxSim against the ``k`` centroids instead of the page's ~1000 tokens: ~60× cheaper, still a real
multi-vector interaction, and good enough to choose the few candidates that exact MaxSim then reranks.

Sketches are stored as float16 (``k × d × 2`` bytes per page) and held in memory as bfloat16 (same size), scored
with bf16 GEMMs over blocks of pages so that the (pages × k × Lq) similarity block stays bounded.

>>> x = np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1]], dtype=np.float32)
>>> c = page_sketch(x, 2)
>>> sorted(np.round(c[:, 0].astype(np.float64), 2).tolist())  # one centroid per direction
[0.05, 1.0]
>>> q = np.array([[1, 0]], dtype=np.float32)
>>> float(np.round(sketch_scores(to_bf16_bits(c[None]), 2, q)[0], 2))
1.0
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

__all__ = ["from_bf16_bits", "page_sketch", "pool_query", "sketch_scores", "to_bf16_bits"]

_ITERATIONS = 8
_BLOCK_ELEMENTS = 1 << 21  # bound on block pages × k × Lq similarities per GEMM (8 MiB of fp32-equivalent)


def page_sketch(tokens: npt.ArrayLike, k: int, iterations: int = _ITERATIONS) -> npt.NDArray[np.float32]:
    """``k`` centroids (k, d) of a page's tokens (n, d) by spherical k-means; deterministic.

    Initial centroids: farthest-first traversal from the first token (each next one is the token least similar
    to those chosen), so small clusters get a centroid too. Each
    centroid is the normalised mean of its cluster times the cluster's mean token norm. With ``n ≤ k`` the
    tokens themselves are returned, repeated to ``k`` rows (a repeated row changes no max).
    """
    x = np.ascontiguousarray(tokens, dtype=np.float32)  # (n, d)
    n, d = x.shape
    if n == 0:
        return np.zeros((k, d), dtype=np.float32)
    if n <= k:
        out: npt.NDArray[np.float32] = x[np.arange(k) % n].copy()
        return out
    # Matrix-vector products and segment sums only: these matrices are small (a page's tokens × k), and a threaded
    # GEMM (torch's or OpenBLAS's) on them waits on its worker threads — on a loaded 2-core machine 26-45 ms a call
    # where this takes ~0.1 ms — which had bounded bulk loading at a few pages/s.
    norms = np.linalg.norm(x, axis=1)  # (n,)
    unit = x / np.maximum(norms, 1e-12)[:, None]  # (n, d)
    centroids = _farthest_first(unit, k)  # (k, d)
    assign = np.zeros(n, dtype=np.int64)
    for _ in range(iterations):
        assign = np.stack([unit @ c for c in centroids], axis=1).argmax(axis=1)  # (n,) nearest centroid
        counts = np.bincount(assign, minlength=k)  # (k,)
        order = np.argsort(assign, kind="stable")  # (n,) tokens grouped by cluster
        filled = np.flatnonzero(counts)  # clusters with tokens; an empty cluster keeps its centroid
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[filled]
        sums = np.add.reduceat(unit[order], starts, axis=0)  # (len(filled), d)
        centroids = centroids.copy()
        centroids[filled] = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    counts = np.maximum(np.bincount(assign, minlength=k), 1)  # (k,)
    mean_norm = np.bincount(assign, weights=norms, minlength=k) / counts  # (k,)
    mean_norm = np.where(mean_norm > 0, mean_norm, norms.mean())
    result: npt.NDArray[np.float32] = (centroids * mean_norm[:, None]).astype(np.float32)
    return result


def _farthest_first(unit: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.float32]:
    """``k`` rows of ``unit`` (n, d), n > k: row 0, then repeatedly the row least similar to all chosen."""
    chosen = [0]
    closest = unit @ unit[0]  # (n,) similarity to the nearest chosen row
    for _ in range(k - 1):
        nxt = int(np.argmin(closest))
        chosen.append(nxt)
        closest = np.maximum(closest, unit @ unit[nxt])
    out: npt.NDArray[np.float32] = unit[chosen].copy()
    return out


def to_bf16_bits(a: npt.ArrayLike) -> npt.NDArray[np.uint16]:
    """bfloat16 bit patterns (round to nearest even) of ``a``, same shape, as uint16 (numpy has no bf16)."""
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(torch.bfloat16)
    out: npt.NDArray[np.uint16] = t.view(torch.int16).numpy().view(np.uint16)
    return out


def from_bf16_bits(bits: npt.NDArray[np.uint16]) -> torch.Tensor:
    """A bfloat16 tensor sharing memory with ``bits`` (no copy)."""
    return torch.from_numpy(bits.view(np.int16)).view(torch.bfloat16)


def pool_query(query: npt.ArrayLike, groups: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The query's tokens (Lq, d) as ``groups`` k-means centroids and their cluster sizes (groups,), for a
    cheaper sketch scan: Σ_g size_g · max_c ⟨centroid_g, c⟩ approximates Σ_i max_c ⟨q_i, c⟩. A query of at most
    ``groups`` tokens is returned as it is (weights 1)."""
    q = np.ascontiguousarray(query, dtype=np.float32)  # (Lq, d)
    if q.shape[0] <= groups:
        return q, np.ones(q.shape[0], dtype=np.float32)
    centroids = page_sketch(q, groups)  # (groups, d)
    unit = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    assign = np.argmax(q @ unit.T, axis=1)  # (Lq,)
    return centroids, np.bincount(assign, minlength=groups).astype(np.float32)


def sketch_scores(
    sketches: npt.NDArray[np.uint16], k: int, query: npt.ArrayLike, weights: npt.ArrayLike | None = None
) -> npt.NDArray[np.float32]:
    """Approximate MaxSim of ``query`` (Lq, d) against each page's sketch: ``sketches`` (P, k·d) bf16 bits.

    ``weights`` (Lq,): each query row's weight in the sum (default 1; see :func:`pool_query`). Returns (P,)
    float32. Pages are scored in blocks so at most ``_BLOCK_ELEMENTS`` similarities exist at once.
    """
    q = torch.from_numpy(np.ascontiguousarray(query, dtype=np.float32)).to(torch.bfloat16)  # (Lq, d)
    lq, d = q.shape
    pages = sketches.shape[0]
    out = torch.empty(pages, dtype=torch.float32)
    if pages == 0:
        return out.numpy()
    flat = from_bf16_bits(np.ascontiguousarray(sketches)).view(pages * k, d)  # (P·k, d)
    block = max(1, _BLOCK_ELEMENTS // (k * lq))
    qt = q.T.contiguous()  # (d, Lq)
    w = None if weights is None else torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float32))  # (Lq,)
    for start in range(0, pages, block):
        stop = min(start + block, pages)
        sims = flat[start * k : stop * k] @ qt  # (b·k, Lq)
        best = sims.view(stop - start, k, lq).amax(dim=1)  # (b, Lq)
        out[start:stop] = best.sum(dim=1, dtype=torch.float32) if w is None else best.float() @ w
    return out.numpy()
