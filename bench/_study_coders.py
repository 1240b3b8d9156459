"""Candidate token codes for ``bench/codec_study.py`` (issue 26 item 1), in plain numpy.

Each scheme is trained on a sample of (unit) tokens and then codes tokens to what it would store; the study
scores a float32 query against the decoded values (asymmetric scoring: the query is never quantised), which is
what a byte-table kernel over the same codes computes. A scheme is built from parts:

* ``base``: ``mean`` (one global mean μ of the training tokens, nothing stored per token) or ``kmeans`` (spherical
  k-means centroids as :mod:`colbert.codebook` trains them, a uint16 centroid id per token: 2 bytes);
* ``rotation`` of the residual (token − base) before the code: ``none``, ``random`` (a seeded random orthogonal
  matrix), ``pca`` (the residuals' principal axes) or ``itq`` (PCA then Iterative Quantization, Gong & Lazebnik
  2011: the rotation that makes the residuals' signs lose least);
* ``code`` of the rotated residual: ``s1``/``s2`` (1 or 2 bits per dimension: per-dimension quantile cutoffs and
  bucket means, PLAID's scheme) or ``pq8``/``pq4`` (product quantization: 8- or 4-dimension subvectors × 256
  centroids, one byte each);
* ``scale``: one more byte per token, the least-squares scale of the decoded residual (``<y, ŷ> / |ŷ|²``)
  quantised to 256 steps over the training range.

Stored bytes per token at d = 128 are :attr:`Coder.row_bytes`; ``pool`` (token pooling before coding) is applied
by the study, not here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Coder", "Spec", "assign", "kmeans_spherical", "train_coder"]

_BLOCK = 16384


def assign(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Highest dot product centroid of each row (blocked GEMM + argmax)."""
    ct = np.ascontiguousarray(centroids.T)
    out = np.empty(x.shape[0], dtype=np.int64)
    for s in range(0, x.shape[0], _BLOCK):
        out[s : s + _BLOCK] = (x[s : s + _BLOCK] @ ct).argmax(axis=1)
    return out


def _sums(a: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    """Row sums of ``x`` per label ``a`` (k, d): one bincount per column (np.add.at is far slower)."""
    return np.stack([np.bincount(a, weights=x[:, j], minlength=k) for j in range(x.shape[1])], axis=1)


def kmeans_spherical(x: np.ndarray, k: int, seed: int, iterations: int = 8) -> np.ndarray:
    """Unit centroids (k, d): the algorithm of :func:`colbert.codebook.train` (≤ 64·k sampled tokens, 8 rounds,
    an empty cluster keeps its centroid), in numpy."""
    rng = np.random.default_rng(seed)
    if x.shape[0] > 64 * k:
        x = x[np.sort(rng.choice(x.shape[0], 64 * k, replace=False))]
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    c = unit[np.sort(rng.choice(x.shape[0], k, replace=False))].copy()
    for _ in range(iterations):
        a = assign(unit, c)
        sums = _sums(a, unit, k)
        filled = np.bincount(a, minlength=k) > 0
        norms = np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
        c = np.where(filled[:, None], sums / norms, c).astype(np.float32)
    return c


def _kmeans_l2(x: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 12) -> np.ndarray:
    """Plain (Euclidean) k-means of low-dimensional rows: PQ's sub-codebooks."""
    c = x[rng.choice(x.shape[0], k, replace=False)].copy()
    for _ in range(iterations):
        a = _nearest(x, c)
        sums = _sums(a, x, k)
        count = np.bincount(a, minlength=k)
        c = np.where(count[:, None] > 0, sums / np.maximum(count, 1)[:, None], c).astype(np.float32)
    return c


def _nearest(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    return ((c * c).sum(axis=1)[None, :] - 2.0 * (x @ c.T)).argmin(axis=1)


def _rotation(kind: str, y: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """An orthogonal (d, d) matrix applied as ``y @ R`` (None: identity)."""
    d = y.shape[1]
    if kind == "none":
        return None
    if kind == "random":
        q, r = np.linalg.qr(rng.standard_normal((d, d)))
        return (q * np.sign(np.diag(r))).astype(np.float32)
    _, _, vt = np.linalg.svd(y - y.mean(axis=0), full_matrices=False)
    pca = vt.T.astype(np.float64)  # (d, d) principal axes as columns
    if kind == "pca":
        return pca.astype(np.float32)
    v = (y - y.mean(axis=0)) @ pca
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    for _ in range(30):  # ITQ: alternate the binary codes and the orthogonal Procrustes rotation
        b = np.sign(v @ q)
        u, _, wt = np.linalg.svd(v.T @ b)
        q = u @ wt
    return (pca @ q).astype(np.float32)


@dataclass(frozen=True)
class Spec:
    base: str = "kmeans"  # "mean" | "kmeans"
    rotation: str = "none"  # "none" | "random" | "pca" | "itq"
    code: str = "s1"  # "s1" | "s2" | "pq8" | "pq4"
    scale: bool = False

    def row_bytes(self, d: int) -> int:
        per = {"s1": d // 8, "s2": d // 4, "pq8": d // 8, "pq4": d // 4}[self.code]
        return (2 if self.base == "kmeans" else 0) + per + (1 if self.scale else 0)


@dataclass
class Coder:
    spec: Spec
    centroids: np.ndarray  # (K, d); K = 1 (the mean) for base "mean"
    rotation: np.ndarray | None
    cutoffs: np.ndarray | None = None  # (d, levels − 1) scalar codes
    values: np.ndarray | None = None  # (d, levels)
    sub: np.ndarray | None = None  # (d / m, 256, m) PQ sub-codebooks
    scale_range: tuple[float, float] = (0.0, 1.0)

    @property
    def row_bytes(self) -> int:
        return self.spec.row_bytes(self.centroids.shape[1])

    def ids(self, x: np.ndarray) -> np.ndarray:
        if self.centroids.shape[0] == 1:
            return np.zeros(x.shape[0], dtype=np.int64)
        return assign(x, self.centroids)

    def _rotated(self, x: np.ndarray, ids: np.ndarray) -> np.ndarray:
        y = x - self.centroids[ids]
        return y if self.rotation is None else y @ self.rotation

    def quantise(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(codes, scale bytes or None) of rotated residuals y (n, d)."""
        if self.sub is not None:
            m = self.sub.shape[2]
            codes = np.stack([_nearest(y[:, j * m : (j + 1) * m], s) for j, s in enumerate(self.sub)], axis=1)
        else:
            assert self.cutoffs is not None
            codes = (y[:, :, None] > self.cutoffs[None]).sum(axis=2)
        if not self.spec.scale:
            return codes.astype(np.uint8), None
        yh = self._levels(codes)
        s = (y * yh).sum(axis=1) / np.maximum((yh * yh).sum(axis=1), 1e-12)
        lo, hi = self.scale_range
        return codes.astype(np.uint8), np.clip(np.rint((s - lo) / (hi - lo) * 255), 0, 255).astype(np.uint8)

    def _levels(self, codes: np.ndarray) -> np.ndarray:
        if self.sub is not None:
            return np.concatenate([s[codes[:, j]] for j, s in enumerate(self.sub)], axis=1)
        assert self.values is not None
        return self.values[np.arange(codes.shape[1])[None, :], codes]

    def encode(self, x: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        codes, scale = self.quantise(self._rotated(x, ids))
        return ids, codes, scale

    def decode(self, ids: np.ndarray, codes: np.ndarray, scale: np.ndarray | None) -> np.ndarray:
        yh = self._levels(codes)
        if scale is not None:
            lo, hi = self.scale_range
            yh = yh * (lo + scale.astype(np.float32)[:, None] / 255 * (hi - lo))
        if self.rotation is not None:
            yh = yh @ self.rotation.T
        out: np.ndarray = (self.centroids[ids] + yh).astype(np.float32)
        return out


def train_coder(spec: Spec, sample: np.ndarray, centroids: np.ndarray, seed: int) -> Coder:
    """A coder of ``spec`` trained on ``sample`` (T, d) over ``centroids`` (K, d: the k-means centroids for base
    ``kmeans``, the sample mean (1, d) for base ``mean``)."""
    rng = np.random.default_rng(seed)
    coder = Coder(spec, centroids, None)
    ids = coder.ids(sample)
    coder.rotation = _rotation(spec.rotation, sample - centroids[ids], rng)
    y = coder._rotated(sample, ids)
    if spec.code.startswith("pq"):
        m = int(spec.code[2:])
        part = y[rng.choice(y.shape[0], min(65536, y.shape[0]), replace=False)]
        coder.sub = np.stack([_kmeans_l2(part[:, j : j + m], 256, rng) for j in range(0, y.shape[1], m)])
    else:
        levels = 2 if spec.code == "s1" else 4
        coder.cutoffs = np.quantile(y, np.arange(1, levels) / levels, axis=0).T.astype(np.float32)
        codes = (y[:, :, None] > coder.cutoffs[None]).sum(axis=2)
        values = np.zeros((y.shape[1], levels), dtype=np.float32)
        for level in range(levels):
            inside = codes == level
            values[:, level] = np.where(inside, y, 0).sum(axis=0) / np.maximum(inside.sum(axis=0), 1)
        coder.values = values
    if spec.scale:
        yh = _unscaled_levels(coder, y)
        s = (y * yh).sum(axis=1) / np.maximum((yh * yh).sum(axis=1), 1e-12)
        coder.scale_range = (float(np.quantile(s, 0.001)), float(np.quantile(s, 0.999)))
    return coder


def _unscaled_levels(coder: Coder, y: np.ndarray) -> np.ndarray:
    """The decoded residual of ``y`` before any scale (for fitting the scale byte's range)."""
    plain = Coder(Spec(coder.spec.base, coder.spec.rotation, coder.spec.code, False), coder.centroids, None)
    plain.cutoffs, plain.values, plain.sub = coder.cutoffs, coder.values, coder.sub
    return plain._levels(plain.quantise(y)[0])
