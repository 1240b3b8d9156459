"""Background indexing jobs (``POST .../documents?wait=false``) and their progress.

A job is queued at once (202 + ``Location: /v1/collections/{name}/jobs/{id}``) and runs as an asyncio task;
at most ``max_running`` jobs index at the same time (the others wait in ``queued``), and at most
``max_active`` are queued or running (beyond it: 429 + Retry-After). ``GET .../jobs/{id}`` shows
``status`` (queued | running | succeeded | failed), ``pages_done`` / ``pages_total`` and, at the end, the
document or the error body a synchronous request would have received.

Jobs live in memory: finished ones are kept (newest ``keep_finished``) for polling; a restart forgets them
(a document is stored atomically, so a job cut by a restart left nothing behind).
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from service.errors import ErrorInfo, QueueFullError, error_info

if TYPE_CHECKING:
    from colbert.store import DocumentInfo

__all__ = ["IndexJob", "JobRegistry", "JobStatus"]

_LOG = logging.getLogger("jev4.jobs")


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(eq=False)
class IndexJob:
    """One document being indexed in the background; also its :class:`~service.collections.indexing.Progress`."""

    id: str
    collection: str
    document_id: str
    created_at: float = field(default_factory=time.time)
    status: JobStatus = JobStatus.QUEUED
    pages_done: int = 0
    pages_total: int | None = None
    finished_at: float | None = None
    document: DocumentInfo | None = None
    error: ErrorInfo | None = None

    def start(self, pages_total: int) -> None:
        self.pages_total = pages_total

    def advance(self, pages: int) -> None:
        self.pages_done += pages

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)


Work = Callable[[IndexJob], Awaitable["DocumentInfo"]]


class JobRegistry:
    """The jobs of one app (see the module doc). Use from the event loop only."""

    def __init__(
        self, *, max_running: int = 2, max_active: int = 64, keep_finished: int = 1000, retry_after_s: int = 1
    ) -> None:
        if max_running < 1 or max_active < 1 or keep_finished < 0:
            raise ValueError(
                f"max_running and max_active must be >= 1 and keep_finished >= 0, "
                f"got {max_running}, {max_active}, {keep_finished}"
            )
        self.max_active = max_active
        self.keep_finished = keep_finished
        self.retry_after_s = retry_after_s
        self._slots = asyncio.Semaphore(max_running)
        self._jobs: dict[str, IndexJob] = {}
        self._finished: collections.deque[str] = collections.deque()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def active(self) -> int:
        """Jobs queued or running."""
        return len(self._tasks)

    def submit(self, collection: str, document_id: str, work: Work) -> IndexJob:
        """Queue ``work``; QueueFullError (429) when ``max_active`` jobs are already queued or running."""
        if len(self._tasks) >= self.max_active:
            raise QueueFullError(
                f"{len(self._tasks)} indexing jobs are queued or running, the limit is {self.max_active}; retry later",
                retry_after=self.retry_after_s,
            )
        job = IndexJob(uuid.uuid4().hex, collection, document_id)
        self._jobs[job.id] = job
        self._tasks[job.id] = asyncio.create_task(self._run(job, work), name=f"index-job-{job.id}")
        return job

    def list(self, collection: str | None = None) -> list[IndexJob]:
        """The jobs this server remembers (every queued or running one, the newest ``keep_finished`` finished
        ones), of one collection or of all, newest first."""
        jobs = [j for j in self._jobs.values() if collection is None or j.collection == collection]
        return sorted(jobs, key=lambda j: j.created_at, reverse=True)

    def get(self, collection: str, job_id: str) -> IndexJob | None:
        job = self._jobs.get(job_id)
        return job if job is not None and job.collection == collection else None

    async def _run(self, job: IndexJob, work: Work) -> None:
        try:
            async with self._slots:
                job.status = JobStatus.RUNNING
                job.document = await work(job)
                job.status = JobStatus.SUCCEEDED
        except asyncio.CancelledError:
            job.error = ErrorInfo(503, "service_unavailable", "job_cancelled", "the server stopped this job")
            job.status = JobStatus.FAILED
            raise
        except Exception as exc:  # noqa: BLE001 - outermost layer of a background task: report, never raise
            info = error_info(exc)
            if info is None:
                _LOG.error("indexing job %s failed", job.id, exc_info=exc)
                info = ErrorInfo(500, "server_error", "internal_error", "internal server error")
            job.error = info
            job.status = JobStatus.FAILED
        finally:
            job.finished_at = time.time()
            self._tasks.pop(job.id, None)
            self._remember(job)

    def _remember(self, job: IndexJob) -> None:
        self._finished.append(job.id)
        while len(self._finished) > self.keep_finished:
            self._jobs.pop(self._finished.popleft(), None)

    async def close(self) -> None:
        """Cancel every queued or running job and wait for them to end."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
