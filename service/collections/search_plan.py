"""A search request, checked once before any work: the mode for the query (:func:`resolve_mode`), the store's
options (:class:`colbert.search.SearchOptions`) with the settings' defaults (:meth:`SearchLimits.plan`), and the
warnings known before it runs — options the mode does not use (:func:`not_applicable`).
:mod:`service.collections.search` runs the plan (and adds the warnings of what found nothing)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from colbert.hybrid import DEFAULT_RRF_K, Fusion, SearchMode
from colbert.quantize import RESIDUAL_CODES, needs_codebook
from colbert.search import SearchOptions as StoreSearchOptions
from colbert.search import parse_mode
from colbert.store import StoreLimits
from service.collections.converters.base import PageLimits
from service.collections.regions import check_regions
from service.errors import UnprocessableError

if TYPE_CHECKING:
    from colbert.store import CollectionConfig
    from service.collections.search_schemas import SearchRequest
    from service.engine.render_pool import RenderPool
    from service.limits import InputLimits
    from service.settings import Settings

__all__ = ["SearchLimits", "SearchPlan", "SearchQuery", "first_stage", "not_applicable", "resolve_mode"]


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """Exactly one of: a text, an image (bytes), or a stored unit ``(document id, unit)`` ("more like this")."""

    text: str | None = None
    image: bytes | None = None
    like: tuple[str, int] | None = None


def resolve_mode(query: SearchQuery, mode: str | None, default: str = "hybrid") -> SearchMode:
    """The mode to run: as asked, or by default ``default`` for a text query and ``visual`` for an image or a
    stored page; a mode that needs words with a query that has none is a 422."""
    given = sum(x is not None for x in (query.text, query.image, query.like))
    if given != 1:
        raise UnprocessableError(
            "send exactly one of query (text), query_image (base64 / data URI) or like ({document_id, page}); "
            f"got {given}",
            code="invalid_query",
        )
    if query.text is not None and not query.text.strip():
        raise UnprocessableError("query is empty or only whitespace: send some words", code="empty_query")
    if mode is None:
        return parse_mode(default) if query.text is not None else SearchMode.VISUAL
    chosen = parse_mode(mode)
    if query.image is not None and chosen is not SearchMode.VISUAL:
        raise UnprocessableError(
            f"an image query has no words, so mode {chosen.value!r} cannot run: use mode 'visual'",
            code="invalid_mode",
        )
    return chosen


def not_applicable(request: SearchRequest, mode: SearchMode) -> list[str]:
    """Warnings for the options of ``request`` that ``mode`` does not use (the search runs without them)."""
    out = []
    if mode is SearchMode.TEXT and request.include_similarity_map:
        out.append("include_similarity_map does not apply to mode 'text' (BM25 has no query vectors): left out")
    if mode is SearchMode.TEXT and request.exhaustive:
        out.append("exhaustive does not apply to mode 'text' (BM25 scores every unit with a query word)")
    if request.first_stage is not None and (mode is SearchMode.TEXT or request.exhaustive):
        text = mode is SearchMode.TEXT
        why = "mode 'text' (BM25 has no first stage)" if text else "exhaustive (every unit is scored)"
        out.append(f"first_stage does not apply with {why}: ignored")
    if mode is not SearchMode.HYBRID:
        given = [name for name in ("fusion", "text_weight") if getattr(request, name) is not None]
        if given:
            out.append(f"{' and '.join(given)} apply to mode 'hybrid' only, not {mode.value!r}: ignored")
    return out


def first_stage(asked: str | None, config: CollectionConfig, cells: int | None = None) -> str | None:
    """The first stage to ask the store for: as ``asked`` (None: the backend's default, ``JEV4_FIRST_STAGE`` in the
    embedded backend's options, where ``ivf`` serves only the collections that have centroid lists and
    ``pooled_ivf`` those that have ``cells``). Asking ``ivf`` of a collection whose codec has none, or
    ``pooled_ivf`` of one without cells (``Catalog.cells``), is a 422 here, before the query is embedded."""
    if asked == "pooled_ivf" and cells is None:
        raise UnprocessableError(
            "first_stage 'pooled_ivf' needs the collection's cells, which it has none of yet (they are trained "
            "by themselves once it holds JEV4_AUTO_CELLS_UNITS units): train them now "
            "(`python -m service collections train-cells NAME` or POST /v1/collections/{name}/cells; embedded "
            "backend only), or use first_stage 'pooled' (the same sketch score, over every page)",
            code="first_stage_unavailable",
        )
    if asked == "ivf" and not needs_codebook(config.codec):
        residual = ", ".join(c.value for c in RESIDUAL_CODES)
        raise UnprocessableError(
            f"first_stage 'ivf' needs the centroid lists of a residual codec ({residual}); this collection "
            f"stores {config.codec}: use first_stage 'dense' or 'pooled', or recode it "
            "(`python -m service collections vacuum NAME --recode residual2`)",
            code="first_stage_unavailable",
        )
    return asked


_CODE_POOL = 4  # a code search reads 4 x top_k hits for the definition rules to choose from


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """A search request validated once (:meth:`SearchLimits.plan`): the store's options, passed unchanged to
    ``Store.search``, and what the service adds to each hit; ``warnings`` name the options that do not apply to
    the mode (they are not errors: the search runs without them)."""

    store: StoreSearchOptions
    include_image: bool = False
    include_similarity_map: bool = False
    highlight: bool = False
    include_text: bool = False  # as asked (a chunk collection's store options read the text for ``chunk``)
    warnings: tuple[str, ...] = ()
    top_k: int = 10  # hits to answer (the store's ``k`` is larger when ``definitions`` reranks its hits)
    definitions: bool = False  # chunk collections: colbert.definitions.rank_definitions over the store's hits
    max_per_span: int = 0  # its cap on chunks of one definition (0: none)
    regions: bool = False  # each hit's regions (service.collections.regions)


@dataclass(frozen=True, slots=True)
class SearchLimits:
    """Caps and defaults of search (from :class:`~service.settings.Settings`)."""

    max_query_tokens: int = 32768
    image_max_pixels: int | None = None
    max_decoded_pixels: int = 40_000_000
    default_mode: str = "hybrid"
    default_fusion: str = "weighted"
    rrf_k: int = DEFAULT_RRF_K
    text_weight: float = 0.5
    max_per_span: int = 2  # chunks of one definition in a code search's top k (0: no cap)
    store: StoreLimits = field(default_factory=StoreLimits)
    render: PageLimits = field(default_factory=PageLimits)  # a kept PDF's page rendered again (page_images)

    def plan(
        self, query: SearchQuery, config: CollectionConfig, request: SearchRequest, cells: int | None = None
    ) -> SearchPlan:
        """The request's options with the settings' defaults where it gives none, checked once (the mode against
        the query: :func:`resolve_mode`; the rest by :class:`colbert.search.SearchOptions`, a 422 naming the
        field; ``cells``: the collection's ``pooled_ivf`` cells, None: none).
        A chunk collection's hits carry their unit's text and metadata (the ``chunk`` object), and the store
        is asked for more than ``top_k`` hits (:data:`_CODE_POOL` times) so that the definition rules
        (:mod:`colbert.definitions`) have hits to promote and to fill the places of capped ones."""
        mode = resolve_mode(query, request.mode, self.default_mode)
        chunks = config.unit_kind == "chunk"
        fusion = Fusion(
            method=request.fusion or self.default_fusion,
            k=self.rrf_k,
            text_weight=self.text_weight if request.text_weight is None else request.text_weight,
        )
        top_k = request.top_k
        k = max(top_k, min(self.store.max_k, _CODE_POOL * top_k)) if chunks else top_k
        options = StoreSearchOptions.of(
            filter=request.filter,
            k=k,
            candidates=None if request.candidates is None else max(request.candidates, k),  # None: the store's default
            exhaustive=request.exhaustive,
            first_stage=first_stage(
                None if mode is SearchMode.TEXT or request.exhaustive else request.first_stage,  # else: a warning
                config,
                cells,
            ),
            mode=mode,
            fusion=fusion,
            include_text=request.include_text or chunks,
            include_unit_metadata=request.highlight or chunks or request.regions,
            limits=self.store,
        )
        warnings = tuple(not_applicable(request, mode))
        if request.regions and (pooled := check_regions(config, mode)):  # 422 where regions cannot be answered
            warnings += (pooled,)
        similarity = request.include_similarity_map and mode is not SearchMode.TEXT
        return SearchPlan(
            options,
            request.include_image,
            similarity,
            request.highlight,
            request.include_text,
            warnings,
            top_k=top_k,
            definitions=chunks,
            max_per_span=self.max_per_span,
            regions=request.regions,
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, limits: InputLimits, render_pool: RenderPool | None = None
    ) -> SearchLimits:
        return cls(
            max_query_tokens=limits.max_text_tokens,
            image_max_pixels=limits.image_max_pixels,
            max_decoded_pixels=limits.max_decoded_pixels,
            default_mode=settings.search_mode,
            default_fusion=settings.search_fusion,
            rrf_k=settings.search_rrf_k,
            text_weight=settings.search_text_weight,
            max_per_span=settings.search_max_per_span,
            render=PageLimits.from_limits(limits, render_pool),
        )
