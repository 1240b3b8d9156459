"""Batcher unit tests with a fake backend (the real-model path is covered by the server tests)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from model.errors import InputTooLongError
from model.types import EmbeddingOutput
from service.engine.batcher import Batcher
from service.errors import ModelFailureError, NotReadyError, QueueFullError
from service.metrics import Metrics


@dataclass(frozen=True)
class FakeItem:
    """Stands in for PreparedInput: the batcher only reads num_tokens; value is what the fake embeds."""

    value: float
    num_tokens: int


@dataclass(frozen=True)
class FakeLate:
    prepared: FakeItem
    spans: list[tuple[int, int]]


class FakeBackend:
    """Embeds an item as [value, num_tokens]; records batches; can block or fail on demand."""

    def __init__(self, *, packed: bool = False) -> None:
        self.packed = packed
        self.batches: list[list[float]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()
        self.fail_on: float | None = None
        self.error: BaseException = RuntimeError("boom")

    def batch_cost(self, lengths: Sequence[int]) -> int:
        return sum(lengths) if self.packed else len(lengths) * max(lengths)

    def embed(self, items: Sequence[Any], *, return_multivector: bool = False) -> list[EmbeddingOutput]:
        self.started.set()
        self.gate.wait(10)
        self.batches.append([it.value for it in items])
        if self.fail_on is not None and any(it.value == self.fail_on for it in items):
            raise self.error
        mv = np.ones((2, 4), np.float32) if return_multivector else None
        return [EmbeddingOutput(np.array([it.value, it.num_tokens], np.float32), mv, it.num_tokens) for it in items]

    def embed_late_chunks(self, item: Any, *, return_multivector: bool = False) -> list[EmbeddingOutput]:
        self.batches.append([-1.0])
        return [EmbeddingOutput(np.array([float(a), float(b)], np.float32)) for a, b in item.spans]


def make(backend: FakeBackend, **kw: Any) -> Batcher:
    opts: dict[str, Any] = {"max_batch_tokens": 100, "max_batch_size": 4, "max_queue_rows": 16, "metrics": Metrics()}
    opts.update(kw)
    b = Batcher(backend, **opts)
    b.start()
    return b


def items(*values: float, tokens: int = 10) -> list[FakeItem]:
    return [FakeItem(v, tokens) for v in values]


def test_results_in_order_and_multivector_only_when_asked() -> None:
    backend = FakeBackend()
    b = make(backend)

    async def main() -> tuple[list[EmbeddingOutput], list[EmbeddingOutput]]:
        return await asyncio.gather(
            b.embed(items(1, 2, 3), return_multivector=True),  # type: ignore[arg-type]
            b.embed(items(4, 5)),  # type: ignore[arg-type]
        )

    first, second = asyncio.run(main())
    b.close()
    assert [o.dense[0] for o in first] == [1, 2, 3]
    assert [o.dense[0] for o in second] == [4, 5]
    assert all(o.multivector is not None for o in first)
    assert all(o.multivector is None for o in second)


@pytest.mark.parametrize("packed", [False, True])
def test_batches_respect_the_backends_cost_and_sort_by_length(packed: bool) -> None:
    backend = FakeBackend(packed=packed)
    backend.gate.clear()
    metrics = Metrics()
    b = make(backend, max_batch_tokens=100, max_batch_size=8, metrics=metrics)
    lengths = [50, 10, 40, 10, 30, 20]

    async def main() -> list[EmbeddingOutput]:
        blocker = asyncio.ensure_future(b.embed([FakeItem(0, 1)]))  # type: ignore[list-item]
        await asyncio.to_thread(backend.started.wait, 10)  # worker now busy: the rest queue up together
        task = asyncio.ensure_future(b.embed([FakeItem(n, n) for n in lengths]))  # type: ignore[misc]
        await asyncio.sleep(0.05)
        backend.gate.set()
        await blocker
        return await task

    out = asyncio.run(main())
    b.close()
    assert [o.dense[0] for o in out] == lengths  # caller sees input order
    for batch in backend.batches[1:]:
        assert backend.batch_cost([int(v) for v in batch]) <= 100 or len(batch) == 1
        assert batch == sorted(batch)
    assert sorted(v for batch in backend.batches[1:] for v in batch) == sorted(lengths)
    # the oldest row (50 tokens) is in the first batch after the blocker
    assert 50 in backend.batches[1]
    # packed, the budget holds more rows: 160 tokens in two passes (padded: 50+40 alone is 100, so three or more)
    assert (len(backend.batches) - 1 == 2) if packed else (len(backend.batches) - 1 >= 3)
    observed = 1 + sum(backend.batch_cost([int(v) for v in batch]) for batch in backend.batches[1:])  # blocker: 1
    assert metrics.registry.get_sample_value("jev4_batch_tokens_sum") == observed
    # per request: its queue wait and its forward time, one observation each (the blocker and the task)
    assert metrics.registry.get_sample_value("jev4_request_queue_seconds_count") == 2
    assert metrics.registry.get_sample_value("jev4_request_forward_seconds_count") == 2


def test_batches_mix_callers() -> None:
    backend = FakeBackend()
    backend.gate.clear()
    b = make(backend, max_batch_tokens=1000, max_batch_size=8)

    async def main() -> None:
        blocker = asyncio.ensure_future(b.embed(items(0)))  # type: ignore[arg-type]
        await asyncio.to_thread(backend.started.wait, 10)
        tasks = [asyncio.ensure_future(b.embed(items(float(i)))) for i in range(1, 5)]  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        backend.gate.set()
        await asyncio.gather(blocker, *tasks)

    asyncio.run(main())
    b.close()
    assert sorted(backend.batches[1]) == [1, 2, 3, 4]  # four callers, one forward pass


def test_failed_batch_fails_every_request_in_it() -> None:
    backend = FakeBackend()
    backend.gate.clear()
    backend.fail_on = 2.0
    b = make(backend, max_batch_tokens=1000, max_batch_size=8)

    async def main() -> list[Any]:
        blocker = asyncio.ensure_future(b.embed(items(0)))  # type: ignore[arg-type]
        await asyncio.to_thread(backend.started.wait, 10)
        t1 = asyncio.ensure_future(b.embed(items(1)))  # type: ignore[arg-type]
        t2 = asyncio.ensure_future(b.embed(items(2)))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        backend.gate.set()
        await blocker
        results = await asyncio.gather(t1, t2, return_exceptions=True)
        after = await b.embed(items(3))  # type: ignore[arg-type]  # the worker survived
        return [*results, after]

    r1, r2, after = asyncio.run(main())
    b.close()
    assert isinstance(r1, ModelFailureError)
    assert r1 is r2  # the same error for both callers
    assert "RuntimeError: boom" in r1.message
    assert after[0].dense[0] == 3


def test_input_errors_pass_through_unchanged() -> None:
    backend = FakeBackend()
    backend.fail_on = 1.0
    backend.error = InputTooLongError(0, 99, 10)
    b = make(backend)
    with pytest.raises(InputTooLongError):
        asyncio.run(b.embed(items(1)))  # type: ignore[arg-type]
    b.close()


def test_queue_full_raises_with_retry_after() -> None:
    backend = FakeBackend()
    backend.gate.clear()
    b = make(backend, max_queue_rows=4, retry_after_s=7)

    async def main() -> None:
        blocker = asyncio.ensure_future(b.embed(items(0)))  # type: ignore[arg-type]
        await asyncio.to_thread(backend.started.wait, 10)
        waiting = asyncio.ensure_future(b.embed(items(1, 2, 3)))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFullError) as info:
            await b.embed(items(4, 5))  # type: ignore[arg-type]
        assert info.value.retry_after == 7
        assert ("Retry-After", "7") in info.value.headers()
        backend.gate.set()
        await asyncio.gather(blocker, waiting)

    asyncio.run(main())
    b.close()


def test_empty_queue_accepts_a_request_larger_than_the_bound() -> None:
    b = make(FakeBackend(), max_queue_rows=2)
    out = asyncio.run(b.embed(items(1, 2, 3, 4, 5)))  # type: ignore[arg-type]
    b.close()
    assert len(out) == 5


def test_cancelled_caller_rows_are_dropped_before_running() -> None:
    backend = FakeBackend()
    backend.gate.clear()
    b = make(backend)

    async def main() -> None:
        blocker = asyncio.ensure_future(b.embed(items(0)))  # type: ignore[arg-type]
        await asyncio.to_thread(backend.started.wait, 10)
        doomed = asyncio.ensure_future(b.embed(items(7, 8)))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        doomed.cancel()
        await asyncio.sleep(0.01)
        backend.gate.set()
        await blocker
        await b.embed(items(9))  # type: ignore[arg-type]

    asyncio.run(main())
    b.close()
    ran = [v for batch in backend.batches for v in batch]
    assert 7 not in ran
    assert 8 not in ran
    assert 9 in ran


def test_late_chunks_run_alone() -> None:
    backend = FakeBackend()
    b = make(backend)
    late = FakeLate(FakeItem(0, 12), [(0, 5), (5, 12)])
    out = asyncio.run(b.embed_late_chunks(late))  # type: ignore[arg-type]
    b.close()
    assert [o.dense.tolist() for o in out] == [[0, 5], [5, 12]]
    assert backend.batches == [[-1.0]]


def test_closed_batcher_refuses_and_fails_waiting() -> None:
    backend = FakeBackend()
    backend.gate.clear()
    b = make(backend)

    async def main() -> Any:
        blocker = asyncio.ensure_future(b.embed(items(0)))  # type: ignore[arg-type]
        await asyncio.to_thread(backend.started.wait, 10)
        waiting = asyncio.ensure_future(b.embed(items(1)))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        closer = asyncio.ensure_future(asyncio.to_thread(b.close))
        await asyncio.sleep(0.05)
        backend.gate.set()
        await closer
        await blocker
        return await asyncio.gather(waiting, return_exceptions=True)

    (result,) = asyncio.run(main())
    assert isinstance(result, NotReadyError)
    with pytest.raises(NotReadyError):
        asyncio.run(b.embed(items(1)))  # type: ignore[arg-type]
