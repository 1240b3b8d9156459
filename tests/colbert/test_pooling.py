"""Hierarchical token pooling: size, unit rows, protected rows, clusters follow the data."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import colbert.pooling as pooling
from colbert.errors import InvalidDocumentError
from colbert.pooling import pool_tokens


def test_doctests() -> None:
    assert doctest.testmod(pooling).failed == 0


def test_pool_factor_reduces_rows_and_keeps_unit_norm() -> None:
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((4, 32))
    x = np.concatenate([c + 0.05 * rng.standard_normal((30, 32)) for c in centers]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    pooled = pool_tokens(x, 3)
    assert pooled.shape == (40, 32)
    np.testing.assert_allclose(np.linalg.norm(pooled, axis=1), 1.0, rtol=1e-5)
    # factor 30 gives exactly the 4 topic clusters back
    four = pool_tokens(x, 30)
    assert four.shape == (4, 32)
    c = centers / np.linalg.norm(centers, axis=1, keepdims=True)
    assert (np.abs(four @ c.T).max(axis=1) > 0.99).all()


def test_protected_rows_and_identity() -> None:
    x = np.random.default_rng(1).standard_normal((6, 6)).astype(np.float32)
    out = pool_tokens(x, 2, protected=2)
    assert np.array_equal(out[:2], x[:2])
    assert out.shape == (4, 6)
    assert np.array_equal(pool_tokens(x, 1), x)


def test_errors() -> None:
    with pytest.raises(InvalidDocumentError):
        pool_tokens(np.ones(3), 2)
    with pytest.raises(InvalidDocumentError):
        pool_tokens(np.ones((3, 2)), 0)
