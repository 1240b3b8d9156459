"""Ranking checks that respect numeric tolerance: two scores closer than the tolerance may come in either order.

Two computations of the same scores (the server's batched forward pass and the library's, float32 sums in another
order) agree to ~1e-7, and the tiny random checkpoint makes near-equal scores common (0.21161814 vs 0.21161826), so
asserting ``argsort`` of one equals the order of the other fails on some machines. :func:`assert_ranked` asserts
what a ranking promises instead: a pair out of order only where its scores are within ``atol``, and nothing left
out scoring more than ``atol`` above what was kept.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def assert_ranked(got: Sequence[K], expected: Mapping[K, float], *, atol: float) -> None:
    """``got`` (best first) is a top-``len(got)`` ranking of ``expected``'s keys by their expected scores, up to
    ``atol``.

    >>> assert_ranked(["b", "a"], {"a": 1.0, "b": 1.0 + 1e-7, "c": 0.5}, atol=1e-6)
    >>> assert_ranked(["a", "b"], {"a": 1.0, "b": 2.0}, atol=1e-6)
    Traceback (most recent call last):
    AssertionError: 'a' (1.0) ranked above 'b' (2.0): more than 1e-06 apart
    >>> assert_ranked(["a"], {"a": 1.0, "b": 2.0}, atol=1e-6)
    Traceback (most recent call last):
    AssertionError: 'b' (2.0) left out, above 'a' (1.0) which was kept
    """
    assert len(set(got)) == len(got), f"a key ranked twice: {list(got)}"
    unknown = [key for key in got if key not in expected]
    assert not unknown, f"ranked keys that have no expected score: {unknown}"
    for i, above in enumerate(got):
        for below in got[i + 1 :]:
            assert expected[above] >= expected[below] - atol, (
                f"{above!r} ({expected[above]}) ranked above {below!r} ({expected[below]}): more than {atol} apart"
            )
    if got:
        last = min(got, key=lambda key: expected[key])
        for key in expected.keys() - set(got):
            assert expected[key] <= expected[last] + atol, (
                f"{key!r} ({expected[key]}) left out, above {last!r} ({expected[last]}) which was kept"
            )
