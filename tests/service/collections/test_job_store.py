"""Finished indexing jobs are pruned the same way on both job stores (``jobs.sqlite`` and Qdrant's ``jev4__jobs``)
and in a process's memory: beyond the newest ``JEV4_JOB_KEEP_FINISHED`` and after ``JEV4_JOB_KEEP_FINISHED_S``;
queued and running jobs never."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient

from colbert.store import DocumentInfo
from service.collections.job_store import JobStore, QdrantJobStore, Retention, SqliteJobStore
from service.collections.jobs import IndexJob, JobRegistry


def _record(job_id: str, created_at: float, finished_at: float | None) -> dict[str, Any]:
    return {
        "id": job_id,
        "collection": "c",
        "document_id": job_id,
        "status": "running" if finished_at is None else "succeeded",
        "pages_done": 0,
        "pages_total": None,
        "created_at": created_at,
        "finished_at": finished_at,
        "heartbeat_at": created_at,
        "document": None,
        "error": None,
    }


@pytest.fixture(params=["sqlite", "qdrant"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    made: list[JobStore] = []
    client = QdrantClient(":memory:")

    def make(retention: Retention) -> JobStore:
        store: JobStore
        if request.param == "sqlite":
            store = SqliteJobStore(tmp_path / "jobs.sqlite", retention=retention)
        else:
            store = QdrantJobStore(client, retention=retention)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()
    client.close()


def _present(store: JobStore, ids: list[str]) -> list[str]:
    return [i for i in ids if store.get(i) is not None]


def test_beyond_the_newest_keep_finished_the_oldest_finished_go(make_store: Any) -> None:
    store = make_store(Retention(keep_finished=2, keep_finished_s=1e9))
    now = time.time()
    store.put(_record("running-old", now - 500, None))  # never pruned, however old
    ids = [f"done-{i}" for i in range(5)]
    for i, job_id in enumerate(ids):
        store.put(_record(job_id, now - 100 + i, now - 50 + i))
    assert _present(store, ids) == ["done-3", "done-4"]
    assert _present(store, ["running-old"]) == ["running-old"]


def test_finished_jobs_older_than_keep_finished_s_go(make_store: Any) -> None:
    store = make_store(Retention(keep_finished=100, keep_finished_s=60))
    now = time.time()
    store.put(_record("finished-long-ago", now - 300, now - 120))
    store.put(_record("finished-recently", now - 300, now - 30))
    store.put(_record("running-since-long", now - 3600, None))
    assert _present(store, ["finished-long-ago", "finished-recently"]) == ["finished-recently"]  # pruned by its own put
    store.put(_record("just-finished", now - 5, now))  # pruning runs when a job is recorded finished
    assert _present(store, ["finished-long-ago", "finished-recently", "running-since-long", "just-finished"]) == [
        "finished-recently",
        "running-since-long",
        "just-finished",
    ]


def test_the_registry_forgets_finished_jobs_as_the_stores_prune(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = SqliteJobStore(tmp_path / "jobs.sqlite", retention=Retention(keep_finished=1))
        registry = JobRegistry(store=store, retention=Retention(keep_finished=1))

        async def work(job: IndexJob) -> DocumentInfo:
            return DocumentInfo(job.document_id, 1, {}, time.time(), None)

        first = await registry.submit("c", "a", work)
        while registry.active():
            await asyncio.sleep(0.01)
        assert await registry.get("c", first.id) is not None
        second = await registry.submit("c", "b", work)
        while registry.active():
            await asyncio.sleep(0.01)
        assert await registry.get("c", first.id) is None  # gone from memory AND from the store
        assert store.get(first.id) is None
        assert [j.id for j in registry.list()] == [second.id]
        registry.retention = Retention(keep_finished=1, keep_finished_s=0.0)  # and by age
        assert registry.list() == []
        await registry.close()
        store.close()

    asyncio.run(scenario())
