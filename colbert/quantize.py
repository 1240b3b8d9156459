"""Storage codecs for multi-vectors (one page = an (n, d) float32 array of L2-normalised rows).

=========  ===============  ============================================================================
codec      bytes per row    decode(encode(x)) error
=========  ===============  ============================================================================
float32    4·d              exact
float16    2·d              |Δ| ≤ 2⁻¹¹·|x| per component (round to nearest half), ≤ 4.9e-4 for unit rows
int8       d + 4            per-row symmetric scale s = max|x|/127 stored as float32; |Δ| ≤ s/2 per component
binary     d/8              sign bits only (x > 0 → 1, MSB first, ``numpy.packbits``); decodes to ±1/√d, the
                            unit vector of those signs — a lossy code: the float query is scored against the
                            signs (the "float query × binary document" scheme, ~2 nDCG points below float
                            on ColPali per Vespa's measurements)
residual2  2 + d/4          PLAID-style: a centroid id of the collection's codebook + a 2-bit bucket code per
                            dimension (:mod:`colbert.codebook`); decodes to centroid + the dimension's bucket
                            value, not re-normalised; the residual is within its bucket's cutoffs
residual1  2 + d/8          as residual2 with 1 bit per dimension (2 buckets)
residualpq2  2 + d/4        a centroid id + one byte per 4-dimension subvector of the residual: the nearest
                            of the codebook's 256 sub-centroids for that subvector (product quantization,
                            2 bits per dimension); decodes to centroid + the chosen sub-centroids
residualpq1  2 + d/8        as residualpq2 with 8-dimension subvectors (1 bit per dimension)
=========  ===============  ============================================================================

The residual codecs need the collection's codebook: encode and decode them with
:class:`colbert.codebook.Codebook` (this module's :func:`encode` / :func:`decode` raise ``CodecError`` for them).

>>> x = np.array([[0.6, -0.8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]], dtype=np.float32)
>>> decode(encode(x, Codec.FLOAT32), 1, 8, Codec.FLOAT32).tolist() == x.tolist()
True
>>> np.sign(decode(encode(x, "binary"), 1, 8, "binary")[0, :3])      # only the signs survive (0 → −)
array([ 1., -1., -1.], dtype=float32)
>>> len(encode(x, Codec.INT8))                                            # 4-byte scale + 8 int8 codes
12
"""

from __future__ import annotations

import enum

import numpy as np
import numpy.typing as npt

from colbert.codebook import PQ_LEVELS, Codebook, row_bytes, train
from colbert.errors import CodecError

__all__ = [
    "CODEBOOK_FREE",
    "RESIDUAL_CODES",
    "Codec",
    "bytes_per_row",
    "checked_codec",
    "decode",
    "encode",
    "needs_codebook",
    "train_codebook",
]

FloatArray = npt.NDArray[np.float32]


class Codec(enum.StrEnum):
    """How a stored multi-vector is encoded."""

    FLOAT32 = "float32"
    FLOAT16 = "float16"
    INT8 = "int8"
    BINARY = "binary"
    RESIDUAL2 = "residual2"
    RESIDUAL1 = "residual1"
    RESIDUALPQ2 = "residualpq2"
    RESIDUALPQ1 = "residualpq1"


# The residual code of each codebook codec (colbert.codebook): (levels, width) — bucket levels per dimension
# (width 1), or product quantization of width-dimension subvectors over PQ_LEVELS sub-centroids.
RESIDUAL_CODES: dict[Codec, tuple[int, int]] = {
    Codec.RESIDUAL2: (4, 1),
    Codec.RESIDUAL1: (2, 1),
    Codec.RESIDUALPQ2: (PQ_LEVELS, 4),
    Codec.RESIDUALPQ1: (PQ_LEVELS, 8),
}
CODEBOOK_FREE = tuple(c.value for c in Codec if c not in RESIDUAL_CODES)  # codecs this module codes on its own


def needs_codebook(codec: Codec | str) -> bool:
    """Whether ``codec`` stores tokens against a collection codebook (:mod:`colbert.codebook`)."""
    return _codec(codec) in RESIDUAL_CODES


def train_codebook(codec: Codec | str, tokens: npt.ArrayLike, *, k: int | None = None) -> Codebook:
    """The codebook of residual codec ``codec`` trained on ``tokens`` (T, d) (:func:`colbert.codebook.train`;
    ``k`` centroids, default its choice); ``CodecError`` for a codec without one."""
    c = _codec(codec)
    if c not in RESIDUAL_CODES:
        raise CodecError(f"codec {c.value} has no codebook")
    levels, width = RESIDUAL_CODES[c]
    return train(tokens, levels, k=k, width=width)


def checked_codec(codec: Codec | str) -> Codec:
    """``codec`` as a :class:`Codec`; ``CodecError`` naming the codecs for a name that is not one."""
    return _codec(codec)


def _codec(codec: Codec | str) -> Codec:
    try:
        return Codec(codec)
    except ValueError:
        raise CodecError(f"unknown codec {codec!r}; expected one of {[c.value for c in Codec]}") from None


def _plain(codec: Codec | str) -> Codec:
    c = _codec(codec)
    if c in RESIDUAL_CODES:
        raise CodecError(f"{c.value} needs the collection's codebook: use colbert.codebook.Codebook to code it")
    return c


def bytes_per_row(codec: Codec | str, d: int) -> int:
    """Encoded size of one d-dimensional row.

    >>> [bytes_per_row(c, 128) for c in Codec]
    [512, 256, 132, 16, 34, 18, 34, 18]
    """
    c = _codec(codec)
    if c in RESIDUAL_CODES:
        levels, width = RESIDUAL_CODES[c]
        return row_bytes(levels, d, width)
    if c is Codec.FLOAT32:
        return 4 * d
    if c is Codec.FLOAT16:
        return 2 * d
    if c is Codec.INT8:
        return d + 4
    return (d + 7) // 8


def encode(mv: npt.ArrayLike, codec: Codec | str) -> bytes:
    """Encode an (n, d) array of floats with ``codec`` (rows are independent)."""
    c = _plain(codec)
    x = np.ascontiguousarray(mv, dtype=np.float32)  # (n, d)
    if x.ndim != 2:
        raise CodecError(f"expected an (n, d) array, got shape {x.shape}")
    if c is Codec.FLOAT32:
        return x.tobytes()
    if c is Codec.FLOAT16:
        return x.astype(np.float16).tobytes()
    if c is Codec.INT8:
        scale = (np.abs(x).max(axis=1) / 127.0).astype(np.float32)  # (n,)
        safe = np.where(scale > 0, scale, np.float32(1.0))  # (n,)
        q = np.clip(np.rint(x / safe[:, None]), -127, 127).astype(np.int8)  # (n, d)
        return bytes(scale.tobytes()) + bytes(q.tobytes())
    return bytes(np.packbits(x > 0, axis=1).tobytes())  # (n, ceil(d/8)) uint8


def decode(data: bytes | bytearray | memoryview, n: int, d: int, codec: Codec | str) -> FloatArray:
    """Decode ``n`` rows of size ``d`` into a float32 (n, d) array."""
    c = _plain(codec)
    expected = n * bytes_per_row(c, d)
    if len(data) != expected:
        raise CodecError(f"{c.value} data for {n}×{d} must be {expected} bytes, got {len(data)}")
    buf = memoryview(data)
    if c is Codec.FLOAT32:
        return np.frombuffer(buf, dtype=np.float32).reshape(n, d).copy()
    if c is Codec.FLOAT16:
        return np.frombuffer(buf, dtype=np.float16).reshape(n, d).astype(np.float32)
    if c is Codec.INT8:
        scale = np.frombuffer(buf[: 4 * n], dtype=np.float32)  # (n,)
        q = np.frombuffer(buf[4 * n :], dtype=np.int8).reshape(n, d)  # (n, d)
        return (q.astype(np.float32) * scale[:, None]).astype(np.float32)
    bits = np.unpackbits(np.frombuffer(buf, dtype=np.uint8).reshape(n, (d + 7) // 8), axis=1)[:, :d]  # (n, d) 0/1
    signs = bits.astype(np.float32) * 2.0 - 1.0  # (n, d) ±1
    return (signs / np.float32(np.sqrt(d))).astype(np.float32)
