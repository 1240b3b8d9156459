"""Tables and goal checks for ``bench/encoder.py`` (pure formatting over the measured numbers)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Goal", "Measurement", "format_table", "median"]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


@dataclass
class Measurement:
    """One contestant on one workload in one dtype: the timed repeats and what was processed."""

    contestant: str
    items: int = 0
    tokens: int = 0
    seconds: list[float] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return median(self.seconds)

    @property
    def min_s(self) -> float:
        return min(self.seconds)

    @property
    def items_per_s(self) -> float:
        return self.items / self.median_s

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.median_s


@dataclass(frozen=True)
class Goal:
    """An issue-5 goal, the figure it is judged on, and whether it holds (None: not measured in this run)."""

    name: str
    figure: str
    met: bool | None

    @property
    def verdict(self) -> str:
        return {True: "MET", False: "NOT MET", None: "not measured"}[self.met]


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> str:
    """A plain fixed-width table (right-aligned numbers, left-aligned text)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    numeric = [all(_is_number(r[i]) or r[i] is None for r in rows) if rows else False for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [title] if title else []
    out += [line(list(headers)), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if value == 0 or 0.01 <= abs(value) < 1e5:
            return f"{value:.3g}" if abs(value) < 10 else f"{value:,.1f}"
        return f"{value:.2e}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def goal_rows(goals: Sequence[Goal]) -> list[list[str]]:
    return [[g.name, g.figure, g.verdict] for g in goals]


def ratio_text(ratios: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}×" for k, v in ratios.items())
