"""Python client of a running jev4-serve server: :class:`Client` (blocking) and :class:`AsyncClient` (asyncio),
over httpx, with the same methods; see ``docs/client.md``.

Layout: :mod:`.core` (config, errors, the upload flow), :mod:`.operations` (each request once, without I/O),
:mod:`.types` (typed results), :mod:`.sync` / :mod:`.aio` (the two drivers, one line per method).
"""

from service.client.aio import AsyncClient
from service.client.core import ClientError, SearchOptions, UploadOptions
from service.client.sync import Client
from service.client.types import (
    CellsTrained,
    ChunkInfo,
    Collection,
    Deleted,
    Document,
    DocumentList,
    Embedding,
    Embeddings,
    HighlightBox,
    Job,
    PageSimilarity,
    Region,
    Reranked,
    RerankResult,
    SearchHit,
    SearchResults,
    SimilarityMap,
    Vacuumed,
)

__all__ = [
    "AsyncClient",
    "CellsTrained",
    "ChunkInfo",
    "Client",
    "ClientError",
    "Collection",
    "Deleted",
    "Document",
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
    "SearchOptions",
    "SearchResults",
    "SimilarityMap",
    "UploadOptions",
    "Vacuumed",
]
