"""What indexing and search share: the model behind them (:class:`EmbeddingModel`), the one rule for a full
model queue while a document is written (:class:`QueueRetry`), and the Matryoshka cut of dense vectors to a
collection's size. The task units and queries are embedded with is :func:`service.collections.tasks.task_spec`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from model.pooling import truncate as truncate_dims
from model.types import PromptType, Task, TaskSpec
from service.collections.tasks import task_spec
from service.errors import QueueFullError

if TYPE_CHECKING:
    from colbert.store import CollectionConfig
    from model.processor import PreparedInput, Processor
    from model.types import EmbeddingOutput

__all__ = ["PASSAGE", "QUERY", "EmbedFn", "EmbeddingModel", "QueueRetry", "collection_spec", "truncate_dense"]

T = TypeVar("T")
PASSAGE = TaskSpec(Task.RETRIEVAL, PromptType.PASSAGE)
QUERY = TaskSpec(Task.RETRIEVAL, PromptType.QUERY)
EmbedFn = Callable[["Sequence[PreparedInput]"], Awaitable["list[EmbeddingOutput]"]]


def collection_spec(config: CollectionConfig, prompt: PromptType) -> TaskSpec:
    """The former name of :func:`service.collections.tasks.task_spec` (kept for callers outside this package)."""
    return task_spec(config, prompt)


@dataclass(slots=True)
class QueueRetry:
    """The one rule for a full model queue (429) while a document is embedded: the first call raises
    ``QueueFullError`` unless ``wait_when_full`` (a background job or the CLI); once a call got through, the
    document is under way and later calls wait ``retry_after_s`` and retry."""

    wait_when_full: bool
    retry_after_s: float = 1.0
    started: bool = False

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        while True:
            try:
                out = await fn()
            except QueueFullError:
                if not (self.wait_when_full or self.started):
                    raise
                await asyncio.sleep(max(self.retry_after_s, 0.05))
                continue
            self.started = True
            return out


def truncate_dense(dense: np.ndarray, dim: int, hidden_size: int, allowed: Sequence[int]) -> np.ndarray:
    """(N, hidden) unit vectors -> (N, dim) unit vectors (Matryoshka slice + renormalise)."""
    if dim == hidden_size:
        return dense
    return np.asarray(truncate_dims(dense, dim, allowed), dtype=np.float32)  # (N, dim)


@dataclass(frozen=True, slots=True)
class EmbeddingModel:
    """The processor, the embed call (the batcher behind the server, the encoder in a thread in the CLI), the
    preprocessing pool and the sizes the model produces. Made once per app / CLI run."""

    processor: Processor
    embed: EmbedFn
    pool: Executor
    hidden_size: int
    matryoshka_dims: tuple[int, ...]

    def dense_for(self, dense: np.ndarray, dim: int) -> np.ndarray:
        """(N, hidden) model vectors -> (N, dim) vectors of a collection of dense size ``dim``."""
        return truncate_dense(dense, dim, self.hidden_size, self.matryoshka_dims)

    def start(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """``fn`` started in the pool now; await the future for its result."""
        return asyncio.get_running_loop().run_in_executor(self.pool, fn)
