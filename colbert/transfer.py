"""Export a collection to one portable file and import it again, into either backend, without re-embedding.

The file (format ``jev4-collection-export``, version 2) is a tar archive (``.tar``; gzip-compressed when the
name ends in ``.gz``/``.tgz``), written and read as a stream, in this order::

    manifest.json                        format, version, collection name and config (dense_dim,
                                         multivector_dim, codec, pool_factor), source backend,
                                         multivector_encoding, sketch_vectors, exported_at
    documents/00000000/document.json     doc_id, metadata, created_at, content_hash, warnings,
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

An import cannot poison the target nor half-finish. Every record is checked before it is written, against the
rules an upload obeys and the manifest's config (:func:`_checked`): vector byte lengths, finite ``created_at``,
ids without control characters or ``/``, a known task and unit kind, the page metadata the service reads, JSON
nested at most :data:`MAX_JSON_DEPTH` deep; each tar member is read only after its size is checked against the
most it may hold. The documents go into a hidden *staging* collection that the backend publishes under the
target name only at the end (:meth:`colbert.backend.Backend.create_staging`): a failure, or ``kill -9``, leaves
no collection of that name, and a collection created meanwhile by someone else is never replaced nor deleted.
Each backend reads and writes documents as stored (:meth:`~colbert.backend.Backend.export_source`,
:meth:`~colbert.backend.Backend.restore`); nothing here asks which backend it is.
"""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile
import time
import uuid
from collections.abc import Container, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from colbert._export_checks import (
    MAX_MANIFEST_BYTES,
    TASKS,
    checked,
    config_from,
    document,
    member_cap,
    read_json,
    read_member,
)
from colbert._validate import validate_config
from colbert.backend import Backend, StoredDocument
from colbert.catalog import Catalog, validate_name
from colbert.errors import ExportFormatError
from colbert.quantize import Codec, checked_codec
from colbert.store import CollectionConfig, FileInfo, Store, StoreLimits

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
    source = catalog.backend.export_source(store)
    manifest = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "collection": name,
        "config": config.as_json(),
        "source_backend": catalog.backend.kind,
        "multivector_encoding": str(source.encoding),
        "sketch_vectors": source.sketch_vectors,
        "exported_at": time.time(),
    }
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    n_docs = n_units = 0
    try:
        mode = "w:gz" if path.name.endswith((".gz", ".tgz")) else "w:"
        with tarfile.open(tmp, mode, format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            _add(tar, "manifest.json", _json_bytes(manifest))
            for i, doc in enumerate(source.documents):
                _write_document(tar, f"documents/{i:08d}", doc)
                n_docs += 1
                n_units += len(doc.units)
            _add(tar, "end.json", _json_bytes({"documents": n_docs, "units": n_units}))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportSummary(name, n_docs, n_units, config, catalog.backend.kind)


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
        "warnings": list(doc.warnings),
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


@dataclass(frozen=True)
class _Source:
    """What the manifest says about the records that follow it."""

    config: CollectionConfig
    encoding: Codec
    sketch_vectors: int | None
    limits: StoreLimits


def import_collection(
    catalog: Catalog,
    path: Path,
    *,
    name: str | None = None,
    tasks: Container[str] = TASKS,
    codec: str | None = None,
) -> ExportSummary:
    """Create a collection from an export file (named as exported unless ``name``) and fill it as stored;
    ``codec``: store the multi-vectors with that codec instead of the exported one (a recode: the stored values
    are re-encoded; ``CodecError`` for a codec that does not exist).

    ``CollectionExistsError`` if the name is taken (before or at the end: the staged import is then discarded);
    ``ExportFormatError`` for a file that is not an export of this format, is cut short, or holds a record an
    upload could not have stored (module doc). Nothing is visible under the name until the import is complete."""
    with tarfile.open(path, "r:*") as tar:
        members = _members(tar)
        manifest = read_json(tar, next(members, None), "manifest.json", MAX_MANIFEST_BYTES)
        if manifest.get("format") != EXPORT_FORMAT or manifest.get("version") not in READABLE_VERSIONS:
            raise ExportFormatError(
                f"{path} is not a {EXPORT_FORMAT} file of version {' or '.join(map(str, READABLE_VERSIONS))} "
                f"(found {manifest.get('format')!r:.80} version {manifest.get('version')!r:.20})"
            )
        config = config_from(manifest.get("config"), tasks)
        config = config if codec is None else dataclasses.replace(config, codec=checked_codec(codec))
        target = validate_name(name or manifest.get("collection"))
        validate_config(config)
        sketch_vectors = manifest.get("sketch_vectors")
        if sketch_vectors is not None and (not isinstance(sketch_vectors, int) or not 1 <= sketch_vectors <= 4096):
            raise ExportFormatError(f"manifest: sketch_vectors must be null or 1..4096, got {sketch_vectors!r:.40}")
        try:
            encoding = Codec(str(manifest.get("multivector_encoding")))
        except ValueError as exc:
            raise ExportFormatError(f"manifest: {exc}") from exc
        n_docs, n_units = _staged_import(catalog.backend, target, config, tar, members, encoding, sketch_vectors)
    return ExportSummary(target, n_docs, n_units, config, str(manifest.get("source_backend"))[:40])


def _staged_import(
    backend: Backend,
    target: str,
    config: CollectionConfig,
    tar: tarfile.TarFile,
    members: Iterator[tarfile.TarInfo],
    encoding: Codec,
    sketch_vectors: int | None,
) -> tuple[int, int]:
    """Fill a staging collection and publish it as ``target``; on any failure, discard it (module doc)."""
    key, store = backend.create_staging(target, config)
    try:
        limits: StoreLimits = store.options.limits  # type: ignore[attr-defined]
        source = _Source(config, encoding, sketch_vectors, limits)
        counts = _fill(backend, store, tar, members, source)
        store.close()
        backend.publish(key, target)
    except BaseException:
        store.close()
        backend.discard(key)
        raise
    return counts


def _fill(
    backend: Backend, store: Store, tar: tarfile.TarFile, members: Iterator[tarfile.TarInfo], source: _Source
) -> tuple[int, int]:
    n_docs = n_units = 0
    pending: tarfile.TarInfo | None = next(members, None)
    while pending is not None and pending.name != "end.json":
        folder = pending.name.rsplit("/", 1)[0]
        record = read_json(tar, pending, f"{folder}/document.json", _cap("document.json", source))
        parts: dict[str, bytes] = {}
        pending = next(members, None)
        while pending is not None and pending.name.startswith(folder + "/"):
            part = pending.name[len(folder) + 1 :]
            if part in parts or len(parts) > 5 * source.limits.max_units_per_document:
                raise ExportFormatError(f"{pending.name}: a member repeated, or more members than units allow")
            parts[part] = read_member(tar, pending, _cap(part, source))
            pending = next(members, None)
        doc = document(record, parts)
        checked(doc, source.config, source.encoding, source.sketch_vectors, source.limits)
        backend.restore(store, doc, source.encoding, source.sketch_vectors)
        n_docs += 1
        n_units += len(doc.units)
    if pending is None:
        raise ExportFormatError(f"the file is cut short: no end.json after {n_docs} documents")
    end = read_json(tar, pending, "end.json", MAX_MANIFEST_BYTES)
    if (end.get("documents"), end.get("units")) != (n_docs, n_units):
        raise ExportFormatError(
            f"end.json counts {str(end)[:200]} but the file holds {n_docs} documents, {n_units} units"
        )
    return n_docs, n_units


def _cap(part: str, source: _Source) -> int:
    return member_cap(part, source.config, source.limits, source.sketch_vectors)


def _file_json(info: FileInfo) -> dict[str, Any]:
    return {"media_type": info.media_type, "name": info.name, "size": info.size, "sha256": info.sha256}


# ---- helpers ------------------------------------------------------------------------------------------------


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    for member in tar:
        if member.isfile():
            yield member


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, sort_keys=True).encode()
