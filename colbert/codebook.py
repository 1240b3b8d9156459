"""A collection's codebook and the PLAID-style residual codecs (``residual4``, ``residual2``, ``residual3t``,
``residual1``) built on it.

A codebook is ``K`` k-means centroids of the collection's tokens (spherical k-means: unit centroids, a token is
assigned to the centroid of highest dot product, which for unit tokens is the nearest one) plus, per dimension,
``levels`` bucket values and ``levels − 1`` cutoffs learned from the training tokens' residuals (token minus its
centroid): the cutoffs are the residual's per-dimension quantiles at ``i / levels`` (equal-population buckets,
not uniform steps), each bucket value is the mean of the training residuals that fall in its bucket (the
MSE-optimal value for those cutoffs).

A token is stored as its centroid id (uint16) and one bucket code per dimension, packed into bytes in base
``levels``, first dimension most significant (:data:`PER_BYTE` dimensions per byte: 2 for 16 levels, 4 for 4, 5
for 3 (3^5 = 243 ≤ 256), 8 for 2; the last byte is zero-padded when ``d`` is not a multiple). For power-of-two
levels that is plain MSB-first bit packing. At d = 128: 2 + 64 = **66 bytes** (``residual4``, 16 levels),
2 + 32 = **34** (``residual2``, 4 levels), 2 + 26 = **28** (``residual3t``, ternary), 2 + 16 = **18**
(``residual1``, 2 levels) per token, against 132 for int8 and 256 for float16.
It decodes to ``centroid + bucket_value[dim, code]`` per dimension, **not** re-normalised: scoring uses exactly
these decoded values (:mod:`colbert.residual`), so search is exact with respect to what is stored.

Stored format (:meth:`Codebook.to_bytes`): version 1 (``jev4-codebook-1``, header K, d, bits) for 2 and 4 levels —
the only version older builds read, so collections of those codecs stay readable by them — and version 2
(``jev4-codebook-2``, header K, d, levels) for 3 and 16 levels. Both are read.

``K`` (:func:`choose_k`): ``2^floor(log2(min(16·√T, T/8)))`` for ``T`` training tokens (PLAID's 16·√T, and at
least 8 training tokens per centroid so that the residual buckets are learned from real residuals), at most
:data:`MAX_CENTROIDS` (4,096), which bounds the training cost on a small machine (k-means over ``≤ 64·K`` sampled
tokens, 8 rounds: ~10 s on 2 cores at K = 4,096) and the per-query centroid table (K × Lq floats).

Worked example (hand-built, two centroids, 1 bit):

>>> book = Codebook(
...     centroids=np.array([[1, 0], [0, 1]], dtype=np.float32), levels=2,
...     cutoffs=np.zeros((2, 1), dtype=np.float32), values=np.array([[-0.1, 0.1], [-0.2, 0.2]], dtype=np.float32))
>>> blob = book.encode(np.array([[0.9, 0.3]], dtype=np.float32))  # centroid 0, residual (−0.1, +0.3)
>>> len(blob), book.decode(blob, 1).astype(float).round(3).tolist()          # 2-byte id + 1 byte of codes
(3, [[0.9, 0.2]])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from colbert.errors import CodecError

__all__ = ["LEVELS", "MAX_CENTROIDS", "PER_BYTE", "Codebook", "choose_k", "place_values", "row_bytes", "train"]

FloatArray = npt.NDArray[np.float32]
MAX_CENTROIDS = 4096
_SAMPLE_PER_CENTROID = 64  # training tokens sampled per centroid (k-means cost ∝ sample × K)
_ITERATIONS = 8
_MAGIC_V1 = b"jev4-codebook-1\n"  # header K, d, bits (levels 2 and 4)
_MAGIC_V2 = b"jev4-codebook-2\n"  # header K, d, levels
PER_BYTE = {2: 8, 3: 5, 4: 4, 16: 2}  # bucket levels → dimensions packed per byte
LEVELS = tuple(PER_BYTE)
_ASSIGN_BLOCK = 16384  # tokens assigned per GEMM (bounds the (block, K) similarity matrix)


def choose_k(n_tokens: int) -> int:
    """Centroids for a training set of ``n_tokens`` (module docstring).

    >>> [choose_k(t) for t in (10, 768, 7_680, 768_000, 76_800_000)]
    [1, 64, 512, 4096, 4096]
    """
    if n_tokens < 1:
        raise CodecError("a codebook needs at least one training token")
    k = 2 ** math.floor(math.log2(max(1.0, min(16 * math.sqrt(n_tokens), n_tokens / 8))))
    return int(min(k, MAX_CENTROIDS))


def row_bytes(levels: int, d: int) -> int:
    """Stored bytes per token: a uint16 centroid id and ``ceil(d / PER_BYTE[levels])`` bytes of bucket codes.

    >>> [row_bytes(levels, 128) for levels in (16, 4, 3, 2)]
    [66, 34, 28, 18]
    """
    return 2 + -(-d // PER_BYTE[levels])


@dataclass(frozen=True, eq=False)
class Codebook:
    """Centroids (K, d) float32, ``levels`` buckets per residual dimension, per-dimension ``cutoffs``
    (d, levels − 1) and bucket ``values`` (d, levels), all float32 (module docstring)."""

    centroids: FloatArray
    levels: int
    cutoffs: FloatArray
    values: FloatArray

    def __post_init__(self) -> None:
        k, d = self.centroids.shape
        levels = self.levels
        if levels not in PER_BYTE or not 1 <= k <= 65536:
            raise CodecError(f"codebook: levels must be one of {LEVELS} and 1..65536 centroids, got {levels}, K={k}")
        if self.cutoffs.shape != (d, levels - 1) or self.values.shape != (d, levels):
            raise CodecError(f"codebook: cutoffs {self.cutoffs.shape} / values {self.values.shape} do not fit d={d}")

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    @property
    def code_bytes(self) -> int:
        """Bytes of bucket codes per token."""
        return row_bytes(self.levels, self.dim) - 2

    def assign(self, x: FloatArray) -> npt.NDArray[np.int64]:
        """The centroid id of each row of ``x`` (n, d): the highest dot product (blocks of rows per GEMM)."""
        ct = np.ascontiguousarray(self.centroids.T)  # (d, K); numpy's GEMM + argmax: ~2× torch's on one core
        out = np.empty(x.shape[0], dtype=np.int64)
        for start in range(0, x.shape[0], _ASSIGN_BLOCK):
            block = np.ascontiguousarray(x[start : start + _ASSIGN_BLOCK], dtype=np.float32)
            out[start : start + block.shape[0]] = (block @ ct).argmax(axis=1)
        return out

    def encode(self, mv: npt.ArrayLike, ids: npt.NDArray[np.int64] | None = None) -> bytes:
        """(n, d) floats → n uint16 centroid ids (little endian), then n × :attr:`code_bytes` packed codes;
        ``ids``: each row's centroid when the caller chose them (default: :meth:`assign`)."""
        x = np.ascontiguousarray(mv, dtype=np.float32)  # (n, d)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise CodecError(f"expected an (n, {self.dim}) array, got shape {x.shape}")
        ids = self.assign(x) if ids is None else ids  # (n,)
        residual = x - self.centroids[ids]  # (n, d)
        codes = np.zeros((x.shape[0], self.dim), dtype=np.uint8)
        for level in range(self.cutoffs.shape[1]):  # code = number of cutoffs below the residual
            codes += residual > self.cutoffs[:, level]
        return ids.astype("<u2").tobytes() + _pack(codes, self.levels).tobytes()

    def split(
        self, data: bytes | bytearray | memoryview, n: int
    ) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint8]]:
        """A blob of ``n`` tokens as (ids (n,) uint16, codes (n, code_bytes) uint8), without copying."""
        expected = n * row_bytes(self.levels, self.dim)
        if len(data) != expected:
            raise CodecError(f"residual data for {n}×{self.dim} must be {expected} bytes, got {len(data)}")
        buf = memoryview(data)
        ids = np.frombuffer(buf[: 2 * n], dtype="<u2")  # (n,)
        codes = np.frombuffer(buf[2 * n :], dtype=np.uint8).reshape(n, self.code_bytes)  # (n, code_bytes)
        if n and int(ids.max()) >= self.k:
            raise CodecError(f"centroid id {int(ids.max())} is out of this codebook's range (K={self.k})")
        return ids, codes

    def decode(self, data: bytes | bytearray | memoryview, n: int) -> FloatArray:
        """The stored values of ``n`` tokens: centroid + per-dimension bucket value (n, d) float32."""
        ids, packed = self.split(data, n)
        return self.decode_parts(ids, packed)

    def decode_parts(self, ids: npt.NDArray[np.integer], packed: npt.NDArray[np.uint8]) -> FloatArray:
        codes = _unpack(packed, self.levels, self.dim)  # (n, d)
        res = self.values[np.arange(self.dim)[None, :], codes]  # (n, d)
        out: FloatArray = (self.centroids[ids.astype(np.int64)] + res).astype(np.float32)
        return out

    def to_bytes(self) -> bytes:
        """The codebook as one blob (what the index stores): a magic line, K, d and bits (version 1: 2 or 4
        levels) or levels (version 2) as little-endian int32, then the centroids, cutoffs and values as
        little-endian float32 (deterministic: equal codebooks, equal bytes)."""
        if self.levels in (2, 4):
            head = _MAGIC_V1 + np.array([self.k, self.dim, self.levels.bit_length() - 1], dtype="<i4").tobytes()
        else:
            head = _MAGIC_V2 + np.array([self.k, self.dim, self.levels], dtype="<i4").tobytes()
        arrays = (self.centroids, self.cutoffs, self.values)
        return head + b"".join(np.ascontiguousarray(a, dtype="<f4").tobytes() for a in arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> Codebook:
        """The codebook :meth:`to_bytes` wrote (either version); ``CodecError`` for anything else."""
        magic = data[: len(_MAGIC_V1)]
        start = len(_MAGIC_V1) + 12
        if magic not in (_MAGIC_V1, _MAGIC_V2) or len(data) < start:
            raise CodecError("damaged codebook blob (no codebook header)")
        k, d, field = (int(v) for v in np.frombuffer(data[len(magic) : start], dtype="<i4"))
        levels = (1 << field if field in (1, 2) else 0) if magic == _MAGIC_V1 else field
        if levels not in PER_BYTE or not (1 <= k <= 65536 and 1 <= d <= 65536):
            raise CodecError(f"damaged codebook blob (K={k}, d={d}, {magic[5:-1].decode()} field {field})")
        sizes = (k * d, d * (levels - 1), d * levels)
        if len(data) != start + 4 * sum(sizes):
            raise CodecError(f"damaged codebook blob ({len(data)} bytes for K={k}, d={d}, {levels} levels)")
        flat = np.frombuffer(data[start:], dtype="<f4").astype(np.float32)
        a, b = sizes[0], sizes[0] + sizes[1]
        return cls(flat[:a].reshape(k, d), levels, flat[a:b].reshape(d, levels - 1), flat[b:].reshape(d, levels))


def place_values(levels: int) -> npt.NDArray[np.int64]:
    """The weight of each slot of a byte, first (most significant) slot first: ``levels^(per − 1 − slot)``."""
    per = PER_BYTE[levels]
    return levels ** np.arange(per - 1, -1, -1, dtype=np.int64)  # (per,)


def _pack(codes: npt.NDArray[np.uint8], levels: int) -> npt.NDArray[np.uint8]:
    """(n, d) codes < levels → (n, ceil(d / PER_BYTE[levels])) bytes in base ``levels``, first dimension first."""
    per = PER_BYTE[levels]
    n, d = codes.shape
    padded = np.zeros((n, -(-d // per) * per), dtype=np.int64)
    padded[:, :d] = codes
    groups = padded.reshape(n, padded.shape[1] // per, per)  # (n, bytes, per)
    out: npt.NDArray[np.uint8] = (groups @ place_values(levels)).astype(np.uint8)  # (n, bytes), each < 256
    return out


def _unpack(packed: npt.NDArray[np.uint8], levels: int, d: int) -> npt.NDArray[np.intp]:
    per = PER_BYTE[levels]
    codes = (packed[:, :, None].astype(np.intp) // place_values(levels)) % levels  # (n, bytes, per)
    out: npt.NDArray[np.intp] = codes.reshape(packed.shape[0], packed.shape[1] * per)[:, :d]
    return out


def train(tokens: npt.ArrayLike, levels: int, *, k: int | None = None, seed: int = 0) -> Codebook:
    """A codebook for ``tokens`` (T, d) with ``levels`` buckets per dimension: ``k`` (default :func:`choose_k` of
    T) spherical k-means centroids over a sample of at most 64·k tokens, then the residual cutoffs and bucket values
    of that sample; deterministic for a given ``seed``."""
    if levels not in PER_BYTE:
        raise CodecError(f"levels must be one of {LEVELS}, got {levels}")
    x = np.ascontiguousarray(tokens, dtype=np.float32)  # (T, d)
    if x.ndim != 2 or x.shape[0] == 0:
        raise CodecError(f"training tokens must be a non-empty (T, d) array, got shape {x.shape}")
    k = choose_k(x.shape[0]) if k is None else min(int(k), x.shape[0])
    rng = np.random.default_rng(seed)
    if x.shape[0] > _SAMPLE_PER_CENTROID * k:
        x = x[np.sort(rng.choice(x.shape[0], _SAMPLE_PER_CENTROID * k, replace=False))]
    unit = torch.from_numpy(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12))  # (S, d)
    centroids = unit[torch.from_numpy(np.sort(rng.choice(x.shape[0], k, replace=False)))].clone()  # (k, d)
    for _ in range(_ITERATIONS):
        assign = (unit @ centroids.T).argmax(dim=1)  # (S,)
        sums = torch.zeros_like(centroids).index_add_(0, assign, unit)  # (k, d)
        filled = torch.bincount(assign, minlength=k) > 0  # an empty cluster keeps its centroid
        centroids = torch.where(filled[:, None], torch.nn.functional.normalize(sums, dim=1), centroids)
    c = np.ascontiguousarray(centroids.numpy(), dtype=np.float32)
    placeholder = Codebook(
        c, levels, np.zeros((c.shape[1], levels - 1), np.float32), np.zeros((c.shape[1], levels), np.float32)
    )
    residual = x - c[placeholder.assign(x)]  # (S, d)
    cutoffs = np.quantile(residual, np.arange(1, levels) / levels, axis=0).T.astype(np.float32)  # (d, levels − 1)
    codes = (residual[:, :, None] > cutoffs[None]).sum(axis=2)  # (S, d)
    values = np.zeros((c.shape[1], levels), dtype=np.float32)
    for level in range(levels):
        inside = codes == level  # (S, d)
        count = inside.sum(axis=0)  # (d,)
        mean = np.where(inside, residual, 0).sum(axis=0) / np.maximum(count, 1)
        middle = np.quantile(residual, (level + 0.5) / levels, axis=0)  # an empty bucket: its quantile midpoint
        values[:, level] = np.where(count > 0, mean, middle)
    return Codebook(c, levels, cutoffs, values)
