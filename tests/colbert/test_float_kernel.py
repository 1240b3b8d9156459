"""The float kernel (``maxsim_float``): this CPU's vector path (AVX-512 or AVX2 + FMA + F16C) and the portable C are
the same fused multiply-adds in the same order per query lane, so they score every float storage bit for bit alike
(float16 and bfloat16 widened exactly: hardware conversion and the portable decoder agree)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import colbert._kernel as kernel_mod
from colbert.quantize import decode, encode
from colbert.scoring import PackedDocs, maxsim

PORTABLE = ("-O2", "-shared", "-fPIC", "-march=x86-64")
LENGTHS = [1, 2, 3, 4, 5, 7, 8, 9, 0, 16, 17, 25, 100, 0, 301]


@pytest.mark.parametrize("storage", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("d", [128, 20, 7])
def test_native_and_portable_builds_agree_bit_for_bit(
    storage: str, d: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kernel_mod, "cache_dir", tmp_path)
    native, portable = kernel_mod.kernel(), kernel_mod.kernel(PORTABLE)
    if native is None or portable is None:
        pytest.skip("no C compiler")
    rng = np.random.default_rng(d)
    pages = [rng.standard_normal((n, d)).astype(np.float32) for n in LENGTHS]
    pages[3][0, :3] = [65504.0, 6e-8, -0.0]  # float16's largest normal, a subnormal, a signed zero
    packed = PackedDocs.from_list(pages, dtype="bfloat16" if storage == "bfloat16" else np.dtype(storage))
    queries = [rng.standard_normal((n, d)).astype(np.float32) for n in (1, 5, 32, 45)]
    monkeypatch.setattr(kernel_mod, "kernel", lambda flags=None: native)
    fast = maxsim(queries, packed)
    monkeypatch.setattr(kernel_mod, "kernel", lambda flags=None: portable)
    slow = maxsim(queries, packed)
    np.testing.assert_array_equal(fast, slow)
    assert np.isfinite(fast).all()
    if storage != "float32":
        tokens = packed.tokens
        values = tokens.float().numpy() if isinstance(tokens, torch.Tensor) else np.asarray(tokens, np.float32)
        exact = PackedDocs(np.ascontiguousarray(values), packed.offsets)
        np.testing.assert_array_equal(maxsim(queries, exact), slow)  # widening is exact: same as float32 input


@pytest.mark.parametrize("build", ["native", "portable"])
@pytest.mark.parametrize("as_float", [True, False])
def test_int8_through_either_kernel(
    build: str, as_float: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """int8 codes: widened to code · scale in the float kernel (the choice without VNNI) they score exactly as float32
    storage of the decoded values; the integer kernel (fixed-point query) stays within its stated error."""
    monkeypatch.setattr(kernel_mod, "cache_dir", tmp_path)
    built = kernel_mod.kernel() if build == "native" else kernel_mod.kernel(PORTABLE)
    if built is None:
        pytest.skip("no C compiler")
    monkeypatch.setattr(built, "int8_as_float", as_float)
    monkeypatch.setattr(kernel_mod, "kernel", lambda flags=None: built)
    rng = np.random.default_rng(11)
    pages = [rng.standard_normal((n, 128)).astype(np.float32) for n in LENGTHS]
    blobs = [encode(p, "int8") for p in pages]
    values = [decode(b, p.shape[0], 128, "int8") for b, p in zip(blobs, pages, strict=True)]
    packed = PackedDocs.from_encoded([p.shape[0] for p in pages], blobs, 128, "int8")
    queries = [rng.standard_normal((n, 128)).astype(np.float32) for n in (1, 32, 45)]
    got = maxsim(queries, packed)
    as_f32 = maxsim(queries, PackedDocs.from_list(values))
    if as_float:
        np.testing.assert_array_equal(got, as_f32)
    want = np.array([[0.0 if v.size == 0 else float((q.astype(np.float64) @ v.T.astype(np.float64)).max(1).sum())
                      for v in values] for q in queries])  # fmt: skip
    # float32 precision of scores up to ≈ 1,400 (measured: 1.2e-4 absolute, 9e-8 relative, either kernel)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-5)
