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

Validation of caller input is in :mod:`colbert._validate`, so both backends reject the same things with the same
typed errors (:mod:`colbert.errors`); every limit is a field of :class:`StoreLimits`.

Searches take a :class:`~colbert.search.Query` and :class:`~colbert.search.SearchOptions` (validated once, when
built). Filters (``SearchOptions.of(filter={"lang": "en", "year": {"$gte": 2020}})``) test top-level keys of the
*document* metadata: equality, ``$in``, ``$ne``, ``$gt/$gte/$lt/$lte``, ``$exists``, ANDed; the syntax and the semantics
both backends share are in :mod:`colbert.filters` (``1`` does not match ``true``; lists match by any element).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from colbert.filters import MetadataFilter
from colbert.hybrid import Signal
from colbert.quantize import Codec

if TYPE_CHECKING:
    from colbert.search import Query, SearchOptions

__all__ = [
    "UNIT_KINDS",
    "CollectionConfig",
    "DocumentInfo",
    "FileInfo",
    "Hit",
    "NewDocument",
    "OriginalFile",
    "Store",
    "StoreLimits",
    "UnitRecord",
]

UNIT_KINDS = ("page", "chunk")


@dataclass(frozen=True)
class CollectionConfig:
    """What a collection stores; fixed when it is created and checked when it is reopened."""

    dense_dim: int
    multivector_dim: int = 128
    # the smallest codec whose exhaustive top-10 agrees ≥ 0.95 with float32 on the synthetic and the real-page
    # vectors (bench/README.md, "bench/codec_agreement.py"); the stored codec of a collection never changes
    codec: Codec = Codec.INT8
    pool_factor: int = 1
    task: str = "retrieval"  # the encoder task its units and queries are embedded with (an opaque label here)
    unit_kind: str = "page"  # the one kind of unit it holds (one of UNIT_KINDS): scores of kinds do not mix
    ocr: str | None = None  # the writer's OCR default for its documents (an opaque label here); None: none set

    def as_json(self) -> dict[str, Any]:
        """The fields as JSON values (the codec by name), as the Qdrant metadata and export files keep them
        (``ocr`` only when set, so that configs without one read as before)."""
        out: dict[str, Any] = {
            "dense_dim": self.dense_dim,
            "multivector_dim": self.multivector_dim,
            "codec": str(Codec(self.codec)),
            "pool_factor": self.pool_factor,
            "task": self.task,
            "unit_kind": self.unit_kind,
        }
        if self.ocr is not None:
            out["ocr"] = self.ocr
        return out


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
    warnings: tuple[str, ...] = ()  # what the writer found wrong but stored anyway ("no text found: ...")


@dataclass(frozen=True)
class Hit:
    """A ranked unit with its document's metadata. ``signals``: which signals found it, each with its score and
    rank (:mod:`colbert.hybrid`). ``text`` and ``unit_metadata`` are read with the ranking when the search's
    options ask for them (``include_text``, ``include_unit_metadata``); None otherwise, and ``text`` None also
    when the unit has none. Vectors and the image come from ``Store.get_unit`` / ``Store.get_image``."""

    doc_id: str
    unit: int
    score: float
    metadata: dict[str, Any]
    kind: str = "page"
    signals: Mapping[str, Signal] = field(default_factory=dict)
    text: str | None = None
    unit_metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class NewDocument:
    """One document of a bulk load (``colbert.local.bulk.add_documents``): the arguments of
    :meth:`Store.add_document` for one document."""

    doc_id: str
    units: Sequence[UnitRecord]
    metadata: Mapping[str, Any] | None = None
    content_hash: str | None = None
    original: OriginalFile | None = None
    warnings: Sequence[str] = ()


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
        warnings: Sequence[str] = (),
    ) -> DocumentInfo: ...

    def delete_document(self, doc_id: str) -> bool: ...

    def delete_documents(self, filter: Mapping[str, Any] | MetadataFilter, *, dry_run: bool = False) -> list[str]:
        """Delete every document whose metadata passes ``filter`` (non-empty); their ids, sorted. ``dry_run``:
        delete nothing, answer the ids. ``UnknownFilterKeyError`` if it names a key no document has."""
        ...

    def get_document(self, doc_id: str) -> DocumentInfo | None: ...

    def list_documents(self, *, offset: int = 0, limit: int = 100) -> list[DocumentInfo]: ...

    def count(self) -> tuple[int, int]: ...

    def metadata_keys(self, keys: Iterable[str]) -> set[str]:
        """Those of ``keys`` that some document's metadata holds with a value other than null and ``[]``: a
        search's filter on any other key is flagged (``warnings``) as a key the collection never had."""
        ...

    def search(self, query: Query, options: SearchOptions) -> list[Hit]:
        """The top ``options.k`` units for ``query`` (:mod:`colbert.search`: one options object, validated when
        built), best first."""
        ...

    def get_unit(self, doc_id: str, unit: int) -> UnitRecord | None: ...

    def get_image(self, doc_id: str, unit: int) -> bytes | None: ...

    def get_original(self, doc_id: str) -> OriginalFile | None:
        """The document's original file as stored; None if there is no such document or it has none."""
        ...

    def unit_numbers(self, doc_id: str) -> list[int] | None:
        """The numbers of the document's units, ascending (PDF page numbers of a page selection such as
        ``[1, 3]``); None if there is no such document."""
        ...

    def update_metadata(self, doc_id: str, metadata: Mapping[str, Any]) -> DocumentInfo:
        """Set a document's metadata (the whole object) without touching its units; ``DocumentNotFoundError``
        if there is none (a write names one document: there is no sensible "nothing" to answer)."""
        ...

    def find_by_hash(self, content_hash: str) -> DocumentInfo | None:
        """The earliest-added document stored with this ``content_hash`` (an indexed lookup), None if none."""
        ...

    def close(self) -> None: ...
