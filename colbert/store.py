"""The index vocabulary: collection settings, unit and document records, hits, and the ``Store`` protocol.

A *collection* holds documents; a document (id, metadata JSON object, ``created_at``, a content hash where the
caller knows one) is an ordered set of *units*. A unit is a page of a PDF or an image (``kind="page"``: its
PNG image, its text layer if any) or a chunk of a text/code document (``kind="chunk"``: its text). ``unit`` is
its ordinal in the document (a page's number). Every unit carries

* a dense first-stage vector (``dense_dim`` floats, compared by cosine),
* a multi-vector (``(n, multivector_dim)`` rows, compared by exact MaxSim after the storage codec),
* optional unit-level metadata (JSON object: page grid, chunk span, line range, …), its ``text`` and its
  ``image`` bytes (both optional), and inherits its document's metadata (JSON object).

Both backends store all of a unit (vectors, text, image) in the same transaction (embedded) or the same
committed version (Qdrant) as the rest of its document: a reader sees the whole old document or the whole new one.

A document may also carry its *original file* (:class:`OriginalFile`: the uploaded bytes, their media type and
file name), given to ``add_document(original=...)``. It is stored with the units, in the same transaction or
version: a replace replaces it (or drops it when the new version has none), a delete deletes it, and
``DocumentInfo.file`` describes it (:class:`FileInfo`) without reading the bytes (``Store.get_original``).

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

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from colbert.errors import DimensionMismatchError, InvalidDocumentError, InvalidQueryError
from colbert.filters import MetadataFilter, parse_filter
from colbert.hybrid import Fusion, SearchMode, Signal
from colbert.quantize import Codec

__all__ = [
    "UNIT_KINDS",
    "CollectionConfig",
    "DocumentInfo",
    "FileInfo",
    "FilterValue",
    "Hit",
    "OriginalFile",
    "Store",
    "StoreLimits",
    "UnitRecord",
    "canonical_json",
    "check_page_window",
    "validate_config",
    "validate_document",
    "validate_filter",
    "validate_metadata",
    "validate_original",
    "validate_search",
]

FilterValue = str | int | bool
UNIT_KINDS = ("page", "chunk")


@dataclass(frozen=True)
class CollectionConfig:
    """What a collection stores; fixed when it is created and checked when it is reopened."""

    dense_dim: int
    multivector_dim: int = 128
    codec: Codec = Codec.FLOAT16
    pool_factor: int = 1
    task: str = "retrieval"  # the encoder task its units and queries are embedded with (an opaque label here)
    unit_kind: str = "page"  # the one kind of unit it holds (one of UNIT_KINDS): scores of kinds do not mix

    def as_json(self) -> dict[str, Any]:
        """The fields as JSON values (the codec by name), as the Qdrant metadata and export files keep them."""
        return {
            "dense_dim": self.dense_dim,
            "multivector_dim": self.multivector_dim,
            "codec": str(Codec(self.codec)),
            "pool_factor": self.pool_factor,
            "task": self.task,
            "unit_kind": self.unit_kind,
        }


@dataclass(frozen=True)
class StoreLimits:
    """Caps on caller input (each one a typed error when exceeded)."""

    max_doc_id_length: int = 512
    max_units_per_document: int = 4096
    max_vectors_per_unit: int = 16384
    max_metadata_bytes: int = 65536
    max_text_bytes: int = 4 * 1024 * 1024  # UTF-8 bytes of one unit's text
    max_image_bytes: int = 32 * 1024 * 1024  # one unit's image
    max_k: int = 1000
    max_candidates: int = 10000
    max_query_vectors: int = 2048
    max_list_limit: int = 10000
    max_query_terms: int = 1024  # distinct words of a text/hybrid query
    max_original_bytes: int = 512 * 1024 * 1024  # a document's original file (the service caps uploads far lower)
    max_original_name_chars: int = 1024  # its file name


@dataclass(frozen=True)
class UnitRecord:
    """One unit to store (or, from ``get_unit``, as stored: multivector decoded, pooled if configured)."""

    unit: int  # ordinal in the document (a page's number)
    dense: np.ndarray  # (dense_dim,) float32
    multivector: np.ndarray  # (n, multivector_dim) float32
    kind: str = "page"  # one of UNIT_KINDS
    text: str | None = None  # a page's text layer, a chunk's text
    metadata: Mapping[str, Any] = field(default_factory=dict)
    image: bytes | None = None  # a page's image (PNG), stored as given


@dataclass(frozen=True)
class OriginalFile:
    """A document's original file as uploaded (a PDF, an image, a text/code file), stored as given."""

    data: bytes
    media_type: str  # e.g. "application/pdf", "image/png", "text/x-python; charset=utf-8"
    name: str | None = None  # the uploaded file's name (no directories), None when unknown


@dataclass(frozen=True)
class FileInfo:
    """What a stored original file is, without its bytes."""

    media_type: str
    size: int  # bytes
    name: str | None
    sha256: str  # hex digest of the bytes (an ETag, an integrity check)

    @staticmethod
    def of(original: OriginalFile) -> FileInfo:
        digest = hashlib.sha256(original.data).hexdigest()
        return FileInfo(original.media_type, len(original.data), original.name, digest)


@dataclass(frozen=True)
class DocumentInfo:
    doc_id: str
    num_units: int
    metadata: dict[str, Any]
    created_at: float
    content_hash: str | None = None  # given by the writer (e.g. sha256 of the uploaded bytes); None: unknown
    file: FileInfo | None = None  # the original file stored with the document, if any


@dataclass(frozen=True)
class Hit:
    """A ranked unit with its document's metadata (unit metadata, text and image come from ``Store.get_unit``).
    ``signals``: which signals found it, each with its score and rank (:mod:`colbert.hybrid`)."""

    doc_id: str
    unit: int
    score: float
    metadata: dict[str, Any]
    kind: str = "page"
    signals: Mapping[str, Signal] = field(default_factory=dict)


@runtime_checkable
class Store(Protocol):
    config: CollectionConfig

    def add_document(
        self,
        doc_id: str,
        units: Sequence[UnitRecord],
        metadata: Mapping[str, Any] | None = None,
        *,
        replace: bool = False,
        content_hash: str | None = None,
        original: OriginalFile | None = None,
    ) -> DocumentInfo: ...

    def delete_document(self, doc_id: str) -> bool: ...

    def delete_documents(self, filter: Mapping[str, Any] | MetadataFilter) -> list[str]: ...

    def get_document(self, doc_id: str) -> DocumentInfo | None: ...

    def list_documents(self, *, offset: int = 0, limit: int = 100) -> list[DocumentInfo]: ...

    def count(self) -> tuple[int, int]: ...

    def search(
        self,
        query_multivector: np.ndarray | None,
        query_dense: np.ndarray | None,
        k: int = 10,
        *,
        filter: Mapping[str, Any] | None = None,
        candidates: int = 200,
        exhaustive: bool = False,
        mode: SearchMode | str = SearchMode.VISUAL,
        query_text: str | None = None,
        fusion: Fusion | None = None,
    ) -> list[Hit]: ...

    def get_unit(self, doc_id: str, unit: int) -> UnitRecord | None: ...

    def get_image(self, doc_id: str, unit: int) -> bytes | None: ...

    def get_original(self, doc_id: str) -> OriginalFile | None:
        """The document's original file as stored; None if there is no such document or it has none."""
        ...

    def unit_numbers(self, doc_id: str) -> list[int] | None:
        """The numbers of the document's units, ascending (PDF page numbers of a page selection such as
        ``[1, 3]``); None if there is no such document."""
        ...

    def update_metadata(self, doc_id: str, metadata: Mapping[str, Any]) -> DocumentInfo | None:
        """Set a document's metadata (the whole object) without touching its units; None if there is none."""
        ...

    def find_by_hash(self, content_hash: str) -> DocumentInfo | None:
        """The earliest-added document stored with this ``content_hash`` (an indexed lookup), None if none."""
        ...

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
    if not isinstance(config.task, str) or not config.task:
        raise InvalidDocumentError(f"task must be a non-empty str, got {config.task!r}")
    if config.unit_kind not in UNIT_KINDS:
        raise InvalidDocumentError(f"unit_kind must be one of {UNIT_KINDS}, got {config.unit_kind!r}")


def validate_metadata(metadata: Mapping[str, Any] | None, limits: StoreLimits) -> dict[str, Any]:
    """A document's metadata checked as ``add_document`` checks it (JSON object, size cap); a plain dict."""
    return _json_object(metadata, "metadata", limits)


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
    units: Sequence[UnitRecord],
    metadata: Mapping[str, Any] | None,
    config: CollectionConfig,
    limits: StoreLimits,
    content_hash: object = None,
) -> tuple[str, list[UnitRecord], dict[str, Any]]:
    """Check a document to add; returns it normalised (float32 arrays, plain-dict metadata, units sorted)."""
    if not isinstance(doc_id, str) or not doc_id or len(doc_id) > limits.max_doc_id_length:
        raise InvalidDocumentError(
            f"doc_id must be a non-empty str of at most {limits.max_doc_id_length} characters, got {doc_id!r:.80}"
        )
    if "\x00" in doc_id:
        raise InvalidDocumentError("doc_id must not contain NUL characters")
    if content_hash is not None and (not isinstance(content_hash, str) or not 1 <= len(content_hash) <= 256):
        raise InvalidDocumentError(f"content_hash must be None or a str of 1..256 characters, got {content_hash!r:.80}")
    if not 1 <= len(units) <= limits.max_units_per_document:
        raise InvalidDocumentError(f"a document needs 1..{limits.max_units_per_document} units, got {len(units)}")
    seen: set[int] = set()
    out: list[UnitRecord] = []
    for i, u in enumerate(units):
        if not isinstance(u, UnitRecord):
            raise InvalidDocumentError(f"units[{i}] must be a UnitRecord, got {type(u).__name__}")
        if isinstance(u.unit, bool) or not isinstance(u.unit, int) or u.unit < 0:
            raise InvalidDocumentError(f"units[{i}].unit must be an int >= 0, got {u.unit!r}")
        if u.unit in seen:
            raise InvalidDocumentError(f"unit number {u.unit} appears twice in document {doc_id!r}")
        seen.add(u.unit)
        out.append(_validate_unit(u, f"units[{i}]", config, limits))
    out.sort(key=lambda r: r.unit)
    return doc_id, out, _json_object(metadata, "metadata", limits)


def _validate_unit(u: UnitRecord, what: str, config: CollectionConfig, limits: StoreLimits) -> UnitRecord:
    if u.kind not in UNIT_KINDS:
        raise InvalidDocumentError(f"{what}.kind must be one of {', '.join(UNIT_KINDS)}, got {u.kind!r:.40}")
    mv = _multivector(u.multivector, config.multivector_dim, f"{what}.multivector")
    if not 1 <= mv.shape[0] <= limits.max_vectors_per_unit:
        raise InvalidDocumentError(f"{what}.multivector needs 1..{limits.max_vectors_per_unit} rows, got {mv.shape[0]}")
    dense = _dense(u.dense, config.dense_dim, f"{what}.dense")
    if u.text is not None:
        if not isinstance(u.text, str):
            raise InvalidDocumentError(f"{what}.text must be a str or None, got {type(u.text).__name__}")
        size = len(u.text.encode("utf-8", "surrogatepass"))
        if size > limits.max_text_bytes:
            raise InvalidDocumentError(f"{what}.text is {size} bytes, at most {limits.max_text_bytes} allowed")
        if "\x00" in u.text:
            raise InvalidDocumentError(f"{what}.text must not contain NUL characters")
    image = u.image
    if image is not None:
        if not isinstance(image, bytes | bytearray | memoryview):
            raise InvalidDocumentError(f"{what}.image must be bytes or None, got {type(image).__name__}")
        image = bytes(image)
        if not 1 <= len(image) <= limits.max_image_bytes:
            raise InvalidDocumentError(f"{what}.image is {len(image)} bytes, 1..{limits.max_image_bytes} allowed")
    meta = _json_object(u.metadata, f"{what}.metadata", limits)
    return UnitRecord(u.unit, dense, mv, kind=u.kind, text=u.text, metadata=meta, image=image)


_TOKEN = r"[A-Za-z0-9!#$&^_.+-]+"
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}(\s*;\s*{_TOKEN}={_TOKEN})*")  # type/subtype; parameter=value


def validate_original(original: object, limits: StoreLimits) -> OriginalFile | None:
    """Check a document's original file (bytes 1..``max_original_bytes``, a ``type/subtype`` media type, a
    file name without NUL or control characters); the same typed error from both backends."""
    if original is None:
        return None
    if not isinstance(original, OriginalFile):
        raise InvalidDocumentError(f"original must be an OriginalFile or None, got {type(original).__name__}")
    data = original.data
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidDocumentError(f"original.data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if not 1 <= len(data) <= limits.max_original_bytes:
        raise InvalidDocumentError(
            f"original file is {len(data)} bytes, 1..{limits.max_original_bytes} allowed "
            "(StoreLimits.max_original_bytes)"
        )
    media = original.media_type
    if not isinstance(media, str) or len(media) > 255 or not _MEDIA_TYPE.fullmatch(media):
        raise InvalidDocumentError(
            f"original.media_type must be a media type like 'application/pdf', got {media!r:.80}"
        )
    name = original.name
    if name is not None:
        if not isinstance(name, str) or not 1 <= len(name) <= limits.max_original_name_chars:
            raise InvalidDocumentError(
                f"original.name must be None or a str of 1..{limits.max_original_name_chars} characters, "
                f"got {name!r:.80}"
            )
        if any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise InvalidDocumentError(f"original.name must not contain control characters, got {name!r:.80}")
    return OriginalFile(data, media, name)


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


def check_page_window(offset: int, limit: int, limits: StoreLimits) -> None:
    """``list_documents``' paging arguments: ``offset`` >= 0, ``limit`` in 1..``max_list_limit``."""
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidQueryError(f"offset must be an int >= 0, got {offset!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= limits.max_list_limit:
        raise InvalidQueryError(f"limit must be an int in 1..{limits.max_list_limit}, got {limit!r}")
