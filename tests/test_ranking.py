"""tests/ranking.py's tolerant ranking check: its examples, and the case that made it (issue 24 item 9)."""

from __future__ import annotations

import doctest

import pytest

import tests.ranking
from tests.ranking import assert_ranked


def test_examples() -> None:
    assert doctest.testmod(tests.ranking).failed == 0


def test_the_near_tie_that_failed_on_a_fresh_clone() -> None:
    library = {0: 0.21161814, 1: 0.21161826, 2: 0.1, 3: 0.3}  # the library's scores; the server ranked 0 first
    assert_ranked([3, 0, 1], library, atol=1e-4)
    with pytest.raises(AssertionError, match="ranked above"):
        assert_ranked([0, 3, 1], library, atol=1e-4)  # a real inversion is still caught
    with pytest.raises(AssertionError, match="left out"):
        assert_ranked([0, 1, 2], library, atol=1e-4)  # and a wrong top-k
    with pytest.raises(AssertionError, match="twice"):
        assert_ranked([3, 3], library, atol=1e-4)
    with pytest.raises(AssertionError, match="no expected score"):
        assert_ranked([7], library, atol=1e-4)
