"""Indexing-job records of the embedded backend: one SQLite file beside the collections (see :mod:`colbert.jobs`)."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from colbert.jobs import Retention

__all__ = ["SqliteJobStore"]


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
