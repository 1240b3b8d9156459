"""Where indexing jobs are kept so that every server process sees them (a poll may land on any replica).

A job is one JSON object (:meth:`service.collections.jobs.IndexJob.record`) keyed by its id:

* embedded backend: ``<data_dir>/jobs.sqlite`` (WAL; one small row per job);
* Qdrant backend: the collection ``jev4__jobs`` (vector-less points, payload = the job; ``__`` keeps it apart
  from user collections, whose names cannot contain it).

Both prune finished jobs the same way, each time a job is recorded finished: a finished job is deleted once it
finished more than ``keep_finished_s`` seconds ago (``JEV4_JOB_KEEP_FINISHED_S``), or once ``keep_finished``
newer finished jobs exist (``JEV4_JOB_KEEP_FINISHED``; newer = created later). A pruned job polls as 404.
Queued and running jobs are never pruned (a stale one is first reported failed, then ages like any other).

Every write replaces the whole record (the owner writes the job's current state), so writes that arrive out of
order still end on the final state.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = ["JOBS_COLLECTION", "JobStore", "QdrantJobStore", "Retention", "SqliteJobStore", "open_job_store"]

JOBS_COLLECTION = "jev4__jobs"
_NAMESPACE = uuid.UUID("0b7f5d7e-3c1a-4f0e-8a55-5a0f0c1d2e3f")


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


class SqliteJobStore:
    """Jobs in one SQLite file shared by every process on the data directory (thread-safe)."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 30.0, retention: Retention | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.retention = retention or Retention()
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_s)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, collection TEXT NOT NULL, "
            "created_at REAL NOT NULL, finished INTEGER NOT NULL, body TEXT NOT NULL)"
        )
        self._conn.execute("CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished, created_at)")

    def put(self, record: dict[str, Any]) -> None:
        finished = record["finished_at"] is not None
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO jobs (id, collection, created_at, finished, body) VALUES (?, ?, ?, ?, ?)",
                (record["id"], record["collection"], record["created_at"], int(finished), json.dumps(record)),
            )
            if finished:
                self._prune()

    def _prune(self) -> None:
        self._conn.execute(
            "DELETE FROM jobs WHERE finished = 1 AND json_extract(body, '$.finished_at') < ?",
            (self.retention.cutoff(),),
        )
        self._conn.execute(
            "DELETE FROM jobs WHERE finished = 1 AND id NOT IN "
            "(SELECT id FROM jobs WHERE finished = 1 ORDER BY created_at DESC LIMIT ?)",
            (self.retention.keep_finished,),
        )

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT body FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        body: dict[str, Any] = json.loads(row[0])
        return body

    def list(self, collection: str, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT body FROM jobs WHERE collection = ? ORDER BY created_at DESC LIMIT ?", (collection, limit)
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class QdrantJobStore:
    """Jobs as payloads of vector-less points in :data:`JOBS_COLLECTION` (the client is the catalog's)."""

    def __init__(self, client: Any, *, retention: Retention | None = None) -> None:
        from qdrant_client import models as qm

        self.client = client
        self.retention = retention or Retention()
        if not client.collection_exists(JOBS_COLLECTION):
            try:
                client.create_collection(JOBS_COLLECTION, vectors_config={}, metadata={"jobs_of": "jev4-serve"})
            except Exception:
                if not client.collection_exists(JOBS_COLLECTION):
                    raise
        with warnings.catch_warnings():  # local mode (tests) says payload indexes do nothing there
            warnings.filterwarnings("ignore", message="Payload indexes have no effect", category=UserWarning)
            for key in ("created_at", "finished_at"):  # what pruning filters and orders by (idempotent)
                client.create_payload_index(JOBS_COLLECTION, key, qm.PayloadSchemaType.FLOAT)

    def put(self, record: dict[str, Any]) -> None:
        from qdrant_client import models as qm

        point = qm.PointStruct(id=str(uuid.uuid5(_NAMESPACE, record["id"])), vector={}, payload=record)
        self.client.upsert(JOBS_COLLECTION, [point], wait=True)
        if record["finished_at"] is not None:
            self._prune()

    def _prune(self) -> None:
        """The same rule as the SQLite store: finished before the cutoff, or beyond the newest ``keep_finished``."""
        from qdrant_client import models as qm

        def finished(**bounds: float) -> Any:
            return qm.Filter(must=[qm.FieldCondition(key="finished_at", range=qm.Range(**bounds))])

        old = qm.FilterSelector(filter=finished(lt=self.retention.cutoff()))
        self.client.delete(JOBS_COLLECTION, old, wait=True)
        done = self.client.count(JOBS_COLLECTION, count_filter=finished(gte=0), exact=True).count
        excess = done - self.retention.keep_finished
        if excess <= 0:
            return
        oldest, _ = self.client.scroll(
            JOBS_COLLECTION,
            scroll_filter=finished(gte=0),
            limit=excess,
            order_by=qm.OrderBy(key="created_at", direction=qm.Direction.ASC),
            with_payload=False,
        )
        self.client.delete(JOBS_COLLECTION, qm.PointIdsList(points=[p.id for p in oldest]), wait=True)

    def get(self, job_id: str) -> dict[str, Any] | None:
        found = self.client.retrieve(JOBS_COLLECTION, [str(uuid.uuid5(_NAMESPACE, job_id))], with_payload=True)
        return dict(found[0].payload or {}) if found else None

    def list(self, collection: str, limit: int) -> list[dict[str, Any]]:
        from qdrant_client import models as qm

        flt = qm.Filter(must=[qm.FieldCondition(key="collection", match=qm.MatchValue(value=collection))])
        records: list[dict[str, Any]] = []
        offset: Any = None
        while True:
            batch, offset = self.client.scroll(JOBS_COLLECTION, scroll_filter=flt, limit=256, offset=offset)
            records += [dict(p.payload or {}) for p in batch]
            if offset is None:
                break
        return sorted(records, key=lambda r: float(r["created_at"]), reverse=True)[:limit]

    def close(self) -> None:
        """The client belongs to the catalog."""


def open_job_store(catalog: Any, *, busy_timeout_s: float = 30.0, retention: Retention | None = None) -> JobStore:
    """The job store of the catalog's backend (the same Qdrant client, or a file beside the collections)."""
    client = getattr(catalog, "qdrant_client", None)
    if client is not None:
        return QdrantJobStore(client, retention=retention)
    return SqliteJobStore(Path(catalog.data_dir) / "jobs.sqlite", busy_timeout_s=busy_timeout_s, retention=retention)
