"""The pooled first stage of the embedded index: a few k-means centroids per page, scored by approximate MaxSim.

Why: a page's single dense vector (e.g. the mean of its tokens) blurs which topics the page holds *and how much
of the page each takes*, and that is what exact MaxSim rewards (a query token's best match is higher on a page
with many tokens near it). A **sketch** of ``k`` centroids per page (spherical k-means over the page's tokens,
each centroid rescaled to the mean norm of its cluster) keeps both: a topic covering much of the page gets
several centroids, and the max over them rises like the exact max does. The sketch score

    approx(q, P) = Σ_i max_c ⟨q_i, centroid_c(P)⟩

is MaxSim against the ``k`` centroids instead of the page's ~1000 tokens: ~60× cheaper, still a real
multi-vector interaction, and good enough to choose the few candidates that exact MaxSim then reranks.

Sketches are stored as float16 (``k × d × 2`` bytes per page) and held in memory as int8 with one float32 scale per
centroid (:func:`quantize_sketches`: ``k × (d + 4)`` bytes, 1,056 at k = 8, d = 128 — half of float16), scored by
:func:`sketch_scores` with float32 GEMMs over blocks of pages widened from int8, so that the (pages × k × Lq)
similarity block stays bounded. A centroid's int8 codes keep each component to half a step of ``max|c| / 127``
(about the precision of bfloat16, which held them before), and the first stage only picks candidates for the
exact rerank.

>>> x = np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1]], dtype=np.float32)
>>> c = page_sketch(x, 2)
>>> sorted(np.round(c[:, 0].astype(np.float64), 2).tolist())  # one centroid per direction
[0.05, 1.0]
>>> q = np.array([[1, 0]], dtype=np.float32)
>>> float(np.round(sketch_scores(*quantize_sketches(c[None]), q)[0], 2))
1.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["page_sketch", "page_sketches", "pool_query", "quantize_sketches", "sketch_scores", "widen_sketches"]

# k-means rounds: 5 rather than 8 costs 3/8 less of a bulk load's largest CPU item and kept the pooled first stage's
# recall@10 vs exhaustive MaxSim (bench/search.py, 20k binary pages, 20 queries, 10–100 candidates: equal or higher
# at every plan; docs/notes/2026-12-07e/build.md); most pages still move after 8 rounds, so 8 was no fixed point
_ITERATIONS = 5
_SKETCH_BLOCK_ELEMENTS = 1 << 19  # bound on a k-means block's padded pages × tokens × d (2 MiB of float32: cache-sized)
_BLOCK_ELEMENTS = 1 << 21  # bound on block pages × k × Lq similarities per GEMM (8 MiB of fp32-equivalent)
_WIDEN_ELEMENTS = 1 << 20  # bound on block pages × k × d sketch values widened to float32 at once (4 MiB)


def page_sketch(tokens: npt.ArrayLike, k: int, iterations: int = _ITERATIONS) -> npt.NDArray[np.float32]:
    """``k`` centroids (k, d) of a page's tokens (n, d) by spherical k-means; deterministic.

    Initial centroids: farthest-first traversal from the first token (each next one is the token least similar
    to those chosen), so small clusters get a centroid too. Each
    centroid is the normalised mean of its cluster times the cluster's mean token norm. With ``n ≤ k`` the
    tokens themselves are returned, repeated to ``k`` rows (a repeated row changes no max).
    """
    return page_sketches([tokens], k, iterations)[0]


def page_sketches(
    pages: Sequence[npt.ArrayLike], k: int, iterations: int = _ITERATIONS
) -> list[npt.NDArray[np.float32]]:
    """:func:`page_sketch` of each page (n_i, d), computed for many pages at once (a bulk load's cost).

    Pages are padded to blocks of (pages, n_max, d) and run through the same k-means as batched GEMMs (one per
    step for the whole block: per-page products of ``n × d`` by ``d × k`` are too small to run fast alone). A
    page whose assignments no longer change has converged (its centroids would not move again) and leaves the
    block, so the result equals the ``iterations`` rounds of the per-page algorithm up to float summation order.
    """
    xs = [np.ascontiguousarray(p, dtype=np.float32) for p in pages]
    out: list[npt.NDArray[np.float32]] = [np.empty((0, 0), dtype=np.float32)] * len(xs)
    big = []
    for i, x in enumerate(xs):
        n, d = x.shape
        if n == 0:
            out[i] = np.zeros((k, d), dtype=np.float32)
        elif n <= k:
            out[i] = x[np.arange(k) % n].copy()
        else:
            big.append(i)
    big.sort(key=lambda i: xs[i].shape[0])  # similar lengths share a block: little padding
    start = 0
    while start < len(big):
        stop = start + max(1, _SKETCH_BLOCK_ELEMENTS // xs[big[start]].size)
        stop = start + max(1, _SKETCH_BLOCK_ELEMENTS // xs[big[min(stop, len(big)) - 1]].size)  # its longest page
        block = big[start:stop]
        for i, c in zip(block, _kmeans_block([xs[i] for i in block], k, iterations), strict=True):
            out[i] = c
        start = stop
    return out


def _kmeans_block(xs: list[npt.NDArray[np.float32]], k: int, iterations: int) -> npt.NDArray[np.float32]:
    """Spherical k-means (module docstring) of pages (n_i > k, d), padded to one (B, N, d) block; (B, k, d).

    A token's cluster is found as a max over the k rows of a (B, k, N) copy of the similarities (vectorised
    across the tokens; the GEMM itself is (N, d) × (d, k) so each dot product sums as it always did) and that
    (B, k, N) membership mask is the left operand of the centroid sums' GEMM. Padding rows are zero: they add
    nothing to any sum and are masked out of the cluster sizes at the end. Every page runs every round: a page
    whose assignments stopped changing gets the same centroids again (the same GEMM of the same operands), so
    no page is copied out of the block; the block stops once no page moves."""
    b, big_n, d = len(xs), max(x.shape[0] for x in xs), xs[0].shape[1]
    lengths = np.array([x.shape[0] for x in xs])
    valid = np.arange(big_n)[None, :] < lengths[:, None]  # (B, N)
    unit = np.zeros((b, big_n, d), dtype=np.float32)
    for j, x in enumerate(xs):
        unit[j, : x.shape[0]] = x
    norms = np.sqrt(np.square(unit).sum(axis=2))  # (B, N): np.linalg.norm's formula, 0 on padding
    np.divide(unit, np.maximum(norms, 1e-12)[:, :, None], out=unit)
    centroids = _farthest_first(unit, valid, k)  # (B, k, d)
    member = np.zeros((b, k, big_n), dtype=np.bool_)
    sims = np.empty((b, k, big_n), dtype=np.float32)
    one_each = int(lengths.sum()) + k * (b * big_n - int(lengths.sum()))  # maxima without ties (padding: all k)
    for _ in range(iterations):
        # the GEMM's (B, N, k) laid out as (B, k, N): a max over k short contiguous rows is ~20× slower in numpy
        # than one elementwise maximum across k rows of N, and the copy costs a tenth of the difference
        np.copyto(sims, np.matmul(unit, centroids.transpose(0, 2, 1)).transpose(0, 2, 1))
        new = np.equal(sims, sims.max(axis=1, keepdims=True), out=np.empty((b, big_n, k), np.bool_).transpose(0, 2, 1))
        if np.count_nonzero(new) != one_each:  # a token as near two centroids: the first one, as argmax picks
            new &= np.cumsum(new, axis=1) == 1
        if np.array_equal(new, member):
            break
        member = new
        sums = np.matmul(member.astype(np.float32), unit)  # (B, k, d); padding rows are zero
        size = np.sqrt(np.square(sums).sum(axis=2))[:, :, None]  # (B, k, 1); 0: an empty cluster keeps its centroid
        centroids = np.where(size > 0, sums / np.maximum(size, 1e-12), centroids)
    member &= valid[:, None, :]
    counts = member.sum(axis=2, dtype=np.float32)  # (B, k)
    mean_norm = np.matmul(member.astype(np.float32), norms[:, :, None])[:, :, 0] / np.maximum(counts, 1)  # (B, k)
    page_mean = norms.sum(axis=1) / lengths  # (B,)
    mean_norm = np.where(mean_norm > 0, mean_norm, page_mean[:, None])
    result: npt.NDArray[np.float32] = (centroids * mean_norm[:, :, None]).astype(np.float32)
    return result


def _farthest_first(unit: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_], k: int) -> npt.NDArray[np.float32]:
    """``k`` rows of each page of ``unit`` (B, N, d) (``valid`` (B, N) marks its real rows, more than k): row 0,
    then repeatedly the row least similar to all chosen."""
    b = unit.shape[0]
    pages = np.arange(b)
    chosen = np.zeros((b, k), dtype=np.int64)
    closest = np.where(valid, np.matmul(unit, unit[:, 0, :, None])[:, :, 0], np.inf)  # (B, N) to the nearest chosen
    for step in range(1, k):
        nxt = np.argmin(closest, axis=1)  # (B,)
        chosen[:, step] = nxt
        closest = np.maximum(closest, np.matmul(unit, unit[pages, nxt][:, :, None])[:, :, 0])
    out: npt.NDArray[np.float32] = unit[pages[:, None], chosen]  # (B, k, d)
    return out


def quantize_sketches(sketches: npt.ArrayLike) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
    """Sketches (P, k, d) as held in memory: int8 codes (P, k·d) and per-centroid scales (P, k) float32, each
    centroid ``≈ scale · codes`` with ``scale = max|c| / 127`` (0 for an all-zero centroid)."""
    x = np.array(sketches, dtype=np.float32)  # (P, k, d), a copy worked on in place (one float32 temporary)
    top = np.maximum(x.max(axis=2), -x.min(axis=2)) + np.float32(0.0)  # (P, k) max |c|; + 0: never a -0 scale
    scales = (top / np.float32(127.0)).astype(np.float32)  # (P, k)
    x /= np.where(scales > 0, scales, np.float32(1.0))[:, :, None]
    np.rint(x, out=x)
    np.clip(x, -127, 127, out=x)
    return x.astype(np.int8).reshape(x.shape[0], -1), scales


def widen_sketches(codes: npt.NDArray[np.int8], scales: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Held sketches (:func:`quantize_sketches`) as the float32 (P, k, d) centroids they score as."""
    p, k = scales.shape
    out: npt.NDArray[np.float32] = codes.reshape(p, k, -1).astype(np.float32) * scales[:, :, None]
    return out


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
    codes: npt.NDArray[np.int8],
    scales: npt.NDArray[np.float32],
    query: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
    rows: npt.NDArray[np.int64] | None = None,
) -> npt.NDArray[np.float32]:
    """Approximate MaxSim of ``query`` (Lq, d) against each page's sketch, held as :func:`quantize_sketches` gives:
    ``codes`` (P, k·d) int8, ``scales`` (P, k); ``rows``: only those pages, in that order (gathered a block at a
    time, never all at once).

    ``weights`` (Lq,): each query row's weight in the sum (default 1; see :func:`pool_query`). Returns (P,) or
    (len(rows),) float32: Σ_i w_i max_c scale_c ⟨codes_c, q_i⟩, the exact MaxSim against :func:`widen_sketches`'
    centroids up to float32 rounding. Pages are scored in blocks so that at most ``_BLOCK_ELEMENTS``
    similarities and ``_WIDEN_ELEMENTS`` widened values exist at once.
    """
    q = np.ascontiguousarray(query, dtype=np.float32)  # (Lq, d)
    lq, d = q.shape
    k = scales.shape[1]
    pages = scales.shape[0] if rows is None else rows.shape[0]
    out = np.empty(pages, dtype=np.float32)
    if pages == 0:
        return out
    # float32 GEMMs over blocks widened from int8: this project's AVX2 machine has no fast int8 or bf16 GEMM in
    # numpy/torch, and widening a cache-sized block costs less than the GEMM over it. The scale multiplies the
    # (b·k, Lq) products rather than the (b·k, d) rows: fewer multiplies whenever Lq < d.
    qt = q.T.copy()  # (d, Lq)
    w = None if weights is None else np.ascontiguousarray(weights, dtype=np.float32)  # (Lq,)
    block = max(1, min(_BLOCK_ELEMENTS // (k * lq), _WIDEN_ELEMENTS // (k * d)))
    for start in range(0, pages, block):
        stop = min(start + block, pages)
        at = slice(start, stop) if rows is None else rows[start:stop]
        wide = codes[at].reshape((stop - start) * k, d).astype(np.float32)  # (b·k, d)
        sims = wide @ qt  # (b·k, Lq)
        sims *= scales[at].reshape(-1, 1)
        best = sims.reshape(stop - start, k, lq).max(axis=1)  # (b, Lq)
        out[start:stop] = best.sum(axis=1) if w is None else best @ w
    return out
