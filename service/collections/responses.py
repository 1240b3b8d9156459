"""The API objects the collection routes answer with, built from the index's records (:mod:`colbert.store`),
the jobs (:mod:`service.collections.jobs`) and search matches (:mod:`service.collections.search`); a search
request's options; and the JSON Merge Patch a ``PATCH`` of metadata applies."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from colbert.units import ChunkInfo as UnitChunkInfo
from service.collections.schemas import CollectionObject, DocumentFile, DocumentObject, JobObject
from service.collections.search_schemas import (
    ChunkInfo,
    HighlightBox,
    RegionObject,
    SearchHit,
    SignalScore,
    SimilarityMap,
)

if TYPE_CHECKING:
    from colbert.store import CollectionConfig, DocumentInfo
    from service.collections.jobs import IndexJob
    from service.collections.regions import Region
    from service.collections.search import PageMatch

__all__ = [
    "chunk_info",
    "collection_object",
    "document_object",
    "hit_object",
    "job_object",
    "merge_patch",
    "region_object",
]


def document_object(collection: str, info: DocumentInfo) -> DocumentObject:
    file = info.file
    return DocumentObject(
        id=info.doc_id,
        collection=collection,
        pages=info.num_units,
        metadata=info.metadata,
        created_at=info.created_at,
        content_hash=info.content_hash,
        warnings=list(info.warnings),
        file=None if file is None else DocumentFile(media_type=file.media_type, bytes=file.size, name=file.name),
    )


def job_object(job: IndexJob) -> JobObject:
    return JobObject(
        id=job.id,
        collection=job.collection,
        document_id=job.document_id,
        status=job.status.value,
        pages_done=job.pages_done,
        pages_total=job.pages_total,
        created_at=job.created_at,
        finished_at=job.finished_at,
        document=None if job.document is None else document_object(job.collection, job.document),
        error=None if job.error is None else job.error.body()["error"],
    )


def collection_object(
    name: str,
    config: CollectionConfig,
    counts: tuple[int, int],
    disk_bytes: int | None = None,
    cells: int | None = None,
) -> CollectionObject:
    return CollectionObject(
        name=name,
        dimensions=config.dense_dim,
        multivector_dimensions=config.multivector_dim,
        codec=str(config.codec),
        pool_factor=config.pool_factor,
        task=config.task,
        unit_kind=config.unit_kind,
        ocr=config.ocr,
        documents=counts[0],
        pages=counts[1],
        disk_bytes=disk_bytes,
        cells=cells,
    )


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7396 JSON Merge Patch of two JSON objects.

    >>> merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"a": None, "b": {"c": 9}, "e": [1]})
    {'b': {'c': 9, 'd': 3}, 'e': [1]}
    """
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_patch(out[key], value)
        else:
            out[key] = value
    return out


def hit_object(match: PageMatch) -> SearchHit:
    """A search hit as the API answers it: a page hit names its ``page``, a chunk hit its ``unit`` and ``chunk``
    (both from the hit's unit text and metadata, read with the ranking)."""
    found = match.hit
    signals = {name: SignalScore(score=sig.score, rank=sig.rank) for name, sig in found.signals.items()}
    hit = SearchHit(
        document_id=found.doc_id,
        unit=found.unit,
        score=found.score,
        metadata=found.metadata,
        kind=found.kind,
        signals=signals,
    )
    if found.kind == "chunk":
        hit.chunk = chunk_info(found.unit_metadata or {}, found.text)
    else:
        hit.page = found.unit
    if match.include_text:
        hit.text = found.text
    if match.highlights is not None:
        hit.highlights = [
            HighlightBox(x0=b.x0, y0=b.y0, x1=b.x1, y1=b.y1, word=b.word, terms=list(b.terms)) for b in match.highlights
        ]
    if match.regions is not None:
        hit.regions = [region_object(r) for r in match.regions]
    if match.image is not None:
        hit.image = base64.b64encode(match.image).decode("ascii")
    if match.similarity is not None:
        grid = match.similarity
        hit.similarity_map = SimilarityMap(rows=grid.rows, cols=grid.cols, tokens=grid.tokens, maps=_rounded(grid.maps))
    return hit


def region_object(region: Region) -> RegionObject:
    out = RegionObject(score=region.score, text=region.text, source="text" if region.source == "text" else "visual")
    if region.bbox is not None:
        out.bbox = list(region.bbox)
    if region.lines is not None:
        out.lines = list(region.lines)
    return out


def chunk_info(meta: Mapping[str, Any], text: str | None) -> ChunkInfo:
    """Where a chunk is and what it is, from its unit metadata (parsed by :meth:`colbert.units.ChunkInfo.from_metadata`,
    the one reader of what :mod:`service.collections.texts` writes)."""
    info = UnitChunkInfo.from_metadata(meta)
    return ChunkInfo(
        path=info.path,
        language=info.language,
        chunk_kind=info.chunk_kind,
        name=info.name,
        lines=list(info.lines or ()),
        char_span=list(info.char_span or ()),
        part=info.part,
        text=text or "",
    )


def _rounded(maps: Any) -> list[list[list[float]]]:
    """(Lq, rows, cols) float32 -> nested lists with 4 decimals (keeps JSON small; cosines in [-1, 1])."""
    out: list[list[list[float]]] = maps.round(4).astype(float).tolist()
    return out
