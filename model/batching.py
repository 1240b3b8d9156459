"""Length-sorted batching under a token budget, for callers that hand the encoder many rows at once.

Padding a batch to its longest row wastes compute on every shorter row (and attention grows with the square
of the padded length). Sorting rows by length and cutting batches so that ``rows × longest ≤ max_tokens``
keeps similar lengths together: the padding left is the difference between neighbours in sorted order.

>>> plan_batches([5, 300, 7, 290, 6], max_tokens=600, max_rows=8)
[[1, 3], [2, 4, 0]]
>>> plan_batches([5, 300, 7, 290, 6], max_tokens=600, max_rows=2)
[[1, 3], [2, 4], [0]]

A row longer than ``max_tokens`` runs alone. Batches come longest first; the caller restores input order.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["padded_tokens", "plan_batches"]


def plan_batches(lengths: Sequence[int], *, max_tokens: int, max_rows: int) -> list[list[int]]:
    """Indices of ``lengths`` grouped into batches, longest rows first, each within both budgets."""
    if max_tokens < 1 or max_rows < 1:
        raise ValueError(f"budgets must be positive, got max_tokens={max_tokens}, max_rows={max_rows}")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        if current and (len(current) + 1 > max_rows or (len(current) + 1) * longest > max_tokens):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def padded_tokens(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> int:
    """Tokens computed when each batch is padded to its longest row (``sum(lengths)`` means no waste)."""
    return sum(len(b) * max(lengths[i] for i in b) for b in batches if b)
