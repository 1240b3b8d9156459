"""The float kernel (``maxsim_float``): this CPU's vector path (AVX-512 or AVX2 + FMA + F16C) and the portable C are
the same fused multiply-adds in the same order per query lane, so they score every float storage bit for bit alike
(float16 and bfloat16 widened exactly: hardware conversion and the portable decoder agree)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import colbert._kernel as kernel_mod
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
