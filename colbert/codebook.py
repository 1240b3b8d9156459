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

**Product quantization of the residual** (``width`` in :data:`PQ_WIDTHS`, ``levels`` = :data:`PQ_LEVELS`): the
residual is cut into subvectors of ``width`` dimensions (the last zero-padded) and each is stored as one byte,
the index of its nearest (L2) of 256 sub-centroids learned per subvector by k-means over the training residuals
(``values`` then holds them, shape (d / width, 256, width); there are no cutoffs). At d = 128: 2 + 32 = **34
bytes** (width 4, 2 bits per dimension) or 2 + 16 = **18** (width 8, 1 bit), the sizes of 4 and 2 buckets, with
less error for the same bytes on clustered tokens (``bench/codec_study.py``: real-page vectors, agreement@10 with
float32 MaxSim 0.85 against 0.60 at 34 bytes, 0.77 against 0.58 at 18). The scorer's byte tables hold
⟨q_subvector, sub-centroid⟩, so the same kernel scores both codes.

Stored format (:meth:`Codebook.to_bytes`): version 1 (``jev4-codebook-1``, header K, d, bits) for 2 and 4 levels —
the only version older builds read, so collections of those codecs stay readable by them — and version 2
(``jev4-codebook-2``, header K, d, levels) for 3 and 16 levels, version 3 (``jev4-codebook-3``, header K, d,
width, then the centroids and the sub-centroids) for product quantization. All are read.

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

__all__ = [
    "LEVELS",
    "MAX_CENTROIDS",
    "PER_BYTE",
    "PQ_LEVELS",
    "PQ_WIDTHS",
    "Codebook",
    "choose_k",
    "place_values",
    "row_bytes",
    "train",
]

FloatArray = npt.NDArray[np.float32]
MAX_CENTROIDS = 4096
_SAMPLE_PER_CENTROID = 64  # training tokens sampled per centroid (k-means cost ∝ sample × K)
_ITERATIONS = 8
_MAGIC_V1 = b"jev4-codebook-1\n"  # header K, d, bits (levels 2 and 4)
_MAGIC_V2 = b"jev4-codebook-2\n"  # header K, d, levels
_MAGIC_V3 = b"jev4-codebook-3\n"  # header K, d, width: product quantization (256 sub-centroids per subvector)
PER_BYTE = {2: 8, 3: 5, 4: 4, 16: 2}  # bucket levels → dimensions packed per byte
LEVELS = tuple(PER_BYTE)
PQ_LEVELS = 256  # product quantization: one byte per subvector, naming one of 256 sub-centroids
PQ_WIDTHS = (4, 8)  # dimensions per subvector: 2 or 1 bits per dimension
_PQ_SAMPLE = 65536  # residuals the sub-centroids are trained on
_PQ_ITERATIONS = 12
_PQ_BLOCK = 1024  # rows coded per batched GEMM (bounds the (subvectors, rows, 256) distance array: 32 MiB at d = 128)
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


def row_bytes(levels: int, d: int, width: int = 1) -> int:
    """Stored bytes per token: a uint16 centroid id and ``ceil(d / PER_BYTE[levels])`` bytes of bucket codes, or
    with product quantization (``width`` > 1) one byte per ``width``-dimension subvector.

    >>> [row_bytes(levels, 128) for levels in (16, 4, 3, 2)] + [row_bytes(PQ_LEVELS, 128, w) for w in PQ_WIDTHS]
    [66, 34, 28, 18, 34, 18]
    """
    return 2 + -(-d // (width if width > 1 else PER_BYTE[levels]))


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
        if not 1 <= k <= 65536:
            raise CodecError(f"codebook: 1..65536 centroids, got K={k}")
        if self.values.ndim == 3:  # product quantization: values are (subvectors, 256, width) sub-centroids
            width = int(self.values.shape[2])
            want = (-(-d // max(width, 1)), PQ_LEVELS, width)
            if self.levels != PQ_LEVELS or width not in PQ_WIDTHS or self.values.shape != want or self.cutoffs.size:
                raise CodecError(f"codebook: product quantization sub-centroids {self.values.shape} do not fit d={d}")
            return
        levels = self.levels
        if levels not in PER_BYTE:
            raise CodecError(f"codebook: levels must be one of {LEVELS}, got {levels}")
        if self.cutoffs.shape != (d, levels - 1) or self.values.shape != (d, levels):
            raise CodecError(f"codebook: cutoffs {self.cutoffs.shape} / values {self.values.shape} do not fit d={d}")

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    @property
    def width(self) -> int:
        """Dimensions one code covers: 1 for bucket codes, the subvector width for product quantization."""
        return int(self.values.shape[2]) if self.values.ndim == 3 else 1

    @property
    def code_bytes(self) -> int:
        """Bytes of residual codes per token."""
        return row_bytes(self.levels, self.dim, self.width) - 2

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
        if self.width > 1:
            return ids.astype("<u2").tobytes() + _pq_codes(residual, self.values).tobytes()
        codes = np.zeros((x.shape[0], self.dim), dtype=np.uint8)
        for level in range(self.cutoffs.shape[1]):  # code = number of cutoffs below the residual
            codes += residual > self.cutoffs[:, level]
        return ids.astype("<u2").tobytes() + _pack(codes, self.levels).tobytes()

    def split(
        self, data: bytes | bytearray | memoryview, n: int
    ) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint8]]:
        """A blob of ``n`` tokens as (ids (n,) uint16, codes (n, code_bytes) uint8), without copying."""
        expected = n * row_bytes(self.levels, self.dim, self.width)
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
        if self.width > 1:  # each byte names one sub-centroid of its subvector
            parts = self.values[np.arange(self.code_bytes)[None, :], packed]  # (n, subvectors, width)
            res = parts.reshape(packed.shape[0], self.code_bytes * self.width)[:, : self.dim]  # (n, d)
        else:
            codes = _unpack(packed, self.levels, self.dim)  # (n, d)
            res = self.values[np.arange(self.dim)[None, :], codes]  # (n, d)
        out: FloatArray = (self.centroids[ids.astype(np.int64)] + res).astype(np.float32)
        return out

    def to_bytes(self) -> bytes:
        """The codebook as one blob (what the index stores): a magic line, K, d and bits (version 1: 2 or 4
        levels) or levels (version 2) as little-endian int32, then the centroids, cutoffs and values as
        little-endian float32 (deterministic: equal codebooks, equal bytes)."""
        if self.width > 1:
            head = _MAGIC_V3 + np.array([self.k, self.dim, self.width], dtype="<i4").tobytes()
        elif self.levels in (2, 4):
            head = _MAGIC_V1 + np.array([self.k, self.dim, self.levels.bit_length() - 1], dtype="<i4").tobytes()
        else:
            head = _MAGIC_V2 + np.array([self.k, self.dim, self.levels], dtype="<i4").tobytes()
        arrays = (self.centroids, self.cutoffs, self.values)
        return head + b"".join(np.ascontiguousarray(a, dtype="<f4").tobytes() for a in arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> Codebook:
        """The codebook :meth:`to_bytes` wrote (any version); ``CodecError`` for anything else."""
        magic = data[: len(_MAGIC_V1)]
        start = len(_MAGIC_V1) + 12
        if magic not in (_MAGIC_V1, _MAGIC_V2, _MAGIC_V3) or len(data) < start:
            raise CodecError("damaged codebook blob (no codebook header)")
        k, d, field = (int(v) for v in np.frombuffer(data[len(magic) : start], dtype="<i4"))
        if magic == _MAGIC_V3:
            return cls._from_pq_bytes(data[start:], k, d, field)
        levels = (1 << field if field in (1, 2) else 0) if magic == _MAGIC_V1 else field
        if levels not in PER_BYTE or not (1 <= k <= 65536 and 1 <= d <= 65536):
            raise CodecError(f"damaged codebook blob (K={k}, d={d}, {magic[5:-1].decode()} field {field})")
        sizes = (k * d, d * (levels - 1), d * levels)
        if len(data) != start + 4 * sum(sizes):
            raise CodecError(f"damaged codebook blob ({len(data)} bytes for K={k}, d={d}, {levels} levels)")
        flat = np.frombuffer(data[start:], dtype="<f4").astype(np.float32)
        a, b = sizes[0], sizes[0] + sizes[1]
        return cls(flat[:a].reshape(k, d), levels, flat[a:b].reshape(d, levels - 1), flat[b:].reshape(d, levels))

    @classmethod
    def _from_pq_bytes(cls, body: bytes, k: int, d: int, width: int) -> Codebook:
        if width not in PQ_WIDTHS or not (1 <= k <= 65536 and 1 <= d <= 65536):
            raise CodecError(f"damaged codebook blob (K={k}, d={d}, product quantization width {width})")
        sub = (-(-d // width), PQ_LEVELS, width)
        if len(body) != 4 * (k * d + math.prod(sub)):
            raise CodecError(f"damaged codebook blob ({len(body)} body bytes for K={k}, d={d}, width {width})")
        flat = np.frombuffer(body, dtype="<f4").astype(np.float32)
        empty = np.zeros((0, 0), dtype=np.float32)
        return cls(flat[: k * d].reshape(k, d), PQ_LEVELS, empty, flat[k * d :].reshape(sub))


def place_values(levels: int) -> npt.NDArray[np.int64]:
    """The weight of each slot of a byte, first (most significant) slot first: ``levels^(per − 1 − slot)``."""
    per = PER_BYTE[levels]
    return levels ** np.arange(per - 1, -1, -1, dtype=np.int64)  # (per,)


def _pack(codes: npt.NDArray[np.uint8], levels: int) -> npt.NDArray[np.uint8]:
    """(n, d) codes < levels → (n, ceil(d / PER_BYTE[levels])) bytes in base ``levels``, first dimension first."""
    per = PER_BYTE[levels]
    n, d = codes.shape
    padded = np.zeros((n, -(-d // per) * per), dtype=np.uint8)
    padded[:, :d] = codes
    groups = padded.reshape(n, padded.shape[1] // per, per)  # (n, bytes, per)
    out: npt.NDArray[np.uint8] = groups[:, :, 0].copy()  # (n, bytes)
    for slot in range(1, per):  # Horner in uint8: every partial value is at most the final byte (< 256)
        out *= np.uint8(levels)
        out += groups[:, :, slot]
    return out


def _unpack(packed: npt.NDArray[np.uint8], levels: int, d: int) -> npt.NDArray[np.intp]:
    per = PER_BYTE[levels]
    codes = (packed[:, :, None].astype(np.intp) // place_values(levels)) % levels  # (n, bytes, per)
    out: npt.NDArray[np.intp] = codes.reshape(packed.shape[0], packed.shape[1] * per)[:, :d]
    return out


def _split_residual(residual: FloatArray, subvectors: int, width: int) -> FloatArray:
    """(n, d) → (n, subvectors, width), zero-padded past d."""
    padded = np.zeros((residual.shape[0], subvectors * width), dtype=np.float32)
    padded[:, : residual.shape[1]] = residual
    return padded.reshape(residual.shape[0], subvectors, width)


def _pq_codes(residual: FloatArray, sub: FloatArray) -> npt.NDArray[np.uint8]:
    """The nearest sub-centroid (L2) of each subvector: (n, d) residuals, (subvectors, 256, width) → (n, subvectors)."""
    parts = _split_residual(residual, sub.shape[0], sub.shape[2])  # (n, m, w)
    codes = np.empty(parts.shape[:2], dtype=np.uint8)
    norms = (sub * sub).sum(axis=2)[:, None, :]  # (m, 1, 256)
    sub_t = np.ascontiguousarray(sub.transpose(0, 2, 1))  # (m, w, 256)
    for start in range(0, parts.shape[0], _PQ_BLOCK):
        block = np.ascontiguousarray(parts[start : start + _PQ_BLOCK].transpose(1, 0, 2))  # (m, b, w)
        dist = norms - 2.0 * np.matmul(block, sub_t)  # (m, b, 256): |c|² − 2⟨x, c⟩, the row's |x|² left out
        codes[start : start + block.shape[1]] = dist.argmin(axis=2).T
    return codes


def _train_pq(residual: FloatArray, width: int, rng: np.random.Generator) -> FloatArray:
    """(subvectors, 256, width) sub-centroids: Euclidean k-means of each subvector of at most 65,536 sampled
    residuals (fewer distinct training rows than 256: the extra sub-centroids repeat the first ones, never chosen)."""
    if residual.shape[0] > _PQ_SAMPLE:
        residual = residual[np.sort(rng.choice(residual.shape[0], _PQ_SAMPLE, replace=False))]
    m = -(-residual.shape[1] // width)
    parts = _split_residual(residual, m, width)  # (S, m, w)
    n_init = min(PQ_LEVELS, parts.shape[0])
    out = np.empty((m, PQ_LEVELS, width), dtype=np.float32)
    for j in range(m):
        x = parts[:, j]  # (S, w)
        c = x[np.sort(rng.choice(x.shape[0], n_init, replace=False))].copy()  # (n_init, w)
        for _ in range(_PQ_ITERATIONS):
            a = ((c * c).sum(axis=1)[None, :] - 2.0 * (x @ c.T)).argmin(axis=1)  # (S,)
            count = np.bincount(a, minlength=n_init)
            sums = np.stack([np.bincount(a, weights=x[:, t], minlength=n_init) for t in range(width)], axis=1)
            c = np.where(count[:, None] > 0, sums / np.maximum(count, 1)[:, None], c).astype(np.float32)
        out[j] = np.resize(c, (PQ_LEVELS, width))  # n_init < 256: repeat (argmin picks the first copy)
    return out


def train(tokens: npt.ArrayLike, levels: int, *, k: int | None = None, seed: int = 0, width: int = 1) -> Codebook:
    """A codebook for ``tokens`` (T, d): ``k`` (default :func:`choose_k` of T) spherical k-means centroids over a
    sample of at most 64·k tokens, then the residual code learned from that sample's residuals — ``levels``
    buckets per dimension (cutoffs and bucket values), or with ``width`` in :data:`PQ_WIDTHS` (and ``levels`` =
    :data:`PQ_LEVELS`) product quantization: 256 sub-centroids per ``width``-dimension subvector. Deterministic
    for a given ``seed``."""
    if width != 1 and (width not in PQ_WIDTHS or levels != PQ_LEVELS):
        raise CodecError(f"product quantization takes {PQ_LEVELS} levels and a width in {PQ_WIDTHS}, got {width}")
    if width == 1 and levels not in PER_BYTE:
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
    placeholder = Codebook(c, 2, np.zeros((c.shape[1], 1), np.float32), np.zeros((c.shape[1], 2), np.float32))
    residual = x - c[placeholder.assign(x)]  # (S, d)
    if width > 1:
        return Codebook(c, PQ_LEVELS, np.zeros((0, 0), np.float32), _train_pq(residual, width, rng))
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
