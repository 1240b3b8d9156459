"""The residual codecs (colbert.codebook) round-trip within their stated error and are scored exactly with respect to
what they store: the C kernel (native and portable builds), the decode-then-torch fallback and a float64 numpy
reference of decode-then-MaxSim agree on hand-built and random cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import colbert._kernel as kernel_mod
from colbert.codebook import Codebook, choose_k, row_bytes, train
from colbert.errors import CodecError, InvalidQueryError
from colbert.residual import ResidualDocs, ResidualScorer, residual_maxsim

PORTABLE = ("-O2", "-shared", "-fPIC", "-march=x86-64")


def unit_rows(rng: np.random.Generator, n: int, d: int, topics: int = 12) -> np.ndarray:
    """Clustered unit rows (topic directions plus noise), like token embeddings."""
    centres = rng.standard_normal((topics, d))
    x = centres[rng.integers(0, topics, n)] + 0.6 * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def reference(q: np.ndarray, pages: list[np.ndarray]) -> np.ndarray:
    """Decode-then-MaxSim in float64 (0 for an empty page)."""
    out = []
    for p in pages:
        out.append(0.0 if p.shape[0] == 0 else float((q.astype(np.float64) @ p.astype(np.float64).T).max(1).sum()))
    return np.array(out)


def hand_book() -> Codebook:
    return Codebook(
        centroids=np.array([[1, 0, 0, 0], [0, 0, 1, 0]], dtype=np.float32),
        levels=4,
        cutoffs=np.tile(np.array([-0.1, 0.0, 0.1], dtype=np.float32), (4, 1)),
        values=np.tile(np.array([-0.2, -0.05, 0.05, 0.2], dtype=np.float32), (4, 1)),
    )


def test_hand_built_encode_decode_and_score() -> None:
    book = hand_book()
    x = np.array([[0.9, 0.3, 0.02, -0.5], [0.1, 0.0, 0.95, 0.05]], dtype=np.float32)
    blob = book.encode(x)
    assert len(blob) == 2 * row_bytes(4, 4) == 2 * 3
    ids, codes = book.split(blob, 2)
    assert ids.tolist() == [0, 1]
    # token 0: residual (−0.1, 0.3, 0.02, −0.5) → codes (0, 3, 2, 0) (−0.1 is not above the cutoff −0.1)
    assert codes[0, 0] == 0b00_11_10_00
    decoded = book.decode(blob, 2)
    expected0 = np.array([1 - 0.2, 0.2, 0.05, -0.2], dtype=np.float32)
    np.testing.assert_allclose(decoded[0], expected0, atol=1e-7)
    q = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32)
    # page [token0, token1]: q0 → max(0.8, 0.1 + …) ; hand: token1 decodes to (0.05, −0.05, 0.8 or so, 0.05)
    score = residual_maxsim(q, ResidualDocs.from_encoded([2], [blob], book), book)
    np.testing.assert_allclose(score, reference(q, [decoded]), atol=1e-6)
    assert float(score[0]) == pytest.approx(0.8 + 0.2, abs=1e-6)


@pytest.mark.parametrize(("levels", "bound"), [(2, 0.6), (3, 0.45), (4, 0.35), (16, 0.12)])
def test_round_trip_error_is_bounded_by_the_buckets(levels: int, bound: float) -> None:
    """Stated error: each decoded component lies within its bucket's [cutoff, cutoff] range of the true residual
    (the outer buckets are open: bounded by the training residuals' range); on clustered tokens the mean relative
    L2 error is below ``bound`` (it shrinks with the levels)."""
    rng = np.random.default_rng(1)
    x = unit_rows(rng, 6000, 64)
    book = train(x, levels)
    y = book.decode(book.encode(x), x.shape[0])
    rel = np.linalg.norm(y - x, axis=1) / np.linalg.norm(x, axis=1)
    assert rel.mean() < bound
    ids = book.assign(x)
    residual = x - book.centroids[ids]
    decoded_res = y - book.centroids[ids]
    lo = np.concatenate([np.full((64, 1), -np.inf), book.cutoffs], axis=1)
    hi = np.concatenate([book.cutoffs, np.full((64, 1), np.inf)], axis=1)
    codes = (residual[:, :, None] > book.cutoffs[None]).sum(axis=2)
    dims = np.arange(64)[None, :]
    inside = (residual > lo[dims, codes] - 1e-6) & (residual <= hi[dims, codes] + 1e-6)
    assert inside.all()
    np.testing.assert_allclose(decoded_res, book.values[dims, codes], atol=1e-6)


def test_choose_k_and_limits() -> None:
    assert choose_k(768) == 64
    assert choose_k(10**9) == 4096
    assert choose_k(3) == 1
    with pytest.raises(CodecError):
        choose_k(0)
    with pytest.raises(CodecError):
        train(np.zeros((0, 8), np.float32), 2)
    book = hand_book()
    with pytest.raises(CodecError, match="must be"):
        book.decode(b"\x00" * 5, 2)
    with pytest.raises(CodecError, match="out of this codebook"):
        book.decode(b"\x09\x00\x00", 1)
    assert Codebook.from_bytes(book.to_bytes()).values.tolist() == book.values.tolist()
    with pytest.raises(CodecError, match="damaged"):
        Codebook.from_bytes(b"not a codebook")
    with pytest.raises(InvalidQueryError):
        ResidualScorer(np.zeros((2, 5), np.float32), book)


@pytest.mark.parametrize("levels", [2, 3, 4, 16])
@pytest.mark.parametrize("d", [128, 20])
@pytest.mark.parametrize("build", ["native", "portable", "fallback"])
def test_kernel_and_fallback_equal_the_reference(levels: int, d: int, build: str, tmp_path, monkeypatch) -> None:
    rng = np.random.default_rng(levels * 100 + d)
    x = unit_rows(rng, 3000, d)
    book = train(x, levels, k=64)
    lengths = [0, 1, 33, 97, 0, 150, 64]
    starts = np.cumsum([0, *lengths])
    pages = [x[a:b] for a, b in itertools.pairwise(starts)]
    blobs = [book.encode(p) for p in pages]
    decoded = [book.decode(b, p.shape[0]) for p, b in zip(pages, blobs, strict=True)]
    docs = ResidualDocs.from_encoded([p.shape[0] for p in pages], blobs, book)
    monkeypatch.setattr(kernel_mod, "cache_dir", tmp_path)
    if build == "fallback":
        monkeypatch.setattr(kernel_mod, "enabled", False)
    elif build == "portable":
        portable = kernel_mod.kernel(PORTABLE)
        if portable is None:
            pytest.skip("no C compiler")
        monkeypatch.setattr(kernel_mod, "kernel", lambda flags=PORTABLE: portable)
    for lq in (1, 5, 32, 45):
        q = rng.standard_normal((lq, d)).astype(np.float32)
        scorer = ResidualScorer(q, book)
        assert (scorer.kernel is None) == (build == "fallback")
        got = scorer.scores(docs)
        want = reference(q, decoded)
        bound = 4e-6 * (np.abs(q).sum() * max(float(np.abs(np.concatenate(decoded)).sum(axis=1).max()), 1.0)) + 1e-5
        np.testing.assert_allclose(got, want, atol=bound, rtol=0)
        assert got[0] == 0.0
        assert got[4] == 0.0
    assert residual_maxsim(np.zeros((0, d), np.float32), docs, book).tolist() == [0.0] * len(pages)
