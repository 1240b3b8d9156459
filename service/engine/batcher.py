"""Dynamic batching: many async callers, one worker thread that owns the model.

Callers ``await batcher.embed(rows)``; their rows join one FIFO queue. The worker repeatedly forms a batch:

1. it looks at a *window* at the head of the queue (the oldest rows, up to ``window_factor`` budgets);
2. sorts the window by length and grows a batch around the OLDEST row, taking the nearest lengths
   (shorter ones first), while ``backend.batch_cost(lengths) <= max_batch_tokens`` and ``rows <=
   max_batch_size``; a longer row runs alone. The backend says what a batch costs because only it knows how it
   runs one: the sum of the rows' tokens when it packs rows end to end (the encoder), rows x longest row when it
   pads; image rows count their full sequence, image pad tokens included;
3. runs ``backend.embed`` once and hands each row's output back to its caller.

So the oldest row is always served next (no starvation) and rows of similar length share a forward pass. Each
request's time waiting for its first row to run and from then until its last row is done go to the
``jev4_request_queue_seconds`` / ``jev4_request_forward_seconds`` histograms.
A late-chunking request is one joined sequence and runs alone. Guarantees:

- bounded queue: a request that would push the waiting rows above ``max_queue_rows`` gets QueueFullError
  (HTTP 429 + Retry-After) at once; a request into an EMPTY queue is always accepted (its size is bounded by
  the request limits);
- a batch that raises fails every request with a row in it, with the same error; their other rows are dropped;
- a caller that is cancelled (client gone) has its waiting rows dropped before they run.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from model.errors import ModelError
from service.errors import ModelFailureError, NotReadyError, QueueFullError, ServiceError
from service.settings_rules import env_name

if TYPE_CHECKING:
    from model.processor import LateChunkInput, PreparedInput
    from model.types import EmbeddingOutput
    from service.metrics import Metrics

__all__ = ["Batcher", "EmbedBackend"]


class EmbedBackend(Protocol):
    """What the worker calls (``model.encoder.Encoder`` satisfies it)."""

    def batch_cost(self, lengths: Sequence[int]) -> int:
        """Tokens one forward pass over rows of these lengths costs (what ``max_batch_tokens`` bounds)."""
        ...

    def embed(self, items: Sequence[PreparedInput], *, return_multivector: bool = False) -> list[EmbeddingOutput]: ...

    def embed_late_chunks(self, item: LateChunkInput, *, return_multivector: bool = False) -> list[EmbeddingOutput]: ...


@dataclass(eq=False)
class _Job:
    """One caller's request: its future, its results as they arrive, and whether it is still wanted."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[EmbeddingOutput]]
    size: int
    return_multivector: bool
    late: LateChunkInput | None = None
    results: list[EmbeddingOutput | None] = field(default_factory=list)
    remaining: int = 0
    dead: bool = False  # cancelled by the caller, or failed: its waiting rows are dropped
    enqueued: float = 0.0  # perf_counter() when it joined the queue
    started: float | None = None  # perf_counter() when its first row began to run

    def __post_init__(self) -> None:
        self.results = [None] * self.size
        self.remaining = self.size


@dataclass(eq=False)
class _Row:
    job: _Job
    index: int
    item: PreparedInput | None  # None for the single row of a late-chunking job
    cost: int
    seq: int  # arrival order (FIFO)


class Batcher:
    """See the module doc. Start with :meth:`start`, stop with :meth:`close`."""

    def __init__(
        self,
        backend: EmbedBackend,
        *,
        max_batch_tokens: int,
        max_batch_size: int,
        max_queue_rows: int,
        retry_after_s: int = 1,
        window_factor: int = 4,
        metrics: Metrics | None = None,
    ) -> None:
        self.backend = backend
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_size = max_batch_size
        self.max_queue_rows = max_queue_rows
        self.retry_after_s = retry_after_s
        self.window_factor = window_factor
        self.metrics = metrics
        self._pending: collections.deque[_Row] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._seq = 0
        self._thread: threading.Thread | None = None

    # ---- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="jev4-model-worker", daemon=True)
            self._thread.start()

    def close(self, timeout: float | None = 30.0) -> None:
        """Refuse new work, fail what still waits with NotReadyError, let the running batch finish, join."""
        with self._cond:
            self._closed = True
            dropped = list(self._pending)
            self._pending.clear()
            self._cond.notify_all()
        error = NotReadyError("the server is shutting down")
        for job in {row.job for row in dropped}:
            self._fail(job, error)
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def queue_rows(self) -> int:
        """Rows waiting for the model (not counting the batch being run)."""
        return len(self._pending)

    # ---- callers -------------------------------------------------------------------------------------------
    async def embed(self, items: Sequence[PreparedInput], *, return_multivector: bool = False) -> list[EmbeddingOutput]:
        """Embed ``items`` (any mix of tasks and kinds); outputs in input order."""
        if not items:
            return []
        job = self._new_job(len(items), return_multivector)
        self._enqueue(job, [(i, item, item.num_tokens) for i, item in enumerate(items)])
        return await self._wait(job)

    async def embed_late_chunks(
        self, item: LateChunkInput, *, return_multivector: bool = False
    ) -> list[EmbeddingOutput]:
        """Embed one late-chunking sequence; one output per span."""
        job = self._new_job(1, return_multivector)
        job.late = item
        self._enqueue(job, [(0, None, item.prepared.num_tokens)])
        return await self._wait(job)

    def _new_job(self, size: int, return_multivector: bool) -> _Job:
        loop = asyncio.get_running_loop()
        return _Job(loop=loop, future=loop.create_future(), size=size, return_multivector=return_multivector)

    def _enqueue(self, job: _Job, rows: list[tuple[int, PreparedInput | None, int]]) -> None:
        with self._cond:
            if self._closed or self._thread is None:
                raise NotReadyError("the model worker is not running")
            waiting = len(self._pending)
            if waiting and waiting + len(rows) > self.max_queue_rows:
                if self.metrics is not None:
                    self.metrics.rejected.labels(reason="queue_full").inc()
                raise QueueFullError(
                    f"the server is busy: {waiting} rows wait for the model, this request adds {len(rows)}, "
                    f"above the queue limit of {self.max_queue_rows} ({env_name('max_queue_rows')}); retry later",
                    retry_after=self.retry_after_s,
                )
            job.enqueued = time.perf_counter()
            for index, item, cost in rows:
                self._seq += 1
                self._pending.append(_Row(job, index, item, max(1, cost), self._seq))
            self._set_depth()
            self._cond.notify()

    async def _wait(self, job: _Job) -> list[EmbeddingOutput]:
        try:
            return await job.future
        except asyncio.CancelledError:
            with self._cond:
                job.dead = True  # the worker drops its waiting rows
            raise

    # ---- worker --------------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                batch = self._take_batch()
                self._set_depth()
            if batch:
                self._execute(batch)

    def _take_batch(self) -> list[_Row]:
        """Pick the next batch (called with the lock held); drops rows of dead jobs."""
        if any(row.job.dead for row in self._pending):
            self._pending = collections.deque(row for row in self._pending if not row.job.dead)
        if not self._pending:
            return []
        head = self._pending[0]
        if head.item is None:  # late chunking: alone
            self._pending.popleft()
            return [head]
        window: list[_Row] = []
        total = 0
        for row in self._pending:
            if row.item is None or total >= self.window_factor * self.max_batch_tokens:
                break
            if len(window) >= self.window_factor * self.max_batch_size:
                break
            window.append(row)
            total += row.cost
        chosen = self._grow_around_head(sorted(window, key=lambda r: (r.cost, r.seq)), head)
        taken = {id(row) for row in chosen}
        self._pending = collections.deque(row for row in self._pending if id(row) not in taken)
        return sorted(chosen, key=lambda r: r.cost)

    def _grow_around_head(self, ordered: list[_Row], head: _Row) -> list[_Row]:
        """Grow a contiguous run of ``ordered`` (sorted by cost) around ``head`` within the budget."""
        lo = hi = ordered.index(head)
        lengths = [row.cost for row in ordered]
        while hi - lo + 1 < self.max_batch_size:
            if lo > 0 and self._fits(lengths[lo - 1 : hi + 1]):
                lo -= 1
            elif hi + 1 < len(ordered) and self._fits(lengths[lo : hi + 2]):
                hi += 1
            else:
                break
        return ordered[lo : hi + 1]

    def _fits(self, lengths: list[int]) -> bool:
        return self.backend.batch_cost(lengths) <= self.max_batch_tokens

    def _execute(self, batch: list[_Row]) -> None:
        jobs = list({id(row.job): row.job for row in batch}.values())
        multivector = any(job.return_multivector for job in jobs)
        cost = self.backend.batch_cost([row.cost for row in batch])
        late = batch[0].job.late
        start = time.perf_counter()
        for job in jobs:
            if job.started is None:
                job.started = start
        try:
            if late is not None:
                outputs = self.backend.embed_late_chunks(late, return_multivector=multivector)
            else:
                items = [row.item for row in batch if row.item is not None]
                outputs = self.backend.embed(items, return_multivector=multivector)
                if len(outputs) != len(batch):
                    raise ModelFailureError(f"the model returned {len(outputs)} outputs for {len(batch)} rows")
        except BaseException as exc:  # outermost layer of the worker thread: no caller may be left waiting
            if self.metrics is not None:
                self.metrics.batch_failures.inc()
            error = _as_caller_error(exc, len(batch))
            for job in jobs:
                self._fail(job, error)
            if not isinstance(exc, Exception):
                raise
            return
        self._observe(len(batch), cost, time.perf_counter() - start)
        if late is not None:
            self._resolve(batch[0].job, list(outputs))
            return
        for row, out in zip(batch, outputs, strict=True):
            job = row.job
            job.results[row.index] = out if job.return_multivector else dataclasses.replace(out, multivector=None)
            job.remaining -= 1
            if job.remaining == 0:
                self._resolve(job, [r for r in job.results if r is not None])

    def _observe(self, rows: int, cost: int, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.batch_rows.observe(rows)
            self.metrics.batch_tokens.observe(cost)
            self.metrics.batch_duration.observe(seconds)

    def _observe_job(self, job: _Job) -> None:
        if self.metrics is not None and job.started is not None:
            self.metrics.request_queue.observe(job.started - job.enqueued)
            self.metrics.request_forward.observe(time.perf_counter() - job.started)

    def _set_depth(self) -> None:
        if self.metrics is not None:
            self.metrics.queue_rows.set(len(self._pending))

    # ---- hand-back (thread-safe) ---------------------------------------------------------------------------
    def _resolve(self, job: _Job, outputs: list[EmbeddingOutput]) -> None:
        self._observe_job(job)
        if not job.loop.is_closed():
            job.loop.call_soon_threadsafe(_set_result, job.future, outputs)

    def _fail(self, job: _Job, error: BaseException) -> None:
        with self._cond:
            job.dead = True
        if not job.loop.is_closed():
            job.loop.call_soon_threadsafe(_set_exception, job.future, error)


def _as_caller_error(exc: BaseException, rows: int) -> BaseException:
    """Known errors pass through (their HTTP mapping applies); anything else becomes a ModelFailureError
    whose message names the exception type but carries no traceback."""
    if isinstance(exc, ServiceError | ModelError):
        return exc
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return ModelFailureError(f"the model failed on a batch of {rows} rows: {type(exc).__name__}: {text}")


def _set_result(future: asyncio.Future[list[EmbeddingOutput]], outputs: list[EmbeddingOutput]) -> None:
    if not future.done():
        future.set_result(outputs)


def _set_exception(future: asyncio.Future[list[EmbeddingOutput]], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
