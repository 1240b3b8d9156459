"""The checks an import makes on an export file before anything of it is written (:mod:`colbert.transfer`).

Each record is held to the rules an upload obeys and to the manifest's config, so a forged file is an
``ExportFormatError`` naming what is wrong — never a traceback, and never a record that imports and then makes
reads fail: JSON nested at most :data:`MAX_JSON_DEPTH` deep (checked before parsing), vector byte lengths that
match the config and the encoding, a finite ``created_at``, ids and file names without control characters or
``/``, a known task and unit kind, and the page metadata the service reads (``image_grid``, ``image_span``,
``words``) in its shape. Each tar member's size is checked against the most it may hold before it is read.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tarfile
from collections.abc import Container
from typing import Any

import numpy as np

from colbert import word_boxes
from colbert._validate import validate_document, validate_original, validate_warnings
from colbert.backend import StoredDocument, StoredUnit
from colbert.errors import ColbertError, ExportFormatError
from colbert.quantize import Codec, decode
from colbert.store import UNIT_KINDS, CollectionConfig, OriginalFile, StoreLimits, UnitRecord

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_MANIFEST_BYTES",
    "TASKS",
    "checked",
    "config_from",
    "document",
    "json_depth",
    "member_cap",
    "read_json",
    "read_member",
]

MAX_JSON_DEPTH = 64  # nesting of any JSON member (metadata is far shallower; Python's parser recurses)
MAX_MANIFEST_BYTES = 1 << 20
TASKS = ("retrieval", "text-matching", "code")  # the encoder's adapters (model.types.Task; colbert imports no model)
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def json_depth(data: bytes) -> int:
    """The deepest nesting of arrays/objects in JSON text, counted without parsing it.

    >>> json_depth(b'{"a": [1, {"b": "[[["}]}')
    3
    """
    brackets = np.frombuffer(_STRINGS.sub(b'""', data), dtype=np.uint8)
    step = np.isin(brackets, (ord("["), ord("{"))).astype(np.int64) - np.isin(brackets, (ord("]"), ord("}")))
    return int(np.cumsum(step).max(initial=0))


def read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, cap: int) -> bytes:
    """A member's bytes, refused before reading when it is larger than ``cap``."""
    if member.size > cap:
        raise ExportFormatError(f"{member.name} is {member.size} bytes, at most {cap} expected there")
    f = tar.extractfile(member)
    if f is None:
        raise ExportFormatError(f"{member.name} is not a regular file")
    with f:
        return f.read(cap + 1)[:cap]


def read_json(tar: tarfile.TarFile, member: tarfile.TarInfo | None, expected: str, cap: int) -> dict[str, Any]:
    if member is None or member.name != expected:
        found = "the end of the file" if member is None else repr(member.name)
        raise ExportFormatError(f"expected {expected} in the export, found {found}")
    data = read_member(tar, member, cap)
    if json_depth(data) > MAX_JSON_DEPTH:
        raise ExportFormatError(f"{expected} nests JSON deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ExportFormatError(f"{expected} is not JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise ExportFormatError(f"{expected} must hold a JSON object")
    return value


def member_cap(part: str, config: CollectionConfig, limits: StoreLimits, sketch_vectors: int | None) -> int:
    """The most bytes a document's member ``part`` (``document.json``, ``original``, ``<unit>.<ext>``) may hold."""
    ext = part.rsplit(".", 1)[-1] if "." in part else part
    return {
        "json": limits.max_units_per_document * (2 * limits.max_metadata_bytes + 256) + limits.max_metadata_bytes,
        "original": limits.max_original_bytes,
        "dense": config.dense_dim * 4,
        "mv": limits.max_vectors_per_unit * config.multivector_dim * 4,
        "txt": limits.max_text_bytes,
        "image": limits.max_image_bytes,
        "sketch": (sketch_vectors or 0) * config.multivector_dim * 2,
    }.get(ext, 0)


def config_from(value: Any, tasks: Container[str]) -> CollectionConfig:
    """The manifest's collection config, checked (a known task and unit kind)."""
    try:
        config = CollectionConfig(
            dense_dim=_int(value["dense_dim"]),
            multivector_dim=_int(value["multivector_dim"]),
            codec=Codec(value["codec"]),
            pool_factor=_int(value["pool_factor"]),
            task=str(value.get("task", "retrieval")),  # files written before collections had a task
            unit_kind=str(value.get("unit_kind", "page")),
            ocr=None if value.get("ocr") is None else str(value["ocr"]),  # absent: none set
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ExportFormatError(f"damaged manifest config {value!r:.200} ({exc!r})") from exc
    if config.task not in tasks:
        raise ExportFormatError(f"manifest config: unknown task {config.task!r:.40}")
    if config.unit_kind not in UNIT_KINDS:
        raise ExportFormatError(f"manifest config: unknown unit_kind {config.unit_kind!r:.40}")
    return config


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r:.40}")
    return value


def document(record: dict[str, Any], parts: dict[str, bytes]) -> StoredDocument:
    """The document a ``document.json`` record and its members describe (shapes checked, values by ``checked``)."""
    try:
        units = []
        for u in record["units"]:
            n = _int(u["unit"])
            units.append(
                StoredUnit(
                    unit=n,
                    kind=str(u["kind"]),
                    metadata=dict(u["metadata"]),
                    dense=parts[f"{n}.dense"],
                    rows=_int(u["rows"]),
                    mv=parts[f"{n}.mv"],
                    text=parts[f"{n}.txt"].decode("utf-8") if u["text"] else None,
                    image=parts[f"{n}.image"] if u["image"] else None,
                    sketch=parts[f"{n}.sketch"] if u["sketch"] else None,
                )
            )
        created_at = record["created_at"]
        if isinstance(created_at, bool) or not isinstance(created_at, int | float) or not math.isfinite(created_at):
            raise ValueError(f"created_at must be a finite number, got {created_at!r:.40}")
        doc_id = record["doc_id"]
        if not isinstance(doc_id, str):
            raise TypeError(f"doc_id must be a string, got {doc_id!r:.40}")
        content_hash = record.get("content_hash")
        original = _original(record.get("file"), parts, doc_id)
        warnings = tuple(record.get("warnings") or ())  # absent in exports made before documents kept warnings
        return StoredDocument(
            doc_id, dict(record["metadata"]), float(created_at), content_hash, units, original, warnings
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ExportFormatError(f"damaged document record {str(record)[:200]} ({exc!r})") from exc


def _original(file: Any, parts: dict[str, bytes], doc_id: str) -> OriginalFile | None:
    """The document's original file from its ``file`` description and ``original`` member, checked."""
    if file is None:
        return None
    data = parts["original"]
    if len(data) != _int(file["size"]) or hashlib.sha256(data).hexdigest() != file["sha256"]:
        raise ExportFormatError(f"document {doc_id!r}: its original file does not match its size/sha256")
    name = file.get("name")
    if name is not None and (not isinstance(name, str) or "/" in name or _CONTROL.search(name)):
        raise ExportFormatError(f"document {doc_id!r}: original file name {name!r:.80} holds '/' or control characters")
    return OriginalFile(data, str(file["media_type"]), name)


def checked(
    doc: StoredDocument, config: CollectionConfig, encoding: Codec, sketch_vectors: int | None, limits: StoreLimits
) -> None:
    """Refuse (``ExportFormatError``) a document that an upload could not have stored (module doc)."""
    where = f"document {doc.doc_id!r:.80}"
    if "/" in doc.doc_id or _CONTROL.search(doc.doc_id):
        raise ExportFormatError(f"{where}: ids must not hold '/' or control characters")
    records = []
    try:
        for u in doc.units:
            if len(u.dense) != config.dense_dim * 4:
                raise ExportFormatError(
                    f"unit {u.unit}: dense vector of {len(u.dense)} bytes, {config.dense_dim * 4} expected"
                )
            if u.sketch is not None and len(u.sketch) != (sketch_vectors or 0) * config.multivector_dim * 2:
                raise ExportFormatError(f"unit {u.unit}: sketch of {len(u.sketch)} bytes does not match sketch_vectors")
            _page_metadata(u)
            mv = decode(u.mv, u.rows, config.multivector_dim, encoding)  # CodecError on a wrong byte length
            dense = np.frombuffer(u.dense, dtype=np.float32)
            records.append(UnitRecord(u.unit, dense, mv, kind=u.kind, text=u.text, metadata=u.metadata, image=u.image))
        validate_document(doc.doc_id, records, doc.metadata, config, limits, doc.content_hash)
        validate_original(doc.original, limits)
        validate_warnings(doc.warnings)
    except (ColbertError, ValueError) as exc:  # ExportFormatError included: named with the document
        raise ExportFormatError(f"{where}: {exc}") from exc


def _page_metadata(u: StoredUnit) -> None:
    """The unit metadata the service reads back (similarity maps, highlights) in the shape it writes."""
    meta = u.metadata
    grid, span = meta.get("image_grid"), meta.get("image_span")
    if grid is not None and not (_ints(grid, 2) and min(grid) >= 1):
        raise ExportFormatError(f"unit {u.unit}: image_grid must be [rows, cols] >= 1, got {grid!r:.60}")
    if span is not None:
        if not (_ints(span, 2) and 0 <= span[0] <= span[1]):
            raise ExportFormatError(f"unit {u.unit}: image_span must be [start, stop] with 0 <= start <= stop")
        if grid is None or grid[0] * grid[1] != span[1] - span[0]:
            raise ExportFormatError(f"unit {u.unit}: image_span does not cover image_grid's rows x cols")
    words = meta.get("words")
    if isinstance(words, str):
        try:
            word_boxes.unpack(words)
        except word_boxes.WordBoxesError as exc:
            raise ExportFormatError(f"unit {u.unit}: words: {exc}") from exc
    elif words is not None and not (
        isinstance(words, list)
        and all(isinstance(w, list) and len(w) == 5 and isinstance(w[4], str) and _numbers(w[:4]) for w in words)
    ):
        raise ExportFormatError(f"unit {u.unit}: words must be [[x0, y0, x1, y1, word], ...]")


def _ints(value: Any, n: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) == n
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )


def _numbers(values: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values)
