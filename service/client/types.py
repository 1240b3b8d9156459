"""Typed results of :mod:`service.client`: frozen dataclasses built from the server's JSON.

Forward compatible: :func:`build` keeps the fields a class declares and puts every other key of the JSON object
in ``extra`` (a newer server may add fields; an older client must not break on them). Nested objects are built
by each class's ``from_json``. Field names are the wire names (``SearchHit.page``, ``Document.pages``) so the
HTTP docs (``docs/api.md``) describe these objects too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "CellsTrained",
    "ChunkInfo",
    "Collection",
    "Deleted",
    "Document",
    "DocumentFile",
    "DocumentList",
    "Embedding",
    "Embeddings",
    "HighlightBox",
    "Job",
    "PageSimilarity",
    "Region",
    "RerankResult",
    "Reranked",
    "SearchHit",
    "SearchResults",
    "SimilarityMap",
    "Vacuumed",
    "build",
]

T = TypeVar("T")


def build(cls: type[T], raw: dict[str, Any], /, **nested: Any) -> T:
    """``cls`` from a JSON object: declared fields from ``raw`` (``nested`` overrides, already built), the rest
    in ``extra``. A declared field the JSON lacks takes the class default (a required one raises TypeError)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    known = {k: v for k, v in raw.items() if k in names and k != "extra"}
    known.update(nested, extra={k: v for k, v in raw.items() if k not in names})
    make: Any = cls
    result: T = make(**known)
    return result


@dataclass(frozen=True, slots=True)
class Collection:
    name: str
    dimensions: int
    multivector_dimensions: int
    codec: str
    pool_factor: int
    documents: int
    pages: int
    task: str = "retrieval"
    unit_kind: str = "page"
    disk_bytes: int | None = None
    cells: int | None = None  # the pooled_ivf first stage's cells (train_cells); None: none
    object: str = "collection"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DocumentFile:
    media_type: str
    bytes: int
    name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    collection: str
    pages: int
    metadata: dict[str, Any]
    created_at: float
    content_hash: str | None = None
    page_numbers: list[int] | None = None
    file: DocumentFile | None = None
    warnings: list[str] = field(default_factory=list)  # e.g. "no text found: visual search only"
    object: str = "document"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Document:
        file = data.get("file")
        return build(cls, data, file=None if file is None else build(DocumentFile, file))


@dataclass(frozen=True, slots=True)
class DocumentList:
    """One page of a collection's documents; ``total`` counts them all."""

    data: list[Document]
    offset: int
    limit: int
    total: int
    object: str = "list"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DocumentList:
        return build(cls, data, data=[Document.from_json(d) for d in data.get("data", [])])


@dataclass(frozen=True, slots=True)
class Job:
    """An indexing job (``wait=False`` uploads): ``status`` queued | running | succeeded | failed."""

    id: str
    collection: str
    document_id: str
    status: str
    pages_done: int
    created_at: float
    pages_total: int | None = None
    finished_at: float | None = None
    document: Document | None = None
    error: dict[str, str] | None = None
    object: str = "indexing_job"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        doc = data.get("document")
        return build(cls, data, document=None if doc is None else Document.from_json(doc))


@dataclass(frozen=True, slots=True)
class Deleted:
    id: str
    object: str
    deleted: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Vacuumed:
    collection: str
    bytes_before: int | None
    bytes_after: int | None
    bytes_reclaimed: int | None
    note: str
    object: str = "collection.vacuum"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CellsTrained:
    """What ``train_cells`` did: the collection's cell count (``pooled_ivf`` first stage) and the units filed now."""

    collection: str
    cells: int
    units_filed: int
    object: str = "collection.cells"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HighlightBox:
    """A page word matching the query, in pixels of the page image (x right, y down)."""

    x0: float
    y0: float
    x1: float
    y1: float
    word: str
    terms: list[str]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Region:
    """Where a hit's evidence is (its citation, ``regions: true``): ``bbox`` [x0, y0, x1, y1] as fractions of the
    page (page hits) or ``lines`` [first, last] of the document (chunk hits); ``source`` visual or text; ``text``
    the page text inside the box or the chunk's lines (docs/regions.md)."""

    score: float
    text: str
    source: str
    bbox: list[float] | None = None
    lines: list[int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _regions(data: dict[str, Any]) -> list[Region] | None:
    found = data.get("regions")
    return None if found is None else [build(Region, r) for r in found]


@dataclass(frozen=True, slots=True)
class SimilarityMap:
    """``maps[t][r][c]``: cosine of query token ``t`` with the page patch at row ``r``, column ``c``."""

    rows: int
    cols: int
    tokens: list[str]
    maps: list[list[list[float]]]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChunkInfo:
    """Where a text/code chunk is: ``lines`` is [first, last], 1-based, inclusive."""

    path: str
    language: str
    chunk_kind: str
    lines: list[int]
    char_span: list[int]
    text: str
    name: str | None = None
    part: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SearchHit:
    document_id: str
    unit: int  # the unit's number in its document: a page hit's page number, a chunk hit's 0-based index
    score: float
    metadata: dict[str, Any]
    kind: str = "page"
    page: int | None = None  # a page hit's page number (as unit); None on chunk hits
    chunk: ChunkInfo | None = None
    image: str | None = None  # base64 PNG (include_image)
    similarity_map: SimilarityMap | None = None
    signals: dict[str, dict[str, float]] = field(default_factory=dict)
    text: str | None = None
    highlights: list[HighlightBox] | None = None
    regions: list[Region] | None = None  # regions: true
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchHit:
        chunk, smap, boxes = data.get("chunk"), data.get("similarity_map"), data.get("highlights")
        return build(
            cls,
            data,
            chunk=None if chunk is None else build(ChunkInfo, chunk),
            similarity_map=None if smap is None else build(SimilarityMap, smap),
            highlights=None if boxes is None else [build(HighlightBox, b) for b in boxes],
            regions=_regions(data),
        )


@dataclass(frozen=True, slots=True)
class SearchResults:
    model: str
    collection: str
    results: list[SearchHit]
    usage: dict[str, int]
    object: str = "list"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchResults:
        return build(cls, data, results=[SearchHit.from_json(h) for h in data.get("results", [])])


@dataclass(frozen=True, slots=True)
class PageSimilarity:
    """``POST .../pages/{page}/similarity``: the query's map over one stored page (+ word boxes on request)."""

    model: str
    collection: str
    document_id: str
    page: int
    similarity_map: SimilarityMap
    usage: dict[str, int]
    highlights: list[HighlightBox] | None = None
    regions: list[Region] | None = None
    object: str = "similarity_map"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PageSimilarity:
        boxes = data.get("highlights")
        return build(
            cls,
            data,
            similarity_map=build(SimilarityMap, data["similarity_map"]),
            highlights=None if boxes is None else [build(HighlightBox, b) for b in boxes],
            regions=_regions(data),
        )


@dataclass(frozen=True, slots=True)
class Embedding:
    """One input's vectors: ``embedding`` (single vector) and/or ``embeddings`` (multi-vector, one per token)."""

    index: int
    embedding: Any = None
    embeddings: Any = None
    input_index: int | None = None
    page: int | None = None
    object: str = "embedding"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Embeddings:
    model: str
    data: list[Embedding]
    usage: dict[str, int]
    object: str = "list"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Embeddings:
        return build(cls, data, data=[build(Embedding, e) for e in data.get("data", [])])


@dataclass(frozen=True, slots=True)
class RerankResult:
    index: int
    relevance_score: float
    document: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reranked:
    model: str
    results: list[RerankResult]
    usage: dict[str, int]
    object: str = "list"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reranked:
        return build(cls, data, results=[build(RerankResult, r) for r in data.get("results", [])])
