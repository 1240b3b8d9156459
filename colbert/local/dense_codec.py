"""How the embedded index stores each unit's dense (single) vector: a per-collection choice fixed at creation.

The dense vector is only a first-stage signal — it picks the candidates that exact MaxSim over the multi-vectors
then reranks — so it need not be kept at full precision. Its direction is all the cosine first stage uses, so
each codec stores a direction and decodes to a unit row; the first stage scores those decoded rows exactly.

==========  =================  =====================================================================
codec       bytes per vector   what is kept
==========  =================  =====================================================================
float32     4·d                the unit vector (the only choice before the ``dense_codec`` meta key)
int8        d                  round(127·x / max|x|): the direction to ~0.4 % of the largest component
binary      ceil(d/8)          the signs (x > 0 → 1, ``numpy.packbits``); decodes to ±1/√d
==========  =================  =====================================================================

The size ``d`` is the collection's ``dense_dim`` (already a Matryoshka truncation when the collection was
created with smaller ``dimensions``). An index without the meta key holds float32 (every index written before).

>>> v = np.array([0.6, -0.8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], dtype=np.float32)
>>> [len(encode_dense(v, c)) for c in DENSE_CODECS]
[32, 8, 1]
>>> [round(float(x), 3) for x in decode_dense(encode_dense(v, "int8"), 1, 8, "int8")[0]]  # codes 95, -127
[0.599, -0.801, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
"""

from __future__ import annotations

import numpy as np

from colbert.errors import CodecError

__all__ = ["DENSE_CODECS", "check_dense_codec", "decode_dense", "dense_bytes", "encode_dense"]

DENSE_CODECS = ("float32", "int8", "binary")


def check_dense_codec(codec: str) -> str:
    """``codec`` if it names a dense codec; ``CodecError`` naming the choices otherwise."""
    if codec not in DENSE_CODECS:
        raise CodecError(f"unknown dense codec {codec!r}; expected one of {list(DENSE_CODECS)}")
    return codec


def dense_bytes(codec: str, dim: int) -> int:
    """Stored bytes of one ``dim``-dimensional dense vector.

    >>> [dense_bytes(c, 2048) for c in DENSE_CODECS]
    [8192, 2048, 256]
    """
    codec = check_dense_codec(codec)
    return 4 * dim if codec == "float32" else dim if codec == "int8" else (dim + 7) // 8


def encode_dense(unit: np.ndarray, codec: str) -> bytes:
    """The stored bytes of one unit vector ``unit`` (dim,)."""
    codec = check_dense_codec(codec)
    x = np.ascontiguousarray(unit, dtype=np.float32)  # (dim,)
    if codec == "float32":
        return x.tobytes()
    if codec == "int8":
        top = float(np.abs(x).max())
        scale = np.float32(127.0 / top) if top > 0 else np.float32(0.0)
        return bytes(np.clip(np.rint(x * scale), -127, 127).astype(np.int8).tobytes())
    return np.packbits(x > 0).tobytes()


def decode_dense(data: bytes, m: int, dim: int, codec: str) -> np.ndarray:
    """``m`` stored vectors (concatenated in ``data``) as float32 (m, dim) unit rows — what the first stage scores.
    ``CodecError`` when ``data`` is not ``m`` vectors' worth of bytes."""
    codec = check_dense_codec(codec)
    expected = m * dense_bytes(codec, dim)
    if len(data) != expected:
        raise CodecError(f"{codec} dense data for {m}×{dim} must be {expected} bytes, got {len(data)}")
    if codec == "float32":
        return np.frombuffer(data, dtype=np.float32).reshape(m, dim).copy()
    if codec == "int8":
        rows = np.frombuffer(data, dtype=np.int8).reshape(m, dim).astype(np.float32)  # (m, dim)
    else:
        bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8).reshape(m, (dim + 7) // 8), axis=1)[:, :dim]
        rows = bits.astype(np.float32) * 2.0 - 1.0  # (m, dim) ±1
    norms = np.linalg.norm(rows, axis=1, keepdims=True)  # (m, 1); 0 only for an all-zero int8 row
    out: np.ndarray = (rows / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    return out
