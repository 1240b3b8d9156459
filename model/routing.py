"""Which task adapter applies to which rows (or, packed, tokens) of a forward pass: a plain value passed down.

:class:`Routing` is built once per forward by ``model.network`` and handed as an argument to every fused projection
(``model.lora``); nothing is read from context. Rows of a batch are grouped by task first (``Encoder.embed``), so a
mixed batch is one contiguous run of rows per task and no projection gathers or scatters rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["Routing", "TaskRun", "TokenTasks", "task_runs"]


@dataclass(frozen=True, slots=True)
class TaskRun:
    """Batch rows (or, packed, tokens) ``start:stop`` use adapter ``task``."""

    task: str
    start: int
    stop: int


def task_runs(names: Sequence[str]) -> tuple[TaskRun, ...]:
    """Runs of consecutive equal names: ``["a", "a", "b", "a"]`` → ``(a 0:2, b 2:3, a 3:4)``.

    >>> task_runs(["a", "a", "b"])
    (TaskRun(task='a', start=0, stop=2), TaskRun(task='b', start=2, stop=3))
    """
    runs: list[TaskRun] = []
    start = 0
    for i in range(1, len(names) + 1):
        if i == len(names) or names[i] != names[start]:
            runs.append(TaskRun(names[start], start, i))
            start = i
    return tuple(runs)


@dataclass(frozen=True, slots=True)
class Routing:
    """The task runs of one input: over batch rows (``tokens=False``) or over the tokens of a packed ``(1, T)``
    sequence (``tokens=True``)."""

    runs: tuple[TaskRun, ...]
    tokens: bool = False

    @classmethod
    def by_rows(cls, names: Sequence[str]) -> Routing:
        """Adapter ``names[i]`` for batch row ``i``."""
        return cls(task_runs(list(names)))

    @classmethod
    def packed(cls, names: Sequence[str], lengths: Sequence[int]) -> Routing:
        """Adapter ``names[i]`` for the ``i``-th row of a packed sequence, ``lengths[i]`` tokens long.

        >>> Routing.packed(["a", "a", "b"], [3, 2, 4]).runs
        (TaskRun(task='a', start=0, stop=5), TaskRun(task='b', start=5, stop=9))
        """
        if len(lengths) != len(names):
            raise ValueError(f"{len(names)} task names for {len(lengths)} packed rows")
        ends = [0, *itertools.accumulate(lengths)]
        return cls(tuple(TaskRun(r.task, ends[r.start], ends[r.stop]) for r in task_runs(list(names))), True)

    def window(self, start: int, stop: int) -> Routing:
        """The routing of an input that holds only tokens ``start:stop`` of the sequence (a packed routing is
        narrowed; one by rows applies to every slice along the sequence as it is).

        >>> Routing.packed(["a", "b"], [5, 4]).window(4, 7).runs
        (TaskRun(task='a', start=0, stop=1), TaskRun(task='b', start=1, stop=3))
        """
        if not self.tokens:
            return self
        runs = tuple(
            TaskRun(r.task, max(r.start, start) - start, min(r.stop, stop) - start)
            for r in self.runs
            if r.start < stop and r.stop > start
        )
        return Routing(runs, True)


@dataclass(frozen=True, slots=True)
class TokenTasks:
    """Routing by a per-token weight instead of python token ranges: ``weights`` (N, len(tasks)) in the model's
    dtype, 1 where token ``i`` of the flattened input uses adapter ``tasks[j]``, 0 elsewhere (a token with no 1 —
    padding — gets no adapter). Every adapter then runs over every token and its low-rank product is multiplied
    by its column before it is added: the same sums as :class:`Routing` (an added 0 changes nothing), but no python
    integer depends on the batch, so the kernels a forward launches are the same for every batch of one shape —
    what a CUDA graph replays (``model.graphs``). Costs ``len(tasks)`` times the LoRA products (rank ≪ width)."""

    tasks: tuple[str, ...]
    weights: torch.Tensor  # (N, len(tasks))

    def window(self, start: int, stop: int) -> TokenTasks:
        """The routing of tokens ``start:stop`` (the MLPs run long inputs in slices)."""
        return TokenTasks(self.tasks, self.weights[start:stop])
