"""Prometheus metrics of the collections and their indexing jobs, read when ``/metrics`` is scraped.

Families (gauges; ``collection`` label = the collection's name):

- ``jev4_collection_documents{collection}``, ``jev4_collection_units{collection}`` (pages and chunks);
- ``jev4_collection_disk_bytes{collection}``: bytes on disk (embedded backend: the collection's files; absent
  for Qdrant, whose disk this process cannot see);
- ``jev4_jobs{status}``: the indexing jobs this server remembers, by status (queued | running are exact; succeeded
  | failed count the finished jobs still kept for polling, the newest 1000).

Nothing is cached: each scrape asks the catalog (one count per collection) and the job registry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from colbert.errors import ColbertError
from service.collections.jobs import JobStatus

if TYPE_CHECKING:
    from service.collections.jobs import JobRegistry

__all__ = ["CollectionsCollector", "disk_bytes"]

_LOG = logging.getLogger("jev4.metrics")

Source = Callable[[], "tuple[Any, JobRegistry | None]"]


def disk_bytes(catalog: Any, name: str) -> int | None:
    """Bytes the collection takes on disk, when the catalog can tell (``Catalog.disk_bytes``), else None."""
    measure = getattr(catalog, "disk_bytes", None)
    if measure is None:
        return None
    value: int | None = measure(name)
    return value


class CollectionsCollector(Collector):
    """Collects the families of the module doc from ``source()`` = (catalog or None, job registry or None)."""

    def __init__(self, source: Source) -> None:
        self.source = source

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families()  # empty families: registering must not scan the catalog

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily("jev4_collection_documents", "Documents per collection", labels=["collection"]),
            GaugeMetricFamily("jev4_collection_units", "Units (pages, chunks) per collection", labels=["collection"]),
            GaugeMetricFamily("jev4_collection_disk_bytes", "Bytes on disk per collection", labels=["collection"]),
            GaugeMetricFamily("jev4_jobs", "Indexing jobs the server remembers, by status", labels=["status"]),
        )

    def collect(self) -> Iterator[GaugeMetricFamily]:
        documents, units, size, jobs = self._families()
        catalog, registry = self.source()
        if catalog is not None:
            try:
                for info in catalog.list():
                    documents.add_metric([info.name], info.counts[0])
                    units.add_metric([info.name], info.counts[1])
                    on_disk = disk_bytes(catalog, info.name)
                    if on_disk is not None:
                        size.add_metric([info.name], on_disk)
            except (ColbertError, OSError) as exc:  # a scrape reports what it can; routes report index errors
                _LOG.warning("collection metrics unavailable: %s", exc)
        counts = dict.fromkeys(JobStatus, 0)
        for job in registry.list() if registry is not None else []:
            counts[job.status] += 1
        for status, n in counts.items():
            jobs.add_metric([status.value], n)
        yield from (documents, units, size, jobs)
