"""Length-sorted token-budget batch planning."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given
from hypothesis import strategies as st

import model.batching
from model.batching import padded_tokens, plan_batches


def test_doctests() -> None:
    assert doctest.testmod(model.batching).failed == 0


@given(
    st.lists(st.integers(1, 3000), max_size=60),
    st.integers(1, 8192),
    st.integers(1, 64),
)
def test_plan_is_a_partition_within_budgets(lengths: list[int], max_tokens: int, max_rows: int) -> None:
    batches = plan_batches(lengths, max_tokens=max_tokens, max_rows=max_rows)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert 1 <= len(b) <= max_rows
        if len(b) > 1:
            assert len(b) * max(lengths[i] for i in b) <= max_tokens
        assert [lengths[i] for i in b] == sorted((lengths[i] for i in b), reverse=True)


def test_sorting_removes_padding_waste() -> None:
    lengths = [414, 1875, 974, 749, 1199, 1424, 1652, 1082, 1756, 526, 631, 1981, 302, 1539, 861, 1305]
    in_order = [list(range(i, i + 8)) for i in (0, 8)]  # batch_size=8 in input order, as the reference does
    planned = plan_batches(lengths, max_tokens=4096, max_rows=8)
    assert padded_tokens(lengths, in_order) > 1.6 * sum(lengths)
    assert padded_tokens(lengths, planned) < 1.15 * sum(lengths)


def test_bad_budgets() -> None:
    with pytest.raises(ValueError, match="max_tokens=0"):
        plan_batches([1], max_tokens=0, max_rows=1)
