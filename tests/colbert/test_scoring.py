"""MaxSim equals a naive loop; similarity maps; masks, empty documents, blocks, errors; doctests."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import colbert.scoring as scoring
from colbert import _kernel
from colbert.errors import InvalidDocumentError, InvalidQueryError
from colbert.scoring import PackedDocs, maxsim, similarity_map


def naive(q: np.ndarray, d: np.ndarray) -> float:
    if d.shape[0] == 0 or q.shape[0] == 0:
        return 0.0
    total = 0.0
    for qi in q:
        total += max(float(np.dot(qi.astype(np.float64), dj.astype(np.float64))) for dj in d)
    return total


def test_doctests() -> None:
    assert doctest.testmod(scoring).failed == 0


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_q=st.integers(1, 3),
    n_docs=st.integers(1, 7),
    dim=st.integers(1, 16),
    block=st.sampled_from([None, 1, 3, 50]),
)
def test_equals_naive_loop(seed: int, n_q: int, n_docs: int, dim: int, block: int | None) -> None:
    rng = np.random.default_rng(seed)
    qs = [rng.standard_normal((int(rng.integers(0, 6)), dim)).astype(np.float32) for _ in range(n_q)]
    docs = [rng.standard_normal((int(rng.integers(0, 9)), dim)).astype(np.float32) for _ in range(n_docs)]
    got = maxsim(qs, docs, block_tokens=block)
    want = np.array([[naive(q, d) for d in docs] for q in qs], dtype=np.float32)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_padded_inputs_with_masks_equal_lists() -> None:
    rng = np.random.default_rng(0)
    q = rng.standard_normal((2, 5, 8)).astype(np.float32)
    qmask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    d = rng.standard_normal((3, 6, 8)).astype(np.float32)
    dmask = np.array([[1] * 6, [1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0]], bool)
    got = maxsim(q, d, query_mask=qmask, document_mask=dmask)
    want = maxsim([q[0][:3], q[1]], [d[0], d[1][:2], d[2][:4]])
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # padding rows without a mask change the result (so the mask is really used)
    assert not np.allclose(maxsim(q, d), got)


def test_float16_packed_documents() -> None:
    rng = np.random.default_rng(1)
    docs = [rng.standard_normal((int(n), 16)).astype(np.float32) for n in rng.integers(1, 40, size=20)]
    q = rng.standard_normal((4, 16)).astype(np.float32)
    packed = PackedDocs.from_list(docs, dtype=np.float16)
    assert packed.tokens.dtype == np.float16
    want = maxsim(q, [d.astype(np.float16).astype(np.float32) for d in docs])
    np.testing.assert_allclose(maxsim(q, packed), want, rtol=1e-5, atol=1e-5)


def test_bfloat16_packed_documents_within_rounding() -> None:
    rng = np.random.default_rng(5)
    docs = [rng.standard_normal((int(n), 16)).astype(np.float32) for n in [7, 7, 7, 3, 0, 12]]
    docs = [d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9) for d in docs]
    q = rng.standard_normal((5, 16)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    want = maxsim(q, docs)
    for block in (None, 7, 21):  # equal-length blocks (strided max) and mixed ones (reduceat)
        got = maxsim(q, PackedDocs.from_list(docs, dtype="bfloat16"), block_tokens=block)
        np.testing.assert_allclose(got, want, atol=5 * 2.0**-8)
        assert got[0, 4] == 0.0  # the empty document


def test_memory_is_bounded_by_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """Torch fallback: the largest score tile is ΣLq × block tokens, not Q × N × Lq × Ld."""
    monkeypatch.setattr(_kernel, "enabled", False)
    seen: list[tuple[int, int]] = []
    real_mm = scoring.torch.mm

    def spy(a: object, b: object) -> object:
        out = real_mm(a, b)  # type: ignore[arg-type]
        seen.append(tuple(out.shape))
        return out

    monkeypatch.setattr(scoring.torch, "mm", spy)
    docs = [np.ones((10, 4), np.float32)] * 50
    maxsim(np.ones((3, 4), np.float32), docs, block_tokens=40)
    assert seen
    assert max(cols for _, cols in seen) <= 40


def test_similarity_map_shape_and_values() -> None:
    rng = np.random.default_rng(2)
    q, p = rng.standard_normal((3, 8)), rng.standard_normal((5, 8))
    sm = similarity_map(q, p)
    assert sm.shape == (3, 5)
    np.testing.assert_allclose(sm.max(axis=1).sum(), maxsim(q, [p])[0, 0], rtol=1e-5)


def test_errors() -> None:
    with pytest.raises(InvalidQueryError, match="dimension"):
        maxsim(np.ones((2, 3)), [np.ones((2, 4))])
    with pytest.raises(InvalidDocumentError):
        maxsim(np.ones((2, 3)), [np.ones((2, 3)), np.ones((2, 4))])
    with pytest.raises(InvalidQueryError):
        similarity_map(np.ones(3), np.ones((2, 3)))
    assert maxsim(np.ones((2, 3)), []).shape == (1, 0)
