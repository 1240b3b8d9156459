"""Indexing-job records of the Qdrant backend: the collection :data:`JOBS_COLLECTION` (see :mod:`colbert.jobs`)."""

from __future__ import annotations

import uuid
import warnings
from typing import Any

from colbert.jobs import Retention

__all__ = ["JOBS_COLLECTION", "QdrantJobStore"]

JOBS_COLLECTION = "jev4__jobs"
_NAMESPACE = uuid.UUID("0b7f5d7e-3c1a-4f0e-8a55-5a0f0c1d2e3f")


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
