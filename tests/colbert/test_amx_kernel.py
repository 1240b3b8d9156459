"""The integer kernel's AMX path (``_maxsim_amx.c``): the same int32 dot products of the same fixed-point query
limbs as the VNNI path (and the portable C), combined by the same float32 operations in the same token order, so
every score is bit for bit the same; odd sizes (pages not a multiple of 16 tokens, query lanes not a multiple of
16, d not a multiple of 64 or 4) go through its zero-padded buffers. Skipped where the CPU or the OS gives no AMX."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import colbert._kernel as kernel_mod
from colbert.quantize import encode
from colbert.scoring import PackedDocs, maxsim

PORTABLE = ("-O2", "-shared", "-fPIC", "-march=x86-64")  # no VNNI, no AMX: the portable C of the same arithmetic
LENGTHS = [1, 2, 3, 15, 16, 17, 0, 31, 33, 100, 0, 301, 1024]


@pytest.fixture
def native(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[kernel_mod.Kernel]:
    monkeypatch.setattr(kernel_mod, "cache_dir", tmp_path)
    built = kernel_mod.kernel()
    if built is None or not built.avx512:
        pytest.skip("no C compiler or no AVX-512 VNNI (int8 codes go through the float kernel)")
    if not built.use_amx(True):
        pytest.skip("no AMX here (CPU, compiler or OS)")
    yield built
    built.use_amx(True)


def _scores(built: kernel_mod.Kernel, amx: bool, queries: list[np.ndarray], packed: PackedDocs) -> np.ndarray:
    assert built.use_amx(amx) == amx
    return maxsim(queries, packed)


@pytest.mark.parametrize("d", [128, 64, 130, 40, 24, 7, 1])
def test_amx_and_vnni_score_int8_bit_for_bit(
    d: int, native: kernel_mod.Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(d)
    pages = [rng.standard_normal((n, d)).astype(np.float32) for n in LENGTHS]
    pages[1][:] = 0.0  # a zero token: scale 0
    packed = PackedDocs.from_encoded(LENGTHS, [encode(p, "int8") for p in pages], d, "int8")
    queries = [rng.standard_normal((n, d)).astype(np.float32) for n in (1, 5, 17, 32, 45, 0, 70)]
    queries[2][3] *= 1e-6  # a lane far below the others' magnitude
    monkeypatch.setattr(kernel_mod, "kernel", lambda flags=None: native)
    amx, vnni = _scores(native, True, queries, packed), _scores(native, False, queries, packed)
    np.testing.assert_array_equal(amx.view(np.uint32), vnni.view(np.uint32))
    portable = kernel_mod.kernel(PORTABLE)
    assert portable is not None
    assert not portable.amx
    monkeypatch.setattr(portable, "int8_as_float", False)  # the portable integer kernel, not the float one
    monkeypatch.setattr(kernel_mod, "kernel", lambda flags=None: portable)
    np.testing.assert_array_equal(maxsim(queries, packed).view(np.uint32), amx.view(np.uint32))


def test_amx_in_several_threads(native: kernel_mod.Kernel, monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller and the pool's workers each load the tile configuration: more threads than cores, same scores."""
    rng = np.random.default_rng(5)
    lengths = [int(n) for n in rng.integers(0, 1500, 40)]
    pages = [rng.standard_normal((n, 128)).astype(np.float32) for n in lengths]
    packed = PackedDocs.from_encoded(lengths, [encode(p, "int8") for p in pages], 128, "int8")
    queries = [rng.standard_normal((n, 128)).astype(np.float32) for n in (20, 32)]
    monkeypatch.setattr(kernel_mod, "kernel", lambda flags=None: native)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 5)  # run_pages: the caller + 4 workers
    amx, vnni = _scores(native, True, queries, packed), _scores(native, False, queries, packed)
    np.testing.assert_array_equal(amx.view(np.uint32), vnni.view(np.uint32))


@pytest.mark.parametrize("d", [128, 24, 13])
def test_amx_binary_bits_bit_for_bit(d: int, native: kernel_mod.Kernel) -> None:
    """maxsim_int's kind 1 (sign bits expanded to bytes 0/1, the caller's corr subtracted), called directly: the
    scorer uses the lookup-table kernel for binary codes, but the integer kernel's contract holds on both paths."""
    rng = np.random.default_rng(d)
    offsets = np.array([0, 5, 5, 21, 70, 333], dtype=np.int64)
    d4, n_lanes = -(-d // 4), 64
    bits = rng.integers(0, 256, (int(offsets[-1]), -(-d // 8)), dtype=np.uint8)
    # (blocks, d4, limbs, lanes, 4); the padding dims past d are not 0 here: both paths ignore them
    qi = rng.integers(-128, 128, (n_lanes // 32, d4, 3, 32, 4), dtype=np.int8)
    corr = rng.integers(-5000, 5000, (n_lanes // 32, 3, 32), dtype=np.int32)
    results = []
    for amx in (True, False):
        native.use_amx(amx)
        out = np.full((offsets.size - 1, n_lanes), np.nan, dtype=np.float32)
        scratch = np.empty(4 * d4 * 4 + 64, dtype=np.uint8)
        native.maxsim_int(
            qi.ctypes.data, n_lanes, d, bits.ctypes.data, None, 1, corr.ctypes.data, offsets.ctypes.data,
            0, offsets.size - 1, out.ctypes.data, scratch.ctypes.data,
        )  # fmt: skip
        results.append(out)
    np.testing.assert_array_equal(results[0].view(np.uint32), results[1].view(np.uint32))
    assert (results[0][1] == 0).all()
    assert np.isfinite(results[0]).all()


@pytest.mark.parametrize("offsets", [[0, 1, 20001], [0, 9000, 18000, 27000, 36000]])
def test_run_pages_ranges(offsets: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller runs the first range, the pool the others; cuts that all fall inside one page leave one range."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    seen: list[tuple[int, int]] = []
    kernel_mod.run_pages(np.array(offsets, dtype=np.int64), lambda a, b: seen.append((a, b)))
    ranges = sorted(seen)
    assert ranges[0][0] == 0
    assert ranges[-1][1] == len(offsets) - 1
    assert all(b0 == a1 for (_, b0), (a1, _) in itertools.pairwise(ranges))
