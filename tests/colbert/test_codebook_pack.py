"""The residual codes' byte packing (``colbert.codebook._pack``): base ``levels`` digits, first dimension most
significant, checked against plain Python integers for every level count, with a last byte part-filled."""

from __future__ import annotations

import numpy as np
import pytest

from colbert.codebook import PER_BYTE, _pack, _unpack


def reference(codes: np.ndarray, levels: int) -> list[list[int]]:
    per = PER_BYTE[levels]
    out = []
    for row in codes.tolist():
        row = row + [0] * (-len(row) % per)
        out.append(
            [sum(c * levels ** (per - 1 - j) for j, c in enumerate(row[i : i + per])) for i in range(0, len(row), per)]
        )
    return out


@pytest.mark.parametrize("levels", sorted(PER_BYTE))
@pytest.mark.parametrize("d", [1, 7, 128, 131])
def test_pack_is_base_levels_digits_and_unpacks(levels: int, d: int) -> None:
    rng = np.random.default_rng(levels * 1000 + d)
    codes = rng.integers(0, levels, (50, d)).astype(np.uint8)
    codes[0] = levels - 1  # the largest byte of each level count (all digits at their top)
    packed = _pack(codes, levels)
    assert packed.dtype == np.uint8
    assert packed.tolist() == reference(codes, levels)
    np.testing.assert_array_equal(_unpack(packed, levels, d), codes)
