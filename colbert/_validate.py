"""Validation of caller input shared by both backends (:mod:`colbert.store` holds the records it checks): the
same input is refused with the same typed error (:mod:`colbert.errors`) whichever backend gets it, and every
limit is a field of :class:`~colbert.store.StoreLimits`."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from colbert.errors import (
    DimensionMismatchError,
    InvalidDocumentError,
    InvalidFilterError,
    InvalidQueryError,
    UnknownFilterKeyError,
)
from colbert.filters import MetadataFilter, parse_filter
from colbert.quantize import Codec
from colbert.store import UNIT_KINDS, CollectionConfig, OriginalFile, StoreLimits, UnitRecord

__all__ = [
    "canonical_json",
    "check_delete_filter",
    "check_page_window",
    "query_arrays",
    "validate_config",
    "validate_document",
    "validate_filter",
    "validate_metadata",
    "validate_original",
    "validate_warnings",
]

MAX_WARNINGS = 16  # per document
MAX_WARNING_LENGTH = 1000  # characters


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
    if config.ocr is not None and (not isinstance(config.ocr, str) or not 1 <= len(config.ocr) <= 32):
        raise InvalidDocumentError(f"ocr must be None or a str of 1..32 characters, got {config.ocr!r:.40}")


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


def validate_warnings(warnings: object) -> tuple[str, ...]:
    """Check a document's warnings (at most ``MAX_WARNINGS`` non-empty strings of at most
    ``MAX_WARNING_LENGTH`` characters, no NUL); the same typed error from both backends."""
    if isinstance(warnings, str) or not isinstance(warnings, Sequence):
        raise InvalidDocumentError(f"warnings must be a sequence of str, got {type(warnings).__name__}")
    if len(warnings) > MAX_WARNINGS:
        raise InvalidDocumentError(f"a document holds at most {MAX_WARNINGS} warnings, got {len(warnings)}")
    for w in warnings:
        if not isinstance(w, str) or not 1 <= len(w) <= MAX_WARNING_LENGTH or "\x00" in w:
            raise InvalidDocumentError(
                f"each warning must be a str of 1..{MAX_WARNING_LENGTH} characters without NUL, got {w!r:.80}"
            )
    return tuple(warnings)


def validate_filter(filter: Mapping[str, Any] | MetadataFilter | None) -> MetadataFilter:
    """Parse a metadata filter once (syntax and semantics: :mod:`colbert.filters`); ``InvalidFilterError``."""
    return parse_filter(filter)


def query_arrays(
    query_multivector: object, query_dense: object, config: CollectionConfig, limits: StoreLimits
) -> tuple[np.ndarray, np.ndarray | None]:
    """A search's vectors: (query (Lq, d) float32, unit dense query (dense_dim,) or None)."""
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


def check_delete_filter(filter: Mapping[str, Any] | MetadataFilter | None) -> MetadataFilter:
    """A delete-by-filter's filter: valid and non-empty (an empty filter would match every document)."""
    flt = validate_filter(filter)
    if not flt:
        raise InvalidFilterError("delete by filter needs at least one condition (an empty filter matches all)")
    return flt


def check_filter_keys(flt: MetadataFilter, held: Callable[[Iterable[str]], set[str]]) -> None:
    """Refuse a delete-by-filter naming a key that no document holds a value for (``UnknownFilterKeyError``):
    ``{"typo": {"$ne": 1}}`` would otherwise match, and delete, every document. ``held(keys)``: those of ``keys``
    some document holds (``Store.metadata_keys``: null and [] count as absent, as ``$exists`` reads them)."""
    keys = {c.key for c in flt.conditions}
    unknown = sorted(keys - held(keys))
    if unknown:
        raise UnknownFilterKeyError(
            f"no document of this collection has the metadata key(s) {unknown}: a delete by filter on them would "
            "match by absence; check the spelling, or filter on a key the documents have"
        )
