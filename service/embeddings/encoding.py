"""Wire encodings of vectors (``embedding_type`` / OpenAI ``encoding_format``).

Exact definitions (a vector ``v`` of ``d`` float32 values, already truncated and L2-normalised):

- ``float``   : a JSON array of ``d`` numbers (each the exact float32 value, printed as shortest float64).
- ``base64``  : standard base64 (with padding) of the ``4*d`` bytes of ``v`` as little-endian float32
                (``numpy.frombuffer(base64.b64decode(s), "<f4")`` gives ``v`` back bit for bit).
- ``binary``  : sign bits, ``bit = 1 if v[i] > 0 else 0``, packed 8 per byte most-significant bit first
                (``numpy.packbits``, element 0 is the MSB of byte 0; ``d/8`` bytes, d is a multiple of 8),
                each byte ``b`` (0..255) sent as the signed int8 ``b - 128`` (-128..127): offset binary, as
                sentence-transformers' ``quantize_embeddings(precision="binary")``, Cohere and Jina do (clients
                recover the bytes with ``+ 128``; NOT a two's-complement view of the byte).
- ``ubinary`` : the same bytes as unsigned uint8 (0..255).

A multi-vector (``n x d``) is a JSON array of ``n`` rows, each row encoded as above (so ``base64`` gives
``n`` strings). When several types are requested, the value is an object keyed by type name, e.g.
``{"float": [...], "ubinary": [...]}``.

>>> import numpy as np
>>> v = np.array([0.5, -0.25, 0.0, 1.0, -1.0, 0.1, 0.2, -0.3], dtype=np.float32)
>>> encode_vector(v, EmbeddingType.UBINARY)          # bits 1,0,0,1,0,1,1,0 -> 0b10010110
[150]
>>> encode_vector(v, EmbeddingType.BINARY)          # 150 - 128
[22]
>>> decode_base64(encode_vector(v, EmbeddingType.BASE64)).tolist() == v.tolist()
True
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "EmbeddingType",
    "decode_base64",
    "encode_multivector",
    "encode_value",
    "encode_vector",
]


class EmbeddingType(enum.StrEnum):
    """The four wire encodings."""

    FLOAT = "float"
    BASE64 = "base64"
    BINARY = "binary"
    UBINARY = "ubinary"


def encode_vector(vector: npt.NDArray[np.float32], kind: EmbeddingType) -> Any:
    """One vector (d,) -> its JSON value under ``kind``."""
    if kind is EmbeddingType.FLOAT:
        return vector.astype(np.float32, copy=False).tolist()
    if kind is EmbeddingType.BASE64:
        return base64.b64encode(vector.astype("<f4", copy=False).tobytes()).decode("ascii")
    bits = np.packbits(vector > 0)  # (ceil(d/8),) uint8, element 0 -> MSB of byte 0
    if kind is EmbeddingType.UBINARY:
        return bits.tolist()
    return (bits.astype(np.int16) - 128).tolist()


def encode_multivector(matrix: npt.NDArray[np.float32], kind: EmbeddingType) -> list[Any]:
    """A multi-vector (n, d) -> a list of n encoded rows."""
    if kind is EmbeddingType.FLOAT:
        return matrix.astype(np.float32, copy=False).tolist()  # type: ignore[no-any-return]
    if kind is EmbeddingType.BASE64:
        rows = matrix.astype("<f4", copy=False)  # (n, d)
        return [base64.b64encode(row.tobytes()).decode("ascii") for row in rows]
    bits = np.packbits(matrix > 0, axis=1)  # (n, ceil(d/8)) uint8
    if kind is EmbeddingType.UBINARY:
        return bits.tolist()  # type: ignore[no-any-return]
    return (bits.astype(np.int16) - 128).tolist()  # type: ignore[no-any-return]


def encode_value(array: npt.NDArray[np.float32], kinds: Sequence[EmbeddingType], *, as_dict: bool) -> Any:
    """Encode a vector (1-D) or multi-vector (2-D) under one type, or under several as a dict by type."""
    encode = encode_vector if array.ndim == 1 else encode_multivector
    if not as_dict:
        return encode(array, kinds[0])
    return {kind.value: encode(array, kind) for kind in kinds}


def decode_base64(value: str) -> npt.NDArray[np.float32]:
    """Inverse of the ``base64`` encoding (for clients and tests)."""
    return np.frombuffer(base64.b64decode(value), dtype="<f4").astype(np.float32)
