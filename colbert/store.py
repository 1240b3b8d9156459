"""The index vocabulary: collection settings, page and document records, hits, and the ``Store`` protocol.

A *collection* holds documents; a document is an ordered set of pages; a page carries

* a dense first-stage vector (``dense_dim`` floats, compared by cosine),
* a multi-vector (``(n, multivector_dim)`` rows, compared by exact MaxSim after the storage codec),
* optional page-level metadata (JSON object), and inherits its document's metadata (JSON object).

Two backends implement :class:`Store` with the same observable behaviour (one contract test suite runs over
both): :mod:`colbert.local` (embedded, one directory, SQLite) and :mod:`colbert.qdrant` (a Qdrant server or
qdrant-client's local mode).

Validation of caller input lives here so both backends reject the same things with the same typed errors
(:mod:`colbert.errors`); every limit is a field of :class:`StoreLimits`.

Filters (``search(..., filter={"lang": "en", "year": {"$gte": 2020}})``) test top-level keys of the *document*
metadata: equality, ``$in``, ``$ne``, ``$gt/$gte/$lt/$lte``, ``$exists``, ANDed; the syntax and the semantics
both backends share are in :mod:`colbert.filters` (``1`` does not match ``true``; lists match by any element).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from colbert.errors import DimensionMismatchError, InvalidDocumentError, InvalidQueryError
from colbert.filters import MetadataFilter, parse_filter
from colbert.quantize import Codec

__all__ = [
    "CollectionConfig",
    "DocumentInfo",
    "FilterValue",
    "Hit",
    "PageRecord",
    "Store",
    "StoreLimits",
    "canonical_json",
    "validate_config",
    "validate_document",
    "validate_filter",
    "validate_search",
]

FilterValue = str | int | bool


@dataclass(frozen=True)
class CollectionConfig:
    """What a collection stores; fixed when it is created and checked when it is reopened."""

    dense_dim: int
    multivector_dim: int = 128
    codec: Codec = Codec.FLOAT16
    pool_factor: int = 1


@dataclass(frozen=True)
class StoreLimits:
    """Caps on caller input (each one a typed error when exceeded)."""

    max_doc_id_length: int = 512
    max_pages_per_document: int = 4096
    max_vectors_per_page: int = 16384
    max_metadata_bytes: int = 65536
    max_k: int = 1000
    max_candidates: int = 10000
    max_query_vectors: int = 2048
    max_list_limit: int = 10000


@dataclass(frozen=True)
class PageRecord:
    """One page to store (or, from ``get_page``, as stored: multivector decoded, pooled if configured)."""

    page: int
    dense: np.ndarray  # (dense_dim,) float32
    multivector: np.ndarray  # (n, multivector_dim) float32
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DocumentInfo:
    doc_id: str
    num_pages: int
    metadata: dict[str, Any]
    created_at: float


@dataclass(frozen=True)
class Hit:
    """A ranked page with its document's metadata (page-level metadata comes from ``Store.get_page``)."""

    doc_id: str
    page: int
    score: float
    metadata: dict[str, Any]


@runtime_checkable
class Store(Protocol):
    config: CollectionConfig

    def add_document(
        self,
        doc_id: str,
        pages: Sequence[PageRecord],
        metadata: Mapping[str, Any] | None = None,
        *,
        replace: bool = False,
    ) -> DocumentInfo: ...

    def delete_document(self, doc_id: str) -> bool: ...

    def delete_documents(self, filter: Mapping[str, Any] | MetadataFilter) -> list[str]: ...

    def get_document(self, doc_id: str) -> DocumentInfo | None: ...

    def list_documents(self, *, offset: int = 0, limit: int = 100) -> list[DocumentInfo]: ...

    def count(self) -> tuple[int, int]: ...

    def search(
        self,
        query_multivector: np.ndarray,
        query_dense: np.ndarray | None,
        k: int = 10,
        *,
        filter: Mapping[str, Any] | None = None,
        candidates: int = 200,
        exhaustive: bool = False,
    ) -> list[Hit]: ...

    def get_page(self, doc_id: str, page: int) -> PageRecord | None: ...

    def close(self) -> None: ...


def canonical_json(value: Any) -> str:
    """The one JSON spelling used for storage and equality (sorted keys, no spaces, no NaN)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def validate_config(config: CollectionConfig) -> None:
    if not isinstance(config.dense_dim, int) or config.dense_dim < 1:
        raise InvalidDocumentError(f"dense_dim must be a positive int, got {config.dense_dim!r}")
    if not isinstance(config.multivector_dim, int) or config.multivector_dim < 1:
        raise InvalidDocumentError(f"multivector_dim must be a positive int, got {config.multivector_dim!r}")
    if not isinstance(config.pool_factor, int) or config.pool_factor < 1:
        raise InvalidDocumentError(f"pool_factor must be an int >= 1, got {config.pool_factor!r}")
    Codec(config.codec)


def _json_object(value: Mapping[str, Any] | None, what: str, limits: StoreLimits) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidDocumentError(f"{what} must be a JSON object with string keys, got {type(value).__name__}")
    try:
        text = canonical_json(dict(value))
    except (TypeError, ValueError) as exc:
        raise InvalidDocumentError(f"{what} must be JSON-serialisable (no NaN/inf): {exc}") from exc
    size = len(text.encode())
    if size > limits.max_metadata_bytes:
        raise InvalidDocumentError(f"{what} is {size} bytes of JSON, at most {limits.max_metadata_bytes} allowed")
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def _multivector(a: object, dim: int, what: str) -> np.ndarray:
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "fiu":
        raise InvalidDocumentError(f"{what} must be a numeric numpy array, got {type(a).__name__}")
    if a.ndim != 2 or a.shape[1] != dim:
        raise DimensionMismatchError(f"{what}: expected shape (n, {dim}), got {a.shape}")
    out = np.ascontiguousarray(a, dtype=np.float32)  # (n, dim)
    if not np.isfinite(out).all():
        raise InvalidDocumentError(f"{what} contains NaN or inf")
    return out


def _dense(a: object, dim: int, what: str) -> np.ndarray:
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "fiu":
        raise InvalidDocumentError(f"{what} must be a numeric numpy array, got {type(a).__name__}")
    if a.shape != (dim,):
        raise DimensionMismatchError(f"{what}: expected shape ({dim},), got {a.shape}")
    out = np.ascontiguousarray(a, dtype=np.float32)  # (dim,)
    norm = float(np.linalg.norm(out))
    if not math.isfinite(norm) or norm == 0.0:
        raise InvalidDocumentError(f"{what} must be finite with a non-zero norm")
    return out


def validate_document(
    doc_id: object,
    pages: Sequence[PageRecord],
    metadata: Mapping[str, Any] | None,
    config: CollectionConfig,
    limits: StoreLimits,
) -> tuple[str, list[PageRecord], dict[str, Any]]:
    """Check a document to add; returns it normalised (float32 arrays, plain-dict metadata, pages sorted)."""
    if not isinstance(doc_id, str) or not doc_id or len(doc_id) > limits.max_doc_id_length:
        raise InvalidDocumentError(
            f"doc_id must be a non-empty str of at most {limits.max_doc_id_length} characters, got {doc_id!r:.80}"
        )
    if "\x00" in doc_id:
        raise InvalidDocumentError("doc_id must not contain NUL characters")
    if not 1 <= len(pages) <= limits.max_pages_per_document:
        raise InvalidDocumentError(f"a document needs 1..{limits.max_pages_per_document} pages, got {len(pages)}")
    seen: set[int] = set()
    out: list[PageRecord] = []
    for i, p in enumerate(pages):
        if not isinstance(p, PageRecord):
            raise InvalidDocumentError(f"pages[{i}] must be a PageRecord, got {type(p).__name__}")
        if isinstance(p.page, bool) or not isinstance(p.page, int) or p.page < 0:
            raise InvalidDocumentError(f"pages[{i}].page must be an int >= 0, got {p.page!r}")
        if p.page in seen:
            raise InvalidDocumentError(f"page number {p.page} appears twice in document {doc_id!r}")
        seen.add(p.page)
        mv = _multivector(p.multivector, config.multivector_dim, f"pages[{i}].multivector")
        if not 1 <= mv.shape[0] <= limits.max_vectors_per_page:
            raise InvalidDocumentError(
                f"pages[{i}].multivector needs 1..{limits.max_vectors_per_page} rows, got {mv.shape[0]}"
            )
        dense = _dense(p.dense, config.dense_dim, f"pages[{i}].dense")
        page_meta = _json_object(p.metadata, f"pages[{i}].metadata", limits)
        out.append(PageRecord(page=p.page, dense=dense, multivector=mv, metadata=page_meta))
    out.sort(key=lambda r: r.page)
    return doc_id, out, _json_object(metadata, "metadata", limits)


def validate_filter(filter: Mapping[str, Any] | MetadataFilter | None) -> MetadataFilter:
    """Parse a metadata filter once (syntax and semantics: :mod:`colbert.filters`); ``InvalidFilterError``."""
    return parse_filter(filter)


def validate_search(
    query_multivector: object,
    query_dense: object,
    k: int,
    candidates: int,
    config: CollectionConfig,
    limits: StoreLimits,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Check a search; returns (query (Lq, d) float32, unit dense query (dense_dim,) or None)."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= limits.max_k:
        raise InvalidQueryError(f"k must be an int in 1..{limits.max_k}, got {k!r}")
    if isinstance(candidates, bool) or not isinstance(candidates, int):
        raise InvalidQueryError(f"candidates must be an int, got {candidates!r}")
    if not k <= candidates <= limits.max_candidates:
        raise InvalidQueryError(f"candidates must be in k..{limits.max_candidates} (k={k}), got {candidates}")
    try:
        q = _multivector(query_multivector, config.multivector_dim, "query_multivector")
        dense = None if query_dense is None else _dense(query_dense, config.dense_dim, "query_dense")
    except InvalidDocumentError as exc:
        raise InvalidQueryError(str(exc)) from exc
    if not 1 <= q.shape[0] <= limits.max_query_vectors:
        raise InvalidQueryError(f"query_multivector needs 1..{limits.max_query_vectors} rows, got {q.shape[0]}")
    if dense is not None:
        dense = dense / np.linalg.norm(dense)  # (dense_dim,) unit
    return q, dense
