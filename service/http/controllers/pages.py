"""One stored page by URL: ``GET .../pages/{page}/image`` (PNG or JPEG thumbnail, ETag) and
``POST .../pages/{page}/similarity`` (the query's per token map over the page). Same API-key rules as every
``/v1`` route. Logic: ``service.collections.pages``.

Caching: ``Cache-Control: private, no-cache`` + a strong ``ETag``; a client (or the browser's cache, which
``fetch`` goes through) revalidates with ``If-None-Match`` and gets ``304`` without the body. ``no-cache``
rather than a max-age because a document can be replaced under the same id; ``private`` because the route may
need a key.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, Parameter
from msgspec import UNSET, Meta, Struct, UnsetType

from service.collections.manager import Collections
from service.collections.pages import page_citations, page_highlights, page_image, page_similarity, parse_size
from service.collections.responses import region_object
from service.collections.schemas import MAX_JSON_INT
from service.collections.search_schemas import HighlightBox, RegionObject, SimilarityMap
from service.embeddings.schemas import Usage
from service.http.controllers.collections import _provide_collections
from service.http.controllers.common import require_json, until_disconnect

__all__ = ["PageSimilarityRequest", "PageSimilarityResponse", "PagesController"]

CACHE_CONTROL = "private, no-cache"
# bounded so that a number beyond 64 bits is a 422 here, not an overflow in the store
PageNumber = Annotated[
    int, Parameter(le=MAX_JSON_INT, description="The page number of the search hits (1-based PDF page; 1 for an image)")
]


class PageSimilarityRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /v1/collections/{name}/documents/{id}/pages/{page}/similarity``."""

    query: Annotated[str, Meta(min_length=1, description="The text query (embedded as retrieval.query)")]
    highlight: Annotated[
        bool,
        Meta(description="Add the boxes of the page's words matching the query (as search's `highlight`)"),
    ] = False
    regions: Annotated[
        bool,
        Meta(
            description="Add the page's regions for the query (as search's `regions` in mode hybrid: the lines "
            "holding query words, then the map's high areas; docs/regions.md)"
        ),
    ] = False
    model: str | None = None


class PageSimilarityResponse(Struct, kw_only=True):
    object: str = "similarity_map"
    model: str
    collection: str
    document_id: str
    page: int
    usage: Usage
    similarity_map: SimilarityMap
    highlights: list[HighlightBox] | UnsetType = UNSET
    regions: list[RegionObject] | UnsetType = UNSET


class PagesController(Controller):
    path = "/v1/collections/{name:str}/documents/{document_id:str}/pages/{page:int}"
    tags = ("collections",)
    dependencies = {"collections": Provide(_provide_collections, sync_to_thread=False)}  # noqa: RUF012

    @get(
        "/image",
        summary="A stored page's image as the model saw it (WebP or PNG), or a JPEG thumbnail",
        description="`size=full` (default): the page as the model saw it (`cols*28` x `rows*28` px, the grid of "
        "its similarity map): WebP as stored, or PNG when made again from the kept original (a PDF, a PNG/JPEG/WebP "
        "image; or stored by an older version). `size=thumbnail`: at most `JEV4_THUMBNAIL_MAX_SIDE` px on the "
        "longer side, JPEG. `ETag` + `Cache-Control: private, no-cache`; `If-None-Match` answers 304.",
        media_type="image/webp",
    )
    async def image(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        document_id: FromPath[str],
        page: PageNumber,
        collections: NamedDependency[Collections],
        size: Annotated[str, Parameter(description="full | thumbnail")] = "full",
    ) -> Response[bytes]:
        found = await page_image(
            collections,
            name,
            document_id,
            page,
            parse_size(size),
            if_none_match=request.headers.get("if-none-match"),
        )
        if isinstance(found, str):
            return Response(b"", status_code=304, headers={"ETag": found, "Cache-Control": CACHE_CONTROL})
        headers = {"ETag": found.etag, "Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff"}
        return Response(found.data, media_type=found.media_type, headers=headers)

    @post(
        "/similarity",
        status_code=200,
        before_request=require_json,
        summary="The query's similarity map over one stored page (per query token)",
        description="The same map as search's `include_similarity_map`, for any stored page (e.g. the page after "
        "a hit): `maps[t][r][c]` = cosine of query token `t` with the patch at row `r`, column `c`. "
        "`regions: true` adds the page's regions for the query (as search's in mode hybrid).",
    )
    async def similarity(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        document_id: FromPath[str],
        page: PageNumber,
        data: JSONBody[PageSimilarityRequest],
        collections: NamedDependency[Collections],
    ) -> PageSimilarityResponse:
        collections.runtime.check_model(data.model)
        grid, tokens = await until_disconnect(
            request, page_similarity(collections, name, document_id, page, data.query)
        )
        collections.runtime.metrics.tokens.labels(kind="text").inc(tokens)
        maps: list[list[list[float]]] = grid.maps.round(4).astype(float).tolist()
        boxes: list[HighlightBox] | UnsetType = UNSET
        if data.highlight:
            found = await page_highlights(collections, name, document_id, page, data.query)
            boxes = [HighlightBox(x0=b.x0, y0=b.y0, x1=b.x1, y1=b.y1, word=b.word, terms=list(b.terms)) for b in found]
        cited: list[RegionObject] | UnsetType = UNSET
        if data.regions:
            found_regions = await page_citations(collections, name, document_id, page, data.query, grid)
            cited = [region_object(r) for r in found_regions]
        return PageSimilarityResponse(
            model=collections.runtime.model_name,
            collection=name,
            document_id=document_id,
            page=page,
            usage=Usage(total_tokens=tokens, prompt_tokens=tokens),
            similarity_map=SimilarityMap(rows=grid.rows, cols=grid.cols, tokens=grid.tokens, maps=maps),
            highlights=boxes,
            regions=cited,
        )
