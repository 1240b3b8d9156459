"""``GET /v1/collections/{name}/jobs`` lists the jobs of every process on the data directory (issue 13): one
registry's jobs are seen by another registry sharing the job store, with their final state; a job whose process
stopped is reported failed (job_interrupted)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from colbert.store import DocumentInfo
from service.collections.job_store import SqliteJobStore
from service.collections.jobs import IndexJob, JobRegistry, JobStatus


def test_jobs_of_other_processes_are_listed(tmp_path: Path) -> None:
    async def scenario() -> None:
        a_store = SqliteJobStore(tmp_path / "jobs.sqlite")
        b_store = SqliteJobStore(tmp_path / "jobs.sqlite")
        a = JobRegistry(store=a_store, heartbeat_s=0.05, stale_after_s=5.0)
        b = JobRegistry(store=b_store, heartbeat_s=0.05, stale_after_s=5.0)
        release = asyncio.Event()

        async def work(job: IndexJob | None) -> DocumentInfo:
            await release.wait()
            return DocumentInfo("d", 1, {}, time.time())

        job = await a.submit("lib", "d", work)
        await a.submit("other", "x", work)
        assert [j.id for j in b.list("lib")] == []  # not in b's memory...
        seen = await b.list_all("lib")  # ...but in the store every process shares
        assert [j.id for j in seen] == [job.id]
        release.set()
        deadline = time.monotonic() + 10
        while (await b.list_all("lib"))[0].status is not JobStatus.SUCCEEDED:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        # a job left running by a process that stopped (no heartbeat) is reported interrupted
        ghost = IndexJob("ghost", "lib", "g")
        ghost.status = JobStatus.RUNNING
        record = ghost.record()
        record["created_at"] = record["heartbeat_at"] = time.time() - 60
        b_store.put(record)
        listed = {j.id: j for j in await a.list_all("lib")}
        assert set(listed) == {job.id, "ghost"}
        assert listed["ghost"].status is JobStatus.FAILED
        assert listed["ghost"].error is not None
        await a.close()
        await b.close()
        a_store.close()
        b_store.close()

    asyncio.run(scenario())
