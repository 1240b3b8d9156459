"""Search a collection with a text query: embed (retrieval.query) -> ``Store.search`` -> ranked pages,
optionally with each page's image and its similarity map.

Scores are the store's: exact MaxSim of the query multi-vector against each candidate page's stored
multi-vector (after the collection's codec and pooling), candidates from the dense first stage (the query's
single vector truncated to the collection's size) or every page with ``exhaustive``.

Similarity map (our choice: per query token, not a max-over-tokens heat map, so a client can show which
words matched where; the max is one ``np.max(axis=0)`` away): for a hit, ``maps[t]`` is the
``(rows, cols)`` grid of cosines between query token ``t`` and the page's image-patch vectors, i.e.
``similarity_map(q, page)[:, image_span]`` reshaped to the merged patch grid saved at indexing time.

- Collections without pooling: computed from the stored vectors (what the score used; after int8/binary
  codecs that is the decoded approximation).
- Pooled collections (``pool_factor > 1``) no longer hold one vector per patch: the stored page image is
  embedded again (one forward pass per hit) and the map comes from those unpooled vectors.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from colbert.scoring import similarity_map
from model.errors import InputTooLongError
from model.images import load_image
from service.collections.vectors import PASSAGE, QUERY, EmbeddingModel
from service.limits import naming

if TYPE_CHECKING:
    from colbert.store import Hit, Store
    from model.processor import PreparedInput
    from service.settings import Settings

__all__ = ["PageMatch", "SearchLimits", "SearchOptions", "SearchOutcome", "Searcher", "SimilarityGrid"]


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
    hit: Hit
    image: bytes | None = None  # PNG
    similarity: SimilarityGrid | None = None


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    matches: list[PageMatch]
    tokens: int  # tokens the model ran over (the query; plus re-embedded pages for pooled similarity maps)


@dataclass(frozen=True, slots=True)
class SearchOptions:
    top_k: int = 10
    filter: Mapping[str, Any] | None = None
    candidates: int | None = None
    exhaustive: bool = False
    include_image: bool = False
    include_similarity_map: bool = False


@dataclass(frozen=True, slots=True)
class SearchLimits:
    """Caps of search (from :class:`~service.settings.Settings`)."""

    max_query_tokens: int = 32768
    image_max_pixels: int | None = None
    max_decoded_pixels: int = 40_000_000
    default_candidates: int = 200

    @classmethod
    def from_settings(cls, settings: Settings) -> SearchLimits:
        return cls(
            max_query_tokens=settings.max_text_tokens,
            image_max_pixels=settings.image_max_pixels,
            max_decoded_pixels=settings.max_decoded_pixels,
        )


class Searcher:
    """Query embedding + store search + page extras (see the module doc). One per app (or CLI run)."""

    def __init__(self, model: EmbeddingModel, limits: SearchLimits | None = None) -> None:
        self.model = model
        self.processor = model.processor
        self.limits = limits or SearchLimits()

    async def search(self, store: Store, query: str, options: SearchOptions) -> SearchOutcome:
        prepared = await self.model.start(functools.partial(self._prepare_query, query))
        (out,) = await self.model.embed([prepared])
        assert out.multivector is not None
        dense = self.model.dense_for(out.dense[None, :], store.config.dense_dim)[0]  # (dense_dim,)
        candidates = max(options.candidates or self.limits.default_candidates, options.top_k)
        hits = await asyncio.to_thread(
            functools.partial(
                store.search,
                out.multivector,
                dense,
                options.top_k,
                filter=options.filter,
                candidates=candidates,
                exhaustive=options.exhaustive,
            )
        )
        tokens = prepared.num_tokens
        token_strings = self._token_strings(prepared) if options.include_similarity_map else []
        matches = []
        for hit in hits:
            png = None
            if options.include_image or (options.include_similarity_map and store.config.pool_factor > 1):
                png = await asyncio.to_thread(store.get_image, hit.doc_id, hit.unit)
            grid = None
            if options.include_similarity_map:
                grid, used = await self._similarity(store, hit, out.multivector, png, token_strings)
                tokens += used
            matches.append(PageMatch(hit, png if options.include_image else None, grid))
        return SearchOutcome(matches, tokens)

    def _token_strings(self, prepared: PreparedInput) -> list[str]:
        decode = self.processor.tokenizer.decode
        return [decode([int(i)]) for i in prepared.input_ids.tolist()]

    async def _similarity(
        self, store: Store, hit: Hit, query: np.ndarray, png: bytes | None, tokens: list[str]
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
        if png is None:
            return None, 0
        prepared = await self.model.start(functools.partial(self._prepare_page, png))
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
        self, store: Store, hit: Hit, query: np.ndarray, png: bytes | None, tokens: list[str]
    ) -> tuple[SimilarityGrid | None, int]:
        """One page's similarity grid for a query multi-vector (as search's ``include_similarity_map``)."""
        return await self._similarity(store, hit, query, png, tokens)

    def _prepare_query(self, query: str) -> PreparedInput:
        with naming((InputTooLongError, "max_text_tokens")):
            return self.processor.prepare_text(query, QUERY, max_length=self.limits.max_query_tokens, truncate=False)

    def _prepare_page(self, png: bytes) -> PreparedInput:
        image = load_image(png, max_decoded_pixels=self.limits.max_decoded_pixels)
        return self.processor.prepare_image(image, PASSAGE, max_pixels=self.limits.image_max_pixels)


def _grid(query: np.ndarray, patches: np.ndarray, rows: int, cols: int, tokens: list[str]) -> SimilarityGrid:
    if patches.shape[0] != rows * cols:
        raise ValueError(f"page holds {patches.shape[0]} patch vectors, expected rows*cols = {rows}*{cols}")
    sims = np.asarray(similarity_map(query, patches), dtype=np.float32)  # (Lq, rows*cols)
    return SimilarityGrid(tokens, sims.reshape(sims.shape[0], rows, cols))  # (Lq, rows, cols)
