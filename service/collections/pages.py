"""One stored page over HTTP: its image (full size or a thumbnail, with an ETag) and its similarity map for a query.

The search page (``/ui/``) shows images by URL instead of base64 inside search answers, and asks for a page's
similarity map when a person opens it (also for the previous / next page of the document, which need not be hits).

- ``page_image`` returns the page at the size the model embedded it (:mod:`.page_images`: the stored image as
  stored, WebP or an older index's PNG, or made on demand from the kept original PDF or image, as PNG) or a
  thumbnail: the
  same image scaled down to at most ``Settings.thumbnail_max_side`` pixels on its longer side, as JPEG (quality
  85; pages are RGB). The ETag is a hash naming the pixels (the stored bytes, or the kept PDF's hash with the page
  and its size) plus the variant, so a replaced document gets new tags, and a 304 costs no render.
- ``page_highlights``: the boxes of the page's words matching a query (:mod:`.highlight`, as search's
  ``highlight``), so a page reached by previous / next shows them too.
- ``page_citations``: the page's regions for the query (:mod:`.regions`, as search's ``regions`` in mode
  ``hybrid``: the lines holding query words, then the areas of the map), computed from the map just made.
- ``page_similarity`` embeds the query (``retrieval.query``) and returns the per query token map over the
  page's merged patch grid, computed exactly as search's ``include_similarity_map`` does (see
  ``service.collections.search``).
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from PIL import Image

from colbert.hybrid import SearchMode
from colbert.store import Hit
from colbert.text import query_terms
from service.collections import page_images
from service.collections.converters.base import PageLimits
from service.collections.highlight import Box, highlight
from service.collections.regions import Region, page_regions
from service.errors import NotFoundError, UnprocessableError

if TYPE_CHECKING:
    from service.collections.manager import Collections
    from service.collections.search import SimilarityGrid

__all__ = [
    "ImageSize",
    "PageImage",
    "page_citations",
    "page_highlights",
    "page_image",
    "page_similarity",
    "parse_size",
    "thumbnail",
]

THUMBNAIL_QUALITY = 85


class ImageSize(StrEnum):
    FULL = "full"
    THUMBNAIL = "thumbnail"


@dataclass(frozen=True, slots=True)
class PageImage:
    data: bytes
    media_type: str
    etag: str  # quoted strong validator, e.g. '"3f2a...-full"'


def parse_size(value: str) -> ImageSize:
    """``full`` or ``thumbnail`` (422 naming both otherwise)."""
    try:
        return ImageSize(value)
    except ValueError:
        raise UnprocessableError(
            f"size must be 'full' or 'thumbnail', got {value!r}", code="invalid_image_size"
        ) from None


def thumbnail(data: bytes, max_side: int) -> bytes:
    """``data`` (an image) scaled down (never up) to at most ``max_side`` pixels on its longer side, as JPEG."""
    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
    rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
    return out.getvalue()


async def _picture(collections: Collections, name: str, document_id: str, page: int) -> page_images.PagePicture:
    store = await collections.store(name)  # 404 collection_not_found
    info = await asyncio.to_thread(store.get_document, document_id)
    if info is None:
        raise NotFoundError(f"no document {document_id!r} in collection {name!r}", code="document_not_found")
    picture = await asyncio.to_thread(page_images.locate, store, document_id, page)
    if picture is None:
        raise NotFoundError(
            f"document {document_id!r} has no page {page} (it has {info.num_units} pages; page numbers are those "
            "of the search hits: 1-based PDF page numbers, 1 for an image)",
            code="page_not_found",
        )
    return picture


async def _load(collections: Collections, name: str, picture: page_images.PagePicture) -> bytes:
    store = await collections.store(name)
    limits = PageLimits.from_limits(collections.runtime.limits, collections.runtime.render_pool)
    return await asyncio.to_thread(page_images.load, store, picture, limits)


async def page_image(
    collections: Collections, name: str, document_id: str, page: int, size: ImageSize, *, if_none_match: str | None
) -> PageImage | str:
    """The page's image, or just its ETag (a ``str``) when ``if_none_match`` already names it (-> 304)."""
    picture = await _picture(collections, name, document_id, page)
    variant = "full" if size is ImageSize.FULL else f"t{collections.runtime.settings.thumbnail_max_side}"
    etag = f'"{picture.tag}-{variant}"'
    if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")}:
        return etag
    data = await _load(collections, name, picture)
    if size is ImageSize.FULL:
        return PageImage(data, page_images.media_type_of(data), etag)
    small = await asyncio.to_thread(thumbnail, data, collections.runtime.settings.thumbnail_max_side)
    return PageImage(small, "image/jpeg", etag)


async def page_similarity(
    collections: Collections, name: str, document_id: str, page: int, query: str
) -> tuple[SimilarityGrid, int]:
    """The query's per token similarity over the page's patch grid, and the tokens the model ran over."""
    picture = await _picture(collections, name, document_id, page)  # 404 before any model work
    store = await collections.store(name)
    # only a pooled collection embeds the page image again; otherwise the map comes from the stored vectors
    image = await _load(collections, name, picture) if store.config.pool_factor > 1 else None
    _indexer, searcher = collections.services()
    query_mv, tokens_used, token_strings = await searcher.embed_query(query)
    hit = Hit(doc_id=document_id, unit=page, score=0.0, metadata={})
    grid, used = await searcher.similarity(store, hit, query_mv, image, token_strings)
    if grid is None:
        raise NotFoundError(
            f"page {page} of document {document_id!r} has no image patch grid to map (indexed without one)",
            code="similarity_map_unavailable",
        )
    return grid, tokens_used + used


async def page_highlights(collections: Collections, name: str, document_id: str, page: int, query: str) -> list[Box]:
    """Boxes (pixels of the page image as the model saw it) of the page's words sharing a token with ``query``;
    empty when the page has no text layer or nothing matches."""
    store = await collections.store(name)
    record = await asyncio.to_thread(store.get_unit, document_id, page)
    return [] if record is None else highlight(tuple(query_terms(query)), record.metadata)


async def page_citations(
    collections: Collections, name: str, document_id: str, page: int, query: str, grid: SimilarityGrid
) -> list[Region]:
    """The page's regions for ``query`` (as search's ``regions`` in mode hybrid) from its similarity ``grid``."""
    store = await collections.store(name)
    record = await asyncio.to_thread(store.get_unit, document_id, page)
    metadata = {} if record is None else record.metadata
    return page_regions(query, metadata, grid.maps.max(axis=0), SearchMode.HYBRID)
