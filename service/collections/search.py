"""Search a collection: a text query, an image, or a stored page ("more like this") -> ``Store.search`` in
one of the modes of :mod:`colbert.hybrid` (``visual``, ``text``, ``hybrid``) -> ranked pages, optionally with each
page's image, its similarity map, its text and the boxes of the query's words on it (:mod:`.highlight`).

Queries: a text is embedded as retrieval.query (not at all in ``text`` mode, which is BM25 only); an image
(a screenshot, a figure) is embedded as an image and searched in ``visual`` mode; a stored page is its own stored
vectors (no model call) and its text for BM25. Default mode: ``hybrid`` for text, ``visual`` otherwise.

Scores are the store's: exact MaxSim of the query multi-vector against each candidate page's stored
multi-vector (after the collection's codec and pooling), candidates from the dense first stage (the query's
single vector truncated to the collection's size) or every page with ``exhaustive``.

Similarity map (our choice: per query token, not a max-over-tokens heat map, so a client can show which
words matched where; the max is one ``np.max(axis=0)`` away): for a hit, ``maps[t]`` is the
``(rows, cols)`` grid of cosines between query token ``t`` and the page's image-patch vectors, i.e.
``similarity_map(q, page)[:, image_span]`` reshaped to the merged patch grid saved at indexing time.

- Collections without pooling: computed from the stored vectors (what the score used; after int8/binary
  codecs that is the decoded approximation).
- Pooled collections (``pool_factor > 1``) no longer hold one vector per patch: the page image
  (:mod:`.page_images`: a kept PDF's page rendered again exactly, else the stored WebP, whose lossy pixels move
  the map slightly) is embedded again (one forward pass per hit) and the map comes from those unpooled vectors.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from colbert.definitions import rank_definitions
from colbert.hybrid import SearchMode
from colbert.scoring import similarity_map
from colbert.search import Query as StoreQuery
from model.errors import ImageTooLargeError, InputTooLongError
from model.images import load_image
from model.types import PromptType
from service.collections import page_images
from service.collections.embedder import PASSAGE, QUERY, EmbeddingModel
from service.collections.highlight import Box, highlight
from service.collections.regions import Region, hit_regions
from service.collections.search_plan import SearchLimits, SearchPlan, SearchQuery
from service.collections.tasks import task_spec
from service.errors import NotFoundError, UnprocessableError, naming

if TYPE_CHECKING:
    from colbert.search import SearchOptions
    from colbert.store import Hit, Store
    from model.processor import PreparedInput
    from model.types import TaskSpec

__all__ = ["PageMatch", "SearchOutcome", "Searcher", "SimilarityGrid"]


@dataclass(frozen=True, slots=True)
class SimilarityGrid:
    """Per query token similarity over a page's merged patch grid."""

    tokens: list[str]
    maps: np.ndarray  # (Lq, rows, cols) float32

    @property
    def rows(self) -> int:
        return int(self.maps.shape[1])

    @property
    def cols(self) -> int:
        return int(self.maps.shape[2])


@dataclass(frozen=True, slots=True)
class PageMatch:
    """A hit (its unit's text and metadata in it when the plan asked) and the service's extras."""

    hit: Hit
    image: bytes | None = None  # PNG
    similarity: SimilarityGrid | None = None
    highlights: list[Box] | None = None  # boxes of the query's words on the page image (highlight)
    include_text: bool = False  # whether the answer shows ``hit.text``
    regions: list[Region] | None = None  # the hit's citations (service.collections.regions)


@dataclass(frozen=True, slots=True)
class _QueryVectors:
    multivector: np.ndarray | None  # (Lq, 128) float32; None in text mode
    dense: np.ndarray | None  # (dense_dim,) float32
    tokens: int  # tokens the model ran over
    prepared: PreparedInput | None  # for the similarity map's token strings


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    matches: list[PageMatch]
    tokens: int  # tokens the model ran over (the query; plus re-embedded pages for pooled similarity maps)
    warnings: tuple[str, ...] = ()  # what the caller asked for that did not apply (SearchPlan.warnings, …)


class Searcher:
    """Query embedding + store search + page extras (see the module doc). One per app (or CLI run)."""

    def __init__(self, model: EmbeddingModel, limits: SearchLimits | None = None) -> None:
        self.model = model
        self.processor = model.processor
        self.limits = limits or SearchLimits()

    async def search(self, store: Store, query: str | SearchQuery, plan: SearchPlan) -> SearchOutcome:
        """Embed the query (per the plan's mode), run ``store.search`` with the plan's store options, and add the
        extras each hit asks for. The unit's text and metadata come with the hits (one read for all of them);
        only images and similarity maps read per hit."""
        q = SearchQuery(text=query) if isinstance(query, str) else query
        options = plan.store
        mode = options.mode
        query_text = q.text
        if q.like is not None:
            vectors, query_text = await self._like(store, q.like, mode)
        elif mode is SearchMode.TEXT:
            vectors = _QueryVectors(None, None, 0, None)
        else:
            vectors = await self._embed_query(store, q)
        store_query = StoreQuery(vectors.multivector, vectors.dense, query_text)
        hits = await asyncio.to_thread(store.search, store_query, options)
        if plan.definitions:
            hits = rank_definitions(hits, query_text if q.text is not None else None, plan.top_k, plan.max_per_span)
        tokens = vectors.tokens
        maps_for_regions = plan.regions and store.config.unit_kind == "page"  # chunks: token scores per line
        similarity = (plan.include_similarity_map or maps_for_regions) and vectors.multivector is not None
        token_strings = self._token_strings(vectors.prepared) if similarity and vectors.prepared is not None else []
        matches = []
        for hit in hits:
            image = None
            if plan.include_image or (similarity and store.config.pool_factor > 1):
                image = await asyncio.to_thread(self._page_image, store, hit)
            grid = None
            if similarity and vectors.multivector is not None:
                grid, used = await self._similarity(store, hit, vectors.multivector, image, token_strings)
                tokens += used
            boxes = highlight(store_query.terms, hit.unit_metadata or {}) if plan.highlight else None
            cited = (
                await self._regions(store, hit, query_text, vectors.multivector, grid, mode) if plan.regions else None
            )
            shown = grid if plan.include_similarity_map else None
            png = await asyncio.to_thread(page_images.as_png, image) if plan.include_image and image else None
            matches.append(PageMatch(hit, png, shown, boxes, plan.include_text, cited))
        found = await asyncio.to_thread(_found_nothing, store, options, hits, plan.top_k)
        return SearchOutcome(matches, tokens, (*plan.warnings, *found))

    async def _regions(
        self,
        store: Store,
        hit: Hit,
        query: str | None,
        vectors: np.ndarray | None,
        grid: SimilarityGrid | None,
        mode: SearchMode,
    ) -> list[Region]:
        maps = None if grid is None else grid.maps
        tokenizer = self.processor.tokenizer
        return await asyncio.to_thread(hit_regions, store, hit, query, vectors, maps, mode, tokenizer)

    def _page_image(self, store: Store, hit: Hit) -> bytes | None:
        """The hit's page image as the model saw it (stored, or rendered from the kept PDF; :mod:`.page_images`)."""
        picture = page_images.locate(store, hit.doc_id, hit.unit)
        return None if picture is None else page_images.load(store, picture, self.limits.render)

    async def _embed_query(self, store: Store, q: SearchQuery) -> _QueryVectors:
        """The query's multi-vector and (truncated) dense vector: a text or an image, with the collection's task
        (``retrieval.query``, or ``code.query`` in a code collection)."""
        spec = task_spec(store.config, PromptType.QUERY)
        if q.image is not None:
            image_bytes = q.image

            def prepare() -> PreparedInput:
                with naming((ImageTooLargeError, "max_decoded_pixels")):
                    image = load_image(image_bytes, max_decoded_pixels=self.limits.max_decoded_pixels)
                return self.processor.prepare_image(image, spec, max_pixels=self.limits.image_max_pixels)

        else:
            text = q.text or ""

            def prepare() -> PreparedInput:
                return self._prepare_query(text, spec)

        prepared = await self.model.start(prepare)
        (out,) = await self.model.embed([prepared])
        assert out.multivector is not None
        dense = self.model.dense_for(out.dense[None, :], store.config.dense_dim)
        return _QueryVectors(out.multivector, dense[0], prepared.num_tokens, prepared)  # dense: (dense_dim,)

    async def _like(self, store: Store, like: tuple[str, int], mode: SearchMode) -> tuple[_QueryVectors, str | None]:
        """A stored unit as the query ("more like this"): its own stored vectors, and its text for BM25."""
        record = await asyncio.to_thread(store.get_unit, like[0], like[1])
        if record is None:
            raise NotFoundError(f"no page {like[1]} in document {like[0]!r} to search like", code="document_not_found")
        if mode is not SearchMode.VISUAL and not (record.text or "").strip():
            raise UnprocessableError(
                f"page {like[1]} of {like[0]!r} has no text layer, so mode {mode.value!r} has no words to "
                "search: use mode 'visual'",
                code="invalid_mode",
            )
        return _QueryVectors(record.multivector, record.dense, 0, None), record.text

    def _token_strings(self, prepared: PreparedInput) -> list[str]:
        decode = self.processor.tokenizer.decode
        return [decode([int(i)]) for i in prepared.input_ids.tolist()]

    async def _similarity(
        self, store: Store, hit: Hit, query: np.ndarray, image: bytes | None, tokens: list[str]
    ) -> tuple[SimilarityGrid | None, int]:
        """The hit's grid and the tokens spent on it (0 unless the page had to be embedded again)."""
        if store.config.pool_factor == 1:
            record = await asyncio.to_thread(store.get_unit, hit.doc_id, hit.unit)
            if record is None or "image_span" not in record.metadata or "image_grid" not in record.metadata:
                return None, 0
            start, stop = record.metadata["image_span"]
            rows, cols = record.metadata["image_grid"]
            patches = record.multivector[start:stop]  # (rows*cols, d)
            return _grid(query, patches, rows, cols, tokens), 0
        if image is None:
            return None, 0
        prepared = await self.model.start(functools.partial(self._prepare_page, image))
        (out,) = await self.model.embed([prepared])
        if out.multivector is None or out.image_span is None or out.image_grid is None:
            raise RuntimeError("the encoder returned no image multi-vector for a page image")
        start, stop = out.image_span
        rows, cols = out.image_grid
        return _grid(query, out.multivector[start:stop], rows, cols, tokens), prepared.num_tokens

    async def embed_query(self, query: str) -> tuple[np.ndarray, int, list[str]]:
        """The query's multi-vector ``(Lq, d)``, its token count and its token strings (for similarity maps)."""
        prepared = await self.model.start(functools.partial(self._prepare_query, query))
        (out,) = await self.model.embed([prepared])
        assert out.multivector is not None
        return out.multivector, prepared.num_tokens, self._token_strings(prepared)

    async def similarity(
        self, store: Store, hit: Hit, query: np.ndarray, image: bytes | None, tokens: list[str]
    ) -> tuple[SimilarityGrid | None, int]:
        """One page's similarity grid for a query multi-vector (as search's ``include_similarity_map``)."""
        return await self._similarity(store, hit, query, image, tokens)

    def _prepare_query(self, query: str, spec: TaskSpec = QUERY) -> PreparedInput:
        with naming((InputTooLongError, "max_text_tokens")):
            return self.processor.prepare_text(query, spec, max_length=self.limits.max_query_tokens, truncate=False)

    def _prepare_page(self, data: bytes) -> PreparedInput:
        image = load_image(data, max_decoded_pixels=self.limits.max_decoded_pixels)
        return self.processor.prepare_image(image, PASSAGE, max_pixels=self.limits.image_max_pixels)


def _found_nothing(store: Store, options: SearchOptions, hits: list[Hit], k: int) -> list[str]:
    """Warnings for what answered nothing: filter keys no document has (looked up only when fewer than k hits
    came back: a typo in a key empties or shrinks the result), and the text signal of mode text or hybrid when
    no hit came from it."""
    out = []
    if options.filter and len(hits) < k:
        keys = sorted({c.key for c in options.filter.conditions})
        unknown = [key for key in keys if key not in store.metadata_keys(keys)]
        if unknown:
            names = ", ".join(repr(k) for k in unknown)
            out.append(
                f"filter key {names} is in no document's metadata of this collection: check its spelling "
                "(documents' metadata keys are listed by GET /v1/collections/{name}/documents)"
            )
    text_hits = sum("text" in hit.signals for hit in hits)
    if options.mode is SearchMode.TEXT and not hits:
        out.append(
            "text (BM25) found no unit whose text holds a word of the query (units without text, such as images "
            "or scanned pages, are never returned in mode 'text': try mode 'visual' or 'hybrid')"
        )
    elif options.mode is SearchMode.HYBRID and hits and not text_hits:
        out.append(
            "text (BM25) found no unit holding a word of the query among these hits: they are ranked by MaxSim alone"
        )
    return out


def _grid(query: np.ndarray, patches: np.ndarray, rows: int, cols: int, tokens: list[str]) -> SimilarityGrid:
    if patches.shape[0] != rows * cols:
        raise ValueError(f"page holds {patches.shape[0]} patch vectors, expected rows*cols = {rows}*{cols}")
    sims = np.asarray(similarity_map(query, patches), dtype=np.float32)  # (Lq, rows*cols)
    return SimilarityGrid(tokens, sims.reshape(sims.shape[0], rows, cols))  # (Lq, rows, cols)
