"""The job-record store of the catalog's backend (:mod:`colbert.jobs` says how jobs are kept and pruned)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from colbert.jobs import JobStore, Retention
from colbert.local.jobs import SqliteJobStore
from colbert.qdrant.jobs import JOBS_COLLECTION, QdrantJobStore

if TYPE_CHECKING:
    from colbert.catalog import Catalog

__all__ = ["JOBS_COLLECTION", "JobStore", "QdrantJobStore", "Retention", "SqliteJobStore", "open_job_store"]


def open_job_store(catalog: Catalog, *, busy_timeout_s: float = 30.0, retention: Retention | None = None) -> JobStore:
    """The job store of the catalog's backend (the same Qdrant client, or a file beside the collections)."""
    return catalog.backend.job_store(busy_timeout_s=busy_timeout_s, retention=retention)
