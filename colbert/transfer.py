"""Export a collection to one portable file and import it again, into either backend, without re-embedding.

The file (format ``jev4-collection-export``, version 2) is a tar archive (``.tar``; gzip-compressed when the
name ends in ``.gz``/``.tgz``), written and read as a stream, in this order::

    manifest.json                        format, version, collection name and config (dense_dim,
                                         multivector_dim, codec, pool_factor), source backend,
                                         multivector_encoding, sketch_vectors, exported_at
    documents/00000000/document.json     doc_id, metadata, created_at, content_hash,
                                         file: {media_type, name, size, sha256} or null (version 2),
                                         units: [{unit, kind, metadata, rows, text, image, sketch}]
                                         (``text``/``image``/``sketch``: whether that member follows)
    documents/00000000/original          the document's original file, as stored (when ``file`` is set)
    documents/00000000/<unit>.dense      the unit's dense vector: dense_dim float32, little-endian (unit norm)
    documents/00000000/<unit>.mv         the stored multi-vector: ``rows`` rows in multivector_encoding
                                         (a codec of :mod:`colbert.quantize`; already pooled)
    documents/00000000/<unit>.txt        the unit's text, UTF-8 (when it has one)
    documents/00000000/<unit>.image      the unit's image bytes as stored (when it has one)
    documents/00000000/<unit>.sketch     embedded backend only: the pooled first stage's centroids
                                         (sketch_vectors x multivector_dim float16)
    documents/00000001/...
    end.json                             {"documents": N, "units": M}: a file cut short has none

Version 2 added the original file (``file`` and the ``original`` member); a version-1 file still imports (its
documents have no original). The original's bytes are checked against ``size`` and ``sha256`` on import.

What is written is what the backend stores, never re-derived: the embedded backend's multi-vector blobs in the
collection's codec (``multivector_encoding`` = the codec), Qdrant's stored floats as it returns them
(``float32``: a server keeps non-float32 collections as float16, whose values float32 holds exactly; its local
mode keeps float32). An import writes them back as stored:
nothing is pooled or normalised again, and ``created_at``, ``content_hash`` and the order of documents are kept.
So a round trip through the same backend is bit-exact on vectors, texts, images, original files and metadata,
for every codec.
Between backends (migration), everything is bit-exact except what the target cannot hold: Qdrant keeps int8 and
binary collections as float16 of their decoded values (:mod:`colbert.qdrant`), so embedded -> Qdrant stores
exactly what adding the documents to Qdrant would have stored, and Qdrant -> embedded re-encodes those floats
with the codec (exact for float32, float16 and binary; int8 scales may differ in the last bit).

Sketches travel between embedded collections; an import into an embedded collection without them (from Qdrant)
recomputes them from the stored multi-vectors.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from colbert._transfer_stores import (
    ExportFormatError,
    StoredDocument,
    StoredUnit,
    local_documents,
    qdrant_documents,
    restore,
)
from colbert.catalog import Catalog
from colbert.local import LocalStore
from colbert.quantize import Codec
from colbert.store import CollectionConfig, FileInfo, OriginalFile, Store

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "ExportFormatError",
    "ExportSummary",
    "export_collection",
    "import_collection",
]

EXPORT_FORMAT = "jev4-collection-export"
EXPORT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: no original files


@dataclass(frozen=True)
class ExportSummary:
    collection: str
    documents: int
    units: int
    config: CollectionConfig
    source_backend: str


# ---- export -------------------------------------------------------------------------------------------------


def export_collection(catalog: Catalog, name: str, path: Path) -> ExportSummary:
    """Write collection ``name`` of ``catalog`` to ``path`` (module doc); the file appears only when complete."""
    store = catalog.get(name)
    config = store.config
    if isinstance(store, LocalStore):
        encoding, sketch_vectors, backend = Codec(config.codec), store.sketch_vectors, "local"
        documents = local_documents(store)
    else:
        encoding = Codec.FLOAT32  # what Qdrant returns, whatever its storage datatype: lossless
        sketch_vectors, backend = None, "qdrant"
        documents = qdrant_documents(store, encoding)
    manifest = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "collection": name,
        "config": config.as_json(),
        "source_backend": backend,
        "multivector_encoding": str(encoding),
        "sketch_vectors": sketch_vectors,
        "exported_at": time.time(),
    }
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    n_docs = n_units = 0
    try:
        mode = "w:gz" if path.name.endswith((".gz", ".tgz")) else "w:"
        with tarfile.open(tmp, mode, format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            _add(tar, "manifest.json", _json_bytes(manifest))
            for i, doc in enumerate(documents):
                _write_document(tar, f"documents/{i:08d}", doc)
                n_docs += 1
                n_units += len(doc.units)
            _add(tar, "end.json", _json_bytes({"documents": n_docs, "units": n_units}))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportSummary(name, n_docs, n_units, config, backend)


def _write_document(tar: tarfile.TarFile, folder: str, doc: StoredDocument) -> None:
    units = [
        {
            "unit": u.unit,
            "kind": u.kind,
            "metadata": u.metadata,
            "rows": u.rows,
            "text": u.text is not None,
            "image": u.image is not None,
            "sketch": u.sketch is not None,
        }
        for u in doc.units
    ]
    record = {
        "doc_id": doc.doc_id,
        "metadata": doc.metadata,
        "created_at": doc.created_at,
        "content_hash": doc.content_hash,
        "file": None if doc.original is None else _file_json(FileInfo.of(doc.original)),
        "units": units,
    }
    _add(tar, f"{folder}/document.json", _json_bytes(record))
    if doc.original is not None:
        _add(tar, f"{folder}/original", doc.original.data)
    for u in doc.units:
        _add(tar, f"{folder}/{u.unit}.dense", u.dense)
        _add(tar, f"{folder}/{u.unit}.mv", u.mv)
        if u.text is not None:
            _add(tar, f"{folder}/{u.unit}.txt", u.text.encode("utf-8", "surrogatepass"))
        if u.image is not None:
            _add(tar, f"{folder}/{u.unit}.image", u.image)
        if u.sketch is not None:
            _add(tar, f"{folder}/{u.unit}.sketch", u.sketch)


# ---- import -------------------------------------------------------------------------------------------------


def import_collection(catalog: Catalog, path: Path, *, name: str | None = None) -> ExportSummary:
    """Create a collection from an export file (named as exported unless ``name``) and fill it as stored.

    ``CollectionExistsError`` if the name is taken; ``ExportFormatError`` for a file that is not an export of
    this format (or is cut short: the collection made so far is deleted again)."""
    with tarfile.open(path, "r:*") as tar:
        members = _members(tar)
        manifest = _read_json(tar, next(members, None), "manifest.json")
        if manifest.get("format") != EXPORT_FORMAT or manifest.get("version") not in READABLE_VERSIONS:
            raise ExportFormatError(
                f"{path} is not a {EXPORT_FORMAT} file of version {' or '.join(map(str, READABLE_VERSIONS))} "
                f"(found {manifest.get('format')!r} version {manifest.get('version')!r})"
            )
        config = _config_from(manifest.get("config"), path)
        encoding = Codec(manifest["multivector_encoding"])
        target = name or str(manifest["collection"])
        store = catalog.create(target, config)
        try:
            n_docs, n_units = _fill(store, tar, members, encoding, manifest.get("sketch_vectors"), path)
        except BaseException:
            catalog.delete(target)
            raise
    return ExportSummary(target, n_docs, n_units, config, str(manifest.get("source_backend")))


def _fill(
    store: Store,
    tar: tarfile.TarFile,
    members: Iterator[tarfile.TarInfo],
    encoding: Codec,
    sketch_vectors: int | None,
    path: Path,
) -> tuple[int, int]:
    n_docs = n_units = 0
    pending: tarfile.TarInfo | None = next(members, None)
    while pending is not None and pending.name != "end.json":
        folder = pending.name.rsplit("/", 1)[0]
        record = _read_json(tar, pending, f"{folder}/document.json")
        parts: dict[str, bytes] = {}
        pending = next(members, None)
        while pending is not None and pending.name.startswith(folder + "/"):
            parts[pending.name[len(folder) + 1 :]] = _read(tar, pending)
            pending = next(members, None)
        doc = _document(record, parts, path)
        restore(store, doc, encoding, sketch_vectors)
        n_docs += 1
        n_units += len(doc.units)
    if pending is None:
        raise ExportFormatError(f"{path} is cut short: no end.json after {n_docs} documents")
    end = _read_json(tar, pending, "end.json")
    if (end.get("documents"), end.get("units")) != (n_docs, n_units):
        raise ExportFormatError(f"{path}: end.json counts {end} but the file holds {n_docs} documents, {n_units} units")
    return n_docs, n_units


def _document(record: dict[str, Any], parts: dict[str, bytes], path: Path) -> StoredDocument:
    try:
        units = []
        for u in record["units"]:
            n = int(u["unit"])
            text = parts[f"{n}.txt"].decode("utf-8", "surrogatepass") if u["text"] else None
            units.append(
                StoredUnit(
                    unit=n,
                    kind=str(u["kind"]),
                    metadata=dict(u["metadata"]),
                    dense=parts[f"{n}.dense"],
                    rows=int(u["rows"]),
                    mv=parts[f"{n}.mv"],
                    text=text,
                    image=parts[f"{n}.image"] if u["image"] else None,
                    sketch=parts[f"{n}.sketch"] if u["sketch"] else None,
                )
            )
        return StoredDocument(
            str(record["doc_id"]),
            dict(record["metadata"]),
            float(record["created_at"]),
            record.get("content_hash"),
            units,
            _original(record.get("file"), parts, str(record["doc_id"]), path),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportFormatError(f"{path}: damaged document record {str(record)[:200]} ({exc!r})") from exc


def _original(file: Any, parts: dict[str, bytes], doc_id: str, path: Path) -> OriginalFile | None:
    """The document's original file from its ``file`` description and ``original`` member, checked."""
    if file is None:
        return None
    data = parts["original"]
    if len(data) != int(file["size"]) or hashlib.sha256(data).hexdigest() != file["sha256"]:
        raise ExportFormatError(f"{path}: document {doc_id!r}: its original file does not match its size/sha256")
    return OriginalFile(data, str(file["media_type"]), file.get("name"))


def _file_json(info: FileInfo) -> dict[str, Any]:
    return {"media_type": info.media_type, "name": info.name, "size": info.size, "sha256": info.sha256}


# ---- helpers ------------------------------------------------------------------------------------------------


def _config_from(value: Any, path: Path) -> CollectionConfig:
    try:
        return CollectionConfig(
            dense_dim=int(value["dense_dim"]),
            multivector_dim=int(value["multivector_dim"]),
            codec=Codec(value["codec"]),
            pool_factor=int(value["pool_factor"]),
            task=str(value.get("task", "retrieval")),  # files written before collections had a task
            unit_kind=str(value.get("unit_kind", "page")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportFormatError(f"{path}: damaged manifest config {value!r:.200} ({exc!r})") from exc


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    for member in tar:
        if member.isfile():
            yield member


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    f = tar.extractfile(member)
    if f is None:
        raise ExportFormatError(f"{member.name} is not a regular file")
    with f:
        return f.read()


def _read_json(tar: tarfile.TarFile, member: tarfile.TarInfo | None, expected: str) -> dict[str, Any]:
    if member is None or member.name != expected:
        found = "the end of the file" if member is None else repr(member.name)
        raise ExportFormatError(f"expected {expected} in the export, found {found}")
    try:
        value = json.loads(_read(tar, member))
    except ValueError as exc:
        raise ExportFormatError(f"{expected} is not JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise ExportFormatError(f"{expected} must hold a JSON object")
    return value


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, sort_keys=True).encode()
