"""Background indexing jobs (``POST .../documents?wait=false``) and their progress.

A job is queued at once (202 + ``Location: /v1/collections/{name}/jobs/{id}``) and runs as an asyncio task;
at most ``max_running`` jobs index at the same time (the others wait in ``queued``), and at most
``max_active`` are queued or running (beyond it: 429 + Retry-After). ``GET .../jobs/{id}`` shows
``status`` (queued | running | succeeded | failed), ``pages_done`` / ``pages_total`` and, at the end, the
document or the error body a synchronous request would have received.

Jobs are visible from every process (scale-out: a poll may land on another replica than the upload): each
job's state is written to the backend's job store (:mod:`service.collections.job_store`) when it is queued
(before the 202), on each progress step and when it ends; the process running it also refreshes its
``heartbeat_at`` every ``heartbeat_s``. A poll answered by a process that does not run the job reads the store;
a queued/running job whose heartbeat is older than ``stale_after_s`` belongs to a process that stopped (restart,
crash, ``kill -9``) and is reported (and recorded) as failed with code ``job_interrupted`` — a document is stored
atomically, so such a job left nothing behind. Without a store (``store=None``) jobs live in this process only.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import dataclasses
import enum
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from colbert.store import DocumentInfo, FileInfo
from service.collections.job_store import Retention
from service.errors import ErrorInfo, QueueFullError, error_info

if TYPE_CHECKING:
    from service.collections.job_store import JobStore

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
    heartbeat_at: float = field(default_factory=time.time)
    on_change: Callable[[IndexJob], None] | None = field(default=None, repr=False)

    def start(self, pages_total: int) -> None:
        self.pages_total = pages_total
        self._changed()

    def advance(self, pages: int) -> None:
        self.pages_done += pages
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    def record(self) -> dict[str, Any]:
        """The job as stored (JSON)."""
        doc = self.document
        return {
            "id": self.id,
            "collection": self.collection,
            "document_id": self.document_id,
            "status": self.status.value,
            "pages_done": self.pages_done,
            "pages_total": self.pages_total,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "heartbeat_at": self.heartbeat_at,
            "document": None if doc is None else dataclasses.asdict(doc),
            "error": None if self.error is None else dataclasses.asdict(self.error),
        }

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> IndexJob:
        doc, err = r.get("document"), r.get("error")
        return cls(
            id=r["id"],
            collection=r["collection"],
            document_id=r["document_id"],
            created_at=r["created_at"],
            status=JobStatus(r["status"]),
            pages_done=r["pages_done"],
            pages_total=r["pages_total"],
            finished_at=r["finished_at"],
            document=None if doc is None else _document_info(doc),
            error=None if err is None else ErrorInfo(**{**err, "headers": tuple(map(tuple, err.get("headers", ())))}),
            heartbeat_at=r["heartbeat_at"],
        )

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)


Work = Callable[[IndexJob], Awaitable["DocumentInfo"]]


_CANCELLED = ErrorInfo(
    503,
    "service_unavailable",
    "job_cancelled",
    "the server stopped (shutdown or Ctrl-C) before this job finished; nothing was stored: upload the document again",
)
_INTERRUPTED = ErrorInfo(
    503,
    "service_unavailable",
    "job_interrupted",
    "the server process running this job stopped (restart, crash or scale-down) before it finished; nothing was "
    "stored: upload the document again",
)


class JobRegistry:
    """The jobs of one app (see the module doc). Use from the event loop only."""

    def __init__(
        self,
        *,
        max_running: int = 2,
        max_active: int = 64,
        retry_after_s: int = 1,
        store: JobStore | None = None,
        heartbeat_s: float = 2.0,
        stale_after_s: float = 15.0,
        retention: Retention | None = None,
    ) -> None:
        retention = retention or Retention()
        if max_running < 1 or max_active < 1 or retention.keep_finished < 0 or not 0 < heartbeat_s < stale_after_s:
            raise ValueError(
                f"max_running and max_active must be >= 1, keep_finished >= 0 and 0 < heartbeat_s < stale_after_s, "
                f"got {max_running}, {max_active}, {retention.keep_finished}, {heartbeat_s}, {stale_after_s}"
            )
        self.max_active = max_active
        self.retention = retention
        self.retry_after_s = retry_after_s
        self.store = store
        self.heartbeat_s = heartbeat_s
        self.stale_after_s = stale_after_s
        self._slots = asyncio.Semaphore(max_running)
        self._jobs: dict[str, IndexJob] = {}
        self._finished: collections.deque[str] = collections.deque()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()
        self._writer: asyncio.Task[None] | None = None

    def active(self) -> int:
        """Jobs queued or running."""
        return len(self._tasks)

    async def submit(self, collection: str, document_id: str, work: Work) -> IndexJob:
        """Queue ``work`` (recorded in the store before this returns, so any process can poll it at once);
        QueueFullError (429) when ``max_active`` jobs are already queued or running."""
        if len(self._tasks) >= self.max_active:
            raise QueueFullError(
                f"{len(self._tasks)} indexing jobs are queued or running, the limit is {self.max_active}; retry later",
                retry_after=self.retry_after_s,
            )
        job = IndexJob(uuid.uuid4().hex, collection, document_id)
        await self._save(job)
        job.on_change = self._mark
        self._jobs[job.id] = job
        self._tasks[job.id] = asyncio.create_task(self._run(job, work), name=f"index-job-{job.id}")
        if self.store is not None and self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name="index-job-writer")
        return job

    def list(self, collection: str | None = None) -> list[IndexJob]:
        """The jobs this process remembers (every queued or running one, the finished ones its store keeps: see
        :class:`~service.collections.job_store.Retention`), of one collection or of all, newest first. Other
        processes' jobs: :meth:`list_all`, :meth:`get`."""
        self._forget()
        jobs = [j for j in self._jobs.values() if collection is None or j.collection == collection]
        return sorted(jobs, key=lambda j: j.created_at, reverse=True)

    async def list_all(self, collection: str) -> builtins.list[IndexJob]:
        """The collection's jobs of every process sharing the job store (this process's own from memory, the
        freshest), newest first, at most ``keep_finished`` + the active ones; a stale job of a process that
        stopped is reported failed (job_interrupted), as :meth:`get` does."""
        own = {j.id: j for j in self.list(collection)}
        if self.store is None:
            return list(own.values())
        records = await asyncio.to_thread(self.store.list, collection, self.retention.keep_finished + self.max_active)
        jobs = dict(own)
        now = time.time()
        for record in records:
            if record["id"] in jobs or self._expired(record):
                continue
            job = IndexJob.from_record(record)
            if not job.finished and now - job.heartbeat_at > self.stale_after_s:
                job.status, job.error, job.finished_at = JobStatus.FAILED, _INTERRUPTED, now
            jobs[job.id] = job
        return sorted(jobs.values(), key=lambda j: j.created_at, reverse=True)

    async def get(self, collection: str, job_id: str) -> IndexJob | None:
        """The job, from this process or (scale-out) from the store; a stale one is reported interrupted."""
        self._forget()
        job = self._jobs.get(job_id)
        if job is None and self.store is not None:
            record = await asyncio.to_thread(self.store.get, job_id)
            if record is not None and not self._expired(record):
                job = IndexJob.from_record(record)
                if not job.finished and time.time() - job.heartbeat_at > self.stale_after_s:
                    job.status, job.error, job.finished_at = JobStatus.FAILED, _INTERRUPTED, time.time()
                    await self._save(job)
        return job if job is not None and job.collection == collection else None

    async def _run(self, job: IndexJob, work: Work) -> None:
        try:
            async with self._slots:
                job.status = JobStatus.RUNNING
                self._mark(job)
                job.document = await work(job)
                job.status = JobStatus.SUCCEEDED
        except asyncio.CancelledError:
            job.error = _CANCELLED
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
            await asyncio.shield(self._save(job))

    def _mark(self, job: IndexJob) -> None:
        self._dirty.add(job.id)

    async def _save(self, job: IndexJob) -> None:
        if self.store is None:
            return
        try:
            await asyncio.to_thread(self.store.put, job.record())
        except Exception as exc:  # noqa: BLE001 - a lost progress write must not fail the job; logged
            _LOG.warning("could not record indexing job %s: %s", job.id, exc)

    async def _write_loop(self) -> None:
        """Write progress of changed jobs, and heartbeats of every active one, every ``heartbeat_s / 2``."""
        next_beat = 0.0
        while True:
            await asyncio.sleep(min(0.25, self.heartbeat_s / 2))
            now = time.time()
            ids = set(self._dirty)
            if now >= next_beat:
                ids |= set(self._tasks)
                next_beat = now + self.heartbeat_s
            self._dirty.clear()
            for job_id in ids:
                job = self._jobs.get(job_id)
                if job is not None and not job.finished:
                    job.heartbeat_at = now
                    await self._save(job)

    def _remember(self, job: IndexJob) -> None:
        self._finished.append(job.id)
        self._forget()

    def _expired(self, record: dict[str, Any]) -> bool:
        """A stored job past its retention (pruned at the store's next finished write; hidden until then)."""
        return record["finished_at"] is not None and record["finished_at"] < self.retention.cutoff()

    def _forget(self) -> None:
        """Drop finished jobs as the stores prune them: beyond the newest ``keep_finished``, or finished before
        the cutoff (``_finished`` is in finishing order, so the old ones are at its left)."""
        cutoff = self.retention.cutoff()
        while self._finished:
            oldest = self._jobs.get(self._finished[0])
            too_old = oldest is None or (oldest.finished_at or 0.0) < cutoff
            if not too_old and len(self._finished) <= self.retention.keep_finished:
                return
            self._jobs.pop(self._finished.popleft(), None)

    async def close(self) -> None:
        """Cancel every queued or running job and wait for them to end (each recorded as cancelled)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)


def _document_info(record: dict[str, Any]) -> DocumentInfo:
    """A stored job's document (``dataclasses.asdict`` of a DocumentInfo; its ``file`` a dict or absent)."""
    file = record.get("file")
    warnings = tuple(record.get("warnings") or ())  # absent in jobs stored before documents kept warnings
    return DocumentInfo(**{**record, "file": None if file is None else FileInfo(**file), "warnings": warnings})
