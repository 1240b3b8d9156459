"""Where indexing jobs are kept so that every server process sees them (a poll may land on any replica).

Each backend keeps them (:meth:`colbert.backend.Backend.job_store`); this module holds what both share.

A job is one JSON object (``service.collections.jobs.IndexJob.record``) keyed by its id:

* embedded backend: ``<data_dir>/jobs.sqlite`` (WAL; one small row per job; :mod:`colbert.local.jobs`);
* Qdrant backend: the collection ``jev4__jobs`` (vector-less points, payload = the job; ``__`` keeps it apart
  from user collections, whose names cannot contain it; :mod:`colbert.qdrant.jobs`).

Both prune finished jobs the same way, each time a job is recorded finished: a finished job is deleted once it
finished more than ``keep_finished_s`` seconds ago (``JEV4_JOB_KEEP_FINISHED_S``), or once ``keep_finished``
newer finished jobs exist (``JEV4_JOB_KEEP_FINISHED``; newer = created later). A pruned job polls as 404.
Queued and running jobs are never pruned (a stale one is first reported failed, then ages like any other).

Every write replaces the whole record (the owner writes the job's current state), so writes that arrive out of
order still end on the final state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["JobStore", "Retention"]


@dataclass(frozen=True, slots=True)
class Retention:
    """How many finished jobs are kept, and for how long (see the module doc)."""

    keep_finished: int = 1000
    keep_finished_s: float = 7 * 86400.0

    def cutoff(self) -> float:
        """Jobs finished before this time (epoch seconds) are pruned."""
        return time.time() - self.keep_finished_s


class JobStore(Protocol):
    def put(self, record: dict[str, Any]) -> None: ...

    def get(self, job_id: str) -> dict[str, Any] | None: ...

    def list(self, collection: str, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` jobs of a collection, from every process, newest first."""
        ...

    def close(self) -> None: ...
