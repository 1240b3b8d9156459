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

In memory the first stage holds the rows as stored (:func:`held_dense`: the codes, plus each row's norm as a
divisor) rather than decoded to float32, so an int8 row takes d + 4 bytes and a binary one d/8 + 4 instead of 4·d;
:func:`held_cosines` widens them to float32 a block at a time to score. The decoded unit row is ``codes / norm``,
exactly what :func:`decode_dense` returns, and the held score is ``(codes · q) / norm`` (equal to the decoded row's
cosine up to float32 rounding).

>>> v = np.array([0.6, -0.8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], dtype=np.float32)
>>> [len(encode_dense(v, c)) for c in DENSE_CODECS]
[32, 8, 1]
>>> [round(float(x), 3) for x in decode_dense(encode_dense(v, "int8"), 1, 8, "int8")[0]]  # codes 95, -127
[0.599, -0.801, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
"""

from __future__ import annotations

import numpy as np

from colbert.errors import CodecError

__all__ = [
    "DENSE_CODECS",
    "check_dense_codec",
    "decode_dense",
    "dense_bytes",
    "encode_dense",
    "held_cosines",
    "held_dense",
    "widen_held",
]

DENSE_CODECS = ("float32", "int8", "binary")
_HELD_DTYPES = {"float32": np.float32, "int8": np.int8, "binary": np.uint8}
_SCORE_BLOCK_ROWS = 8192  # rows widened to float32 at a time (4 MiB at d = 128: cache-sized, bounded)


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
    codes, norms = held_dense(data, m, dim, codec)
    return widen_held(codes, norms, codec, dim)


def held_dense(data: bytes, m: int, dim: int, codec: str) -> tuple[np.ndarray, np.ndarray]:
    """``m`` stored vectors as held in memory: (codes (m, width) in the codec's dtype — float32 (m, dim), int8
    (m, dim), binary uint8 (m, ceil(dim/8)) packed signs — and norms (m,) float32, the divisor that makes each
    widened row a unit row: 1 for float32, 1 for an all-zero int8 row). ``CodecError`` as :func:`decode_dense`."""
    codec = check_dense_codec(codec)
    expected = m * dense_bytes(codec, dim)
    if len(data) != expected:
        raise CodecError(f"{codec} dense data for {m}×{dim} must be {expected} bytes, got {len(data)}")
    width = dim if codec != "binary" else (dim + 7) // 8
    codes = np.frombuffer(data, dtype=_HELD_DTYPES[codec]).reshape(m, width).copy()  # (m, width)
    if codec == "float32":
        return codes, np.ones(m, dtype=np.float32)
    norms = np.empty(m, dtype=np.float32)
    for start in range(0, m, _SCORE_BLOCK_ROWS):  # widened a block at a time: no (m, dim) float32 temporary
        block = _widen(codes[start : start + _SCORE_BLOCK_ROWS], codec, dim)
        norms[start : start + block.shape[0]] = np.linalg.norm(block, axis=1)
    return codes, np.where(norms > 0, norms, np.float32(1.0)).astype(np.float32)


def widen_held(codes: np.ndarray, norms: np.ndarray, codec: str, dim: int) -> np.ndarray:
    """Held rows (:func:`held_dense`) as float32 (m, dim) unit rows."""
    out: np.ndarray = (_widen(codes, codec, dim) / norms[:, None]).astype(np.float32)
    return out


def held_cosines(
    codes: np.ndarray, norms: np.ndarray, codec: str, dim: int, query: np.ndarray, rows: np.ndarray | None = None
) -> np.ndarray:
    """(m,) float32 cosines of the held rows with the unit ``query`` (dim,), widened a block at a time; ``rows``:
    only those rows, in that order (gathered a block at a time)."""
    q = np.ascontiguousarray(query, dtype=np.float32)  # (dim,)
    if codec == "float32" and rows is None:
        return np.asarray(codes @ q, dtype=np.float32)  # nothing to widen: one pass
    m = codes.shape[0] if rows is None else rows.shape[0]
    out = np.empty(m, dtype=np.float32)
    for start in range(0, m, _SCORE_BLOCK_ROWS):
        stop = min(start + _SCORE_BLOCK_ROWS, m)
        at = slice(start, stop) if rows is None else rows[start:stop]
        out[start:stop] = (_widen(codes[at], codec, dim) @ q) / norms[at]
    return out


def _widen(codes: np.ndarray, codec: str, dim: int) -> np.ndarray:
    """Held codes as float32 (m, dim) before the norm: the values, the int8 codes, or ±1 for the signs."""
    if codec == "float32":
        return codes
    if codec == "int8":
        return codes.astype(np.float32)
    bits = np.unpackbits(codes, axis=1)[:, :dim]  # (m, dim) 0/1
    out: np.ndarray = bits.astype(np.float32) * 2.0 - 1.0  # (m, dim) ±1
    return out
