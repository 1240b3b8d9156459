"""The byte lookup-table kernel (``maxsim_lut`` in ``_maxsim_lut.c``), which scores binary and residual codes.

Two levels: (1) given tables and codes, the kernel's output is *bit for bit* a numpy float32 computation of the
same sums in the order the kernel's contract states (centroid term, then byte positions in order), for every tile
tail, lane block and build; (2) through the public scorers, kernel, torch fallback and a float64 decode-then-MaxSim
reference agree per codec on pages of every length around the tile sizes."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import colbert._kernel as kernel_mod
from colbert.codebook import train
from colbert.quantize import decode, encode
from colbert.residual import ResidualDocs, ResidualScorer
from colbert.scoring import PackedDocs, maxsim

PORTABLE = ("-O2", "-shared", "-fPIC", "-march=x86-64")
BUILDS = {  # the native build, the portable one, and other table blocks / tiles / page chunks than this CPU's
    "native": kernel_mod._FLAGS,
    "portable": PORTABLE,
    "lanes8": (*kernel_mod._FLAGS, "-DLUT_LANES=8"),
    "lanes32-tile3": (*kernel_mod._FLAGS, "-DLUT_LANES=32", "-DLUT_TILE=3"),
    "small-chunks": (*kernel_mod._FLAGS, "-DLUT_CHUNK_BYTES=256"),
}
# every tail of the 4-token tile and of wider tiles (8, 16), empty pages between, long pages
LENGTHS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 11, 13, 15, 16, 17, 0, 31, 33, 63, 64, 65, 127, 130, 0, 257]


def lut_reference(
    lut: np.ndarray, ct: np.ndarray | None, ids: np.ndarray | None, codes: np.ndarray, offsets: np.ndarray
) -> np.ndarray:
    """(N, n_lanes) float32: per lane block, acc = ct[id] (or 0), then + lut[i][code byte i] for i in order, each add
    rounded to float32 as the kernel's contract states; max over each page's tokens (empty pages 0)."""
    blocks, nbytes, lanes = lut.shape[0], lut.shape[1], lut.shape[3]
    n_pages, n_tokens = offsets.shape[0] - 1, codes.shape[0]
    out = np.zeros((n_pages, blocks * lanes), dtype=np.float32)
    for b in range(blocks):
        acc = np.zeros((n_tokens, lanes), np.float32) if ct is None else ct[b][ids].astype(np.float32)  # (T, lanes)
        for i in range(nbytes):
            acc = (acc + lut[b, i][codes[:, i]]).astype(np.float32)
        for p in range(n_pages):
            lo, hi = int(offsets[p]), int(offsets[p + 1])
            if hi > lo:
                out[p, b * lanes : (b + 1) * lanes] = acc[lo:hi].max(axis=0)
    return out


@pytest.fixture(params=list(BUILDS))
def built(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> kernel_mod.Kernel:
    monkeypatch.setattr(kernel_mod, "cache_dir", tmp_path)
    k = kernel_mod.kernel(BUILDS[request.param])
    if k is None:
        pytest.skip("no C compiler")
    return k


def _ptr(a: np.ndarray | None) -> int | None:
    return None if a is None else int(a.ctypes.data)


def run_kernel(
    k: kernel_mod.Kernel, lut: np.ndarray, ct: np.ndarray | None, ids: np.ndarray | None, codes: np.ndarray,
    offsets: np.ndarray, ranges: list[tuple[int, int]],
) -> np.ndarray:  # fmt: skip
    n_lanes, nbytes = lut.shape[0] * lut.shape[3], lut.shape[1]
    out = np.full((offsets.shape[0] - 1, n_lanes), np.nan, dtype=np.float32)
    n_centroids = 0 if ct is None else ct.shape[1]
    for p0, p1 in ranges:
        k.maxsim_lut(
            _ptr(lut), _ptr(ct), n_centroids, n_lanes, nbytes, _ptr(ids), _ptr(codes), _ptr(offsets), p0, p1,
            _ptr(out),
        )  # fmt: skip
    return out


@pytest.mark.parametrize("centroids", [0, 5])
@pytest.mark.parametrize("nbytes", [1, 3, 16, 32])
@pytest.mark.parametrize("blocks", [1, 3])  # query lanes: 32 × blocks
def test_kernel_is_bit_exact_with_its_stated_sums(
    built: kernel_mod.Kernel, centroids: int, nbytes: int, blocks: int
) -> None:
    rng = np.random.default_rng(centroids * 1000 + nbytes * 10 + blocks)
    offsets = np.concatenate([[0], np.cumsum(LENGTHS)]).astype(np.int64)
    n = int(offsets[-1])
    lanes = built.lut_lanes
    n_blocks = blocks * 32 // lanes
    lut = rng.standard_normal((n_blocks, nbytes, 256, lanes)).astype(np.float32)
    codes = rng.integers(0, 256, (n, nbytes)).astype(np.uint8)
    ct = ids = None
    if centroids:
        ct = rng.standard_normal((n_blocks, centroids, lanes)).astype(np.float32)
        ids = rng.integers(0, centroids, n).astype(np.uint16)
    want = lut_reference(lut, ct, ids, codes, offsets)
    whole = run_kernel(built, lut, ct, ids, codes, offsets, [(0, len(LENGTHS))])
    np.testing.assert_array_equal(whole, want)
    # page ranges as the thread pool splits them: each range writes only its own rows
    cuts = [(0, 3), (3, 4), (4, 17), (17, len(LENGTHS))]
    np.testing.assert_array_equal(run_kernel(built, lut, ct, ids, codes, offsets, cuts), want)


def test_extreme_table_values_keep_the_max(built: kernel_mod.Kernel) -> None:
    """Very negative sums (all tokens tie): the running max starts at −inf, below every finite score."""
    lanes = built.lut_lanes
    lut = np.full((32 // lanes, 2, 256, lanes), -1e30, dtype=np.float32)
    codes = np.zeros((5, 2), np.uint8)
    offsets = np.array([0, 5], np.int64)
    got = run_kernel(built, lut, None, None, codes, offsets, [(0, 1)])
    np.testing.assert_array_equal(got, np.full((1, 32), -2e30, np.float32))


def _reference64(q: np.ndarray, pages: list[np.ndarray]) -> np.ndarray:
    return np.array([0.0 if p.shape[0] == 0 else float((q.astype(np.float64) @ p.T.astype(np.float64)).max(1).sum())
                     for p in pages])  # fmt: skip


def _pages(rng: np.random.Generator, d: int) -> list[np.ndarray]:
    pages = [rng.standard_normal((n, d)).astype(np.float32) for n in LENGTHS]
    return [p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12) for p in pages]


def _binary(q: np.ndarray, pages: list[np.ndarray]) -> tuple[Callable[[], np.ndarray], list[np.ndarray]]:
    d = q.shape[1]
    blobs = [encode(p, "binary") for p in pages]
    values = [decode(b, p.shape[0], d, "binary") for b, p in zip(blobs, pages, strict=True)]
    packed = PackedDocs.from_encoded([p.shape[0] for p in pages], blobs, d, "binary")
    return lambda: maxsim(q, packed)[0], values


Maker = Callable[[np.ndarray, list[np.ndarray]], tuple[Callable[[], np.ndarray], list[np.ndarray]]]


def _residual(bits: int) -> Maker:
    def make(q: np.ndarray, pages: list[np.ndarray]) -> tuple[Callable[[], np.ndarray], list[np.ndarray]]:
        book = train(np.concatenate(pages), 2**bits, k=16)
        blobs = [book.encode(p) for p in pages]
        values = [book.decode(b, p.shape[0]) for b, p in zip(blobs, pages, strict=True)]
        docs = ResidualDocs.from_encoded([p.shape[0] for p in pages], blobs, book)
        return lambda: ResidualScorer(q, book).scores(docs), values

    return make


@pytest.mark.parametrize("codec", ["binary", "residual2", "residual1"])
@pytest.mark.parametrize("d", [128, 20])
@pytest.mark.parametrize("lq", [1, 7, 32, 33, 70])
def test_kernel_fallback_and_float64_reference_agree(
    codec: str, d: int, lq: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(d * 100 + lq)
    pages = _pages(rng, d)
    q = rng.standard_normal((lq, d)).astype(np.float32)
    make: Maker = _binary if codec == "binary" else _residual(int(codec[-1]))
    score, values = make(q, pages)
    want = _reference64(q, values)
    # float32 sums of table entries, each rounded once: relative to Σ|q·token| per lane, summed over lanes
    bound = 4e-6 * np.array([float(np.abs(q).sum() * np.abs(v).sum(axis=1).max()) if v.size else 0.0
                             for v in values]) + 1e-6  # fmt: skip
    got_kernel = score()
    if kernel_mod.kernel() is None:
        pytest.skip("no C compiler")
    monkeypatch.setattr(kernel_mod, "enabled", False)
    got_fallback = score()
    for got in (got_kernel, got_fallback):
        assert got.dtype == np.float32
        assert (np.abs(got - want) <= bound).all(), np.abs(got - want).max()
        assert all(got[i] == 0.0 for i, n in enumerate(LENGTHS) if n == 0)
    # kernel and fallback: the same stored values, within both float32 summations
    assert (np.abs(got_kernel - got_fallback) <= 2 * bound).all()


def test_pages_split_over_threads_score_as_one_range(monkeypatch: pytest.MonkeyPatch) -> None:
    """run_pages splits the pages over threads by token count: the same scores as one call over every page."""
    rng = np.random.default_rng(7)
    pages = list(itertools.chain.from_iterable(_pages(rng, 128) for _ in range(20)))  # ≈ 25k tokens
    q = rng.standard_normal((40, 128)).astype(np.float32)
    score, _ = _residual(2)(q, pages)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    split = score()
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    np.testing.assert_array_equal(score(), split)


@pytest.mark.parametrize("bits", [1, 2])
@pytest.mark.parametrize("d", [128, 20])
def test_residual_byte_tables_are_the_bytes_dot_products(bits: int, d: int) -> None:
    """Each table entry is Σ over the byte's dimensions of q · bucket value of that dimension's code in the byte
    (codes packed most significant first; dimensions past d add nothing), to float32 rounding."""
    from colbert.residual import _byte_tables

    rng = np.random.default_rng(bits + d)
    book = train(rng.standard_normal((512, d)).astype(np.float32), 2**bits, k=8)
    q = rng.standard_normal((3, d)).astype(np.float32)
    got = _byte_tables(q, book)  # (3, code bytes, 256)
    per = 8 // bits
    assert got.shape == (3, book.code_bytes, 256)
    for v in (0, 1, 0b10110100, 255, int(rng.integers(256))):
        codes = [(v >> (bits * (per - 1 - s))) & ((1 << bits) - 1) for s in range(per)]
        for j in range(book.code_bytes):
            dims = [(j * per + s, c) for s, c in enumerate(codes) if j * per + s < d]
            want = sum(q[:, k].astype(np.float64) * float(book.values[k, c]) for k, c in dims)
            np.testing.assert_allclose(got[:, j, v], want, rtol=1e-6, atol=1e-6)
