"""Codecs round-trip within their stated error; bad bytes are a typed error."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import colbert.quantize as quantize
from colbert.errors import CodecError
from colbert.quantize import CODEBOOK_FREE, Codec, bytes_per_row, decode, encode


def unit_rows(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_doctests() -> None:
    assert doctest.testmod(quantize).failed == 0


@pytest.mark.parametrize("codec", CODEBOOK_FREE)
def test_sizes(codec: Codec) -> None:
    x = unit_rows(7, 128)
    assert len(encode(x, codec)) == 7 * bytes_per_row(codec, 128)
    assert decode(encode(x, codec), 7, 128, codec).shape == (7, 128)


def test_float32_exact_and_float16_bound() -> None:
    x = unit_rows(50, 128)
    assert np.array_equal(decode(encode(x, Codec.FLOAT32), 50, 128, Codec.FLOAT32), x)
    err = np.abs(decode(encode(x, Codec.FLOAT16), 50, 128, Codec.FLOAT16) - x)
    assert (err <= np.abs(x) * 2.0**-11 + 1e-8).all()


def test_int8_bound() -> None:
    x = unit_rows(50, 128, seed=3)
    scale = np.abs(x).max(axis=1, keepdims=True) / 127
    err = np.abs(decode(encode(x, Codec.INT8), 50, 128, Codec.INT8) - x)
    assert (err <= scale / 2 + 1e-7).all()


def test_binary_keeps_signs_and_unit_norm() -> None:
    x = unit_rows(20, 128, seed=4)
    y = decode(encode(x, Codec.BINARY), 20, 128, Codec.BINARY)
    assert np.array_equal(y > 0, x > 0)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, rtol=1e-6)


def test_errors() -> None:
    with pytest.raises(CodecError, match="bytes"):
        decode(b"\x00" * 5, 1, 4, Codec.FLOAT32)
    with pytest.raises(CodecError, match="unknown codec"):
        encode(np.ones((1, 4)), "int4")
    with pytest.raises(CodecError, match="shape"):
        encode(np.ones(4), Codec.FLOAT16)
