"""Prometheus metrics of one app (its own registry, so several apps in one process do not collide).

Names (all prefixed ``jev4_``): ``requests_total{route,method,status}``, ``request_duration_seconds{route}``
(histogram), ``queue_rows`` (gauge: rows waiting for the model), ``batch_rows`` / ``batch_tokens`` /
``batch_duration_seconds`` (histograms per forward pass; ``batch_tokens`` counts what the backend says the pass
costs, see ``service.engine.batcher``), ``batch_failures_total``, per request (as TEI's ``te_request_*``):
``request_prepare_seconds`` (decode, render, tokenize), ``request_queue_seconds`` (enqueued until its first row
runs) and ``request_forward_seconds`` (its first row runs until its last row is done); ``tokens_total{kind}``
(text | image | late_chunk, counted as in ``usage``), ``images_total``, ``pdf_pages_total``,
``rejected_total{reason}`` (queue_full, ...), ``model_ready`` (gauge 0/1), ``maxsim_kernel`` (gauge: 1 when the
C kernel scores, 0 on the torch fallback) and ``maxsim_fallback_total`` (scoring calls on the fallback).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from colbert import _kernel

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_TOKEN_BUCKETS = (16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536)


class Metrics:
    """The app's metric families plus :meth:`render` for ``GET /metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "jev4_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.request_duration = Histogram(
            "jev4_request_duration_seconds",
            "HTTP request latency",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_rows = Gauge("jev4_queue_rows", "Rows waiting for the model worker", registry=r)
        self.batch_rows = Histogram("jev4_batch_rows", "Rows per forward pass", buckets=_ROW_BUCKETS, registry=r)
        self.batch_tokens = Histogram(
            "jev4_batch_tokens",
            "Padded tokens per forward pass (image tokens included)",
            buckets=_TOKEN_BUCKETS,
            registry=r,
        )
        self.batch_duration = Histogram(
            "jev4_batch_duration_seconds", "Model time per forward pass", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.request_prepare = Histogram(
            "jev4_request_prepare_seconds",
            "Per request: decoding, rendering and tokenizing its inputs",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.request_queue = Histogram(
            "jev4_request_queue_seconds",
            "Per request: from joining the model queue until its first row runs",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.request_forward = Histogram(
            "jev4_request_forward_seconds",
            "Per request: from its first row running until its last row is done",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_failures = Counter("jev4_batch_failures", "Forward passes that raised", registry=r)
        self.tokens = Counter("jev4_tokens", "Tokens embedded (as counted in usage)", ["kind"], registry=r)
        self.images = Counter("jev4_images", "Images embedded (PDF pages excluded)", registry=r)
        self.pdf_pages = Counter("jev4_pdf_pages", "PDF pages rendered and embedded", registry=r)
        self.rejected = Counter("jev4_rejected", "Requests refused before the model, by reason", ["reason"], registry=r)
        self.model_ready = Gauge("jev4_model_ready", "1 once the model is loaded and warmed", registry=r)
        self.maxsim_kernel = Gauge(
            "jev4_maxsim_kernel", "1 when the MaxSim C kernel scores, 0 on the slower torch fallback", registry=r
        )
        r.register(_FallbackCollector())

    def render(self) -> bytes:
        """The Prometheus text exposition of every family."""
        return generate_latest(self.registry)


class _FallbackCollector(Collector):
    """``jev4_maxsim_fallback_total``: scoring calls that ran the torch fallback (``colbert._kernel``'s count)."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("jev4_maxsim_fallback", "MaxSim scoring calls on the slower torch fallback")
        family.add_metric([], _kernel.fallback_uses)
        yield family
