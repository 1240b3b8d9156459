"""Product quantization of the residual (colbert.codebook, ``width`` 4 or 8): each subvector of the residual is
stored as the byte naming its nearest of 256 sub-centroids; the codes round-trip to exactly that choice (a
brute-force numpy reference), the blob format (version 3) round-trips and refuses damaged headers, and the C
kernel (native, portable) and the decode-then-MaxSim fallback score exactly what is stored."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import colbert._kernel as kernel_mod
from colbert.codebook import PQ_LEVELS, Codebook, row_bytes, train
from colbert.errors import CodecError
from colbert.residual import ResidualDocs, ResidualScorer

from .test_residual import PORTABLE, reference, unit_rows


def brute_force_decode(book: Codebook, x: np.ndarray) -> np.ndarray:
    """Nearest centroid by dot product, then each residual subvector replaced by its nearest sub-centroid (L2),
    every candidate tried (float64)."""
    c = book.centroids.astype(np.float64)
    ids = (x.astype(np.float64) @ c.T).argmax(axis=1)
    m, w = book.values.shape[0], book.width
    residual = np.zeros((x.shape[0], m * w))
    residual[:, : x.shape[1]] = x - c[ids]
    out = np.empty_like(residual)
    for j in range(m):
        part = residual[:, j * w : (j + 1) * w]  # (n, w)
        dist = ((part[:, None, :] - book.values[j].astype(np.float64)[None]) ** 2).sum(axis=2)  # (n, 256)
        out[:, j * w : (j + 1) * w] = book.values[j][dist.argmin(axis=1)]
    return c[ids] + out[:, : x.shape[1]]


@pytest.mark.parametrize(("width", "d"), [(4, 128), (8, 128), (4, 10), (8, 20)])
def test_codes_are_the_nearest_sub_centroids(width: int, d: int) -> None:
    rng = np.random.default_rng(width * 1000 + d)
    x = unit_rows(rng, 2000, d)
    book = train(x, PQ_LEVELS, k=16, width=width)
    assert (book.width, book.code_bytes, book.values.shape) == (width, -(-d // width), (-(-d // width), 256, width))
    blob = book.encode(x[:300])
    assert len(blob) == 300 * row_bytes(PQ_LEVELS, d, width)
    np.testing.assert_allclose(book.decode(blob, 300), brute_force_decode(book, x[:300]), atol=1e-5)


def test_product_quantization_beats_buckets_of_the_same_size() -> None:
    """At equal stored bytes (34 and 18 per token at d = 128) the learned sub-centroids code clustered unit rows
    with a smaller mean squared error than per-dimension buckets (2 bits, 1 bit) on held-out rows."""
    rng = np.random.default_rng(3)
    x = unit_rows(rng, 12000, 128, topics=40)
    train_x, test_x = x[:10000], x[10000:]
    for width, levels in ((4, 4), (8, 2)):
        pq = train(train_x, PQ_LEVELS, k=32, width=width)
        buckets = train(train_x, levels, k=32)
        assert pq.code_bytes == buckets.code_bytes
        err_pq = ((pq.decode(pq.encode(test_x), 2000) - test_x) ** 2).sum(axis=1).mean()
        err_b = ((buckets.decode(buckets.encode(test_x), 2000) - test_x) ** 2).sum(axis=1).mean()
        assert err_pq < 0.9 * err_b


def test_version_3_round_trips_and_refuses_damage() -> None:
    rng = np.random.default_rng(5)
    x = unit_rows(rng, 1500, 12)
    book = train(x, PQ_LEVELS, k=8, width=8)  # d = 12: two subvectors, the second zero-padded
    blob = book.to_bytes()
    assert blob.startswith(b"jev4-codebook-3\n")
    again = Codebook.from_bytes(blob)
    assert (again.width, again.k, again.dim, again.levels) == (8, 8, 12, PQ_LEVELS)
    assert again.to_bytes() == blob
    np.testing.assert_array_equal(again.decode(book.encode(x), 1500), book.decode(book.encode(x), 1500))
    bad_width = blob[:24] + np.array([5], dtype="<i4").tobytes() + blob[28:]
    for damaged in (bad_width, blob[:-4], blob + b"\0\0\0\0"):
        with pytest.raises(CodecError, match="damaged codebook"):
            Codebook.from_bytes(damaged)


def test_bad_parameters_are_codec_errors() -> None:
    x = unit_rows(np.random.default_rng(0), 100, 8)
    with pytest.raises(CodecError, match="product quantization"):
        train(x, PQ_LEVELS, width=3)
    with pytest.raises(CodecError, match="product quantization"):
        train(x, 4, width=4)
    with pytest.raises(CodecError, match="sub-centroids"):
        Codebook(x[:2], PQ_LEVELS, np.zeros((0, 0), np.float32), np.zeros((1, 256, 4), np.float32))


def test_fewer_training_rows_than_sub_centroids() -> None:
    x = unit_rows(np.random.default_rng(1), 40, 16)
    book = train(x, PQ_LEVELS, k=2, width=4)
    np.testing.assert_allclose(book.decode(book.encode(x), 40), brute_force_decode(book, x), atol=1e-5)


@pytest.mark.parametrize("width", [4, 8])
@pytest.mark.parametrize("d", [128, 20])
@pytest.mark.parametrize("build", ["native", "portable", "fallback"])
def test_kernel_and_fallback_score_what_is_stored(width: int, d: int, build: str, tmp_path, monkeypatch) -> None:
    rng = np.random.default_rng(width * 100 + d)
    x = unit_rows(rng, 3000, d)
    book = train(x, PQ_LEVELS, k=64, width=width)
    starts = np.cumsum([0, 0, 1, 33, 97, 0, 150, 64])
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
    for lq in (1, 32, 45):
        q = rng.standard_normal((lq, d)).astype(np.float32)
        scorer = ResidualScorer(q, book)
        assert (scorer.kernel is None) == (build == "fallback")
        got = scorer.scores(docs)
        bound = 4e-6 * (np.abs(q).sum() * max(float(np.abs(np.concatenate(decoded)).sum(axis=1).max()), 1.0)) + 1e-5
        np.testing.assert_allclose(got, reference(q, decoded), atol=bound, rtol=0)
        assert got[0] == 0.0
        assert got[4] == 0.0
