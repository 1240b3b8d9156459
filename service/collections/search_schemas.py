"""Request and response bodies (msgspec Structs) of the search route: ``POST /v1/collections/{name}/search``
(:class:`SearchRequest` -> :class:`SearchResponse`); the other collection routes' bodies are in
:mod:`service.collections.schemas`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from service.collections.schemas import MAX_JSON_INT
from service.embeddings.schemas import Usage

__all__ = [
    "MAX_CANDIDATES",
    "ChunkInfo",
    "HighlightBox",
    "LikeQuery",
    "RegionObject",
    "SearchHit",
    "SearchRequest",
    "SearchResponse",
    "SignalScore",
    "SimilarityMap",
]


MAX_CANDIDATES = 10000
Candidates = Annotated[
    int,
    Meta(
        ge=1,
        le=MAX_CANDIDATES,
        description="First-stage candidates reranked by MaxSim (default: 200 up to 100,000 units in the collection, "
        "then growing with it: 200 x (units / 100,000)^0.6, ~800 at 1M; the Qdrant backend: 200)",
    ),
]


class LikeQuery(Struct, kw_only=True, forbid_unknown_fields=True):
    """A stored page used as the query ("more like this")."""

    document_id: str
    page: Annotated[int, Meta(ge=0, le=MAX_JSON_INT)]


_TEXT_WEIGHT = "hybrid: BM25's share of the fused score, 0..1 (MaxSim gets the rest; default JEV4_SEARCH_TEXT_WEIGHT)"
_WARNINGS = (
    "What did not apply: a filter key no document has, an option the mode does not use, a signal that found none"
)


_REGIONS = (
    "Add each hit's regions (its citations), best first, at most 5: boxes of the page (fractions) where the "
    "similarity map is high (visual; snapped to the page's words) or the lines holding query words (text); a chunk "
    "hit's best-matching line ranges. Method: docs/regions.md. 422 regions_unavailable in mode visual on a pooled "
    "chunk collection"
)

FirstStageName = Literal["dense", "pooled", "ivf", "pooled_ivf"]  # colbert.hybrid.FIRST_STAGES
_FIRST_STAGE = (
    "Embedded backend: how the candidates are found before the MaxSim rerank: dense (the pages' dense vectors), "
    "pooled (8 centroids per page), ivf (inverted lists: residual* collections only, else 422 "
    "first_stage_unavailable) or pooled_ivf (inverted lists over the pooled centroids, sublinear: collections that "
    "have cells, trained by themselves past JEV4_AUTO_CELLS_UNITS units or by `collections train-cells`, else 422 "
    "first_stage_unavailable); default JEV4_FIRST_STAGE: "
    "pooled_ivf where the collection has cells, else pooled. "
    "The Qdrant backend has dense only"
)


class SearchRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /v1/collections/{name}/search``: exactly one of ``query``, ``query_image``, ``like``."""

    query: (
        Annotated[str, Meta(min_length=1, description="A text query (embedded as retrieval.query; BM25 words)")] | None
    ) = None
    query_image: (
        Annotated[
            str, Meta(min_length=1, description="An image query (base64, data URI or allowed URL), searched visually")
        ]
        | None
    ) = None
    like: Annotated[LikeQuery | None, Meta(description="A stored page as the query (more like this)")] = None
    mode: Annotated[
        Literal["visual", "text", "hybrid"] | None,
        Meta(
            description="visual: first stage + exact MaxSim; text: BM25 over the pages' text; hybrid: both, "
            "fused (default for a text query; visual for an image or a stored page)"
        ),
    ] = None
    fusion: Annotated[
        Literal["rrf", "weighted"] | None,
        Meta(description="hybrid score: weighted (min-max normalised; default, JEV4_SEARCH_FUSION) or rrf"),
    ] = None
    text_weight: Annotated[float, Meta(ge=0, le=1, description=_TEXT_WEIGHT)] | None = None
    top_k: Annotated[int, Meta(ge=1, le=1000)] = 10
    filter: Annotated[
        dict[str, Any] | None,
        Meta(
            description='Conditions on top-level document metadata, ANDed: {"lang": "en", "year": {"$gte": 2020}, '
            '"tag": {"$in": ["a", "b"]}, "draft": {"$ne": true}, "owner": {"$exists": true}}'
        ),
    ] = None
    include_image: Annotated[bool, Meta(description="Add each page's image (base64 PNG)")] = False
    include_similarity_map: Annotated[
        bool, Meta(description="Add each page's per-query-token similarity over its image grid")
    ] = False
    include_text: Annotated[
        bool, Meta(description="Add each hit's text (a page's text layer, a chunk's text; null: none)")
    ] = False
    highlight: Annotated[
        bool, Meta(description="Add the boxes (pixels of the page image) of the page's words matching the query")
    ] = False
    regions: Annotated[bool, Meta(description=_REGIONS)] = False
    exhaustive: Annotated[
        bool, Meta(description="Exact MaxSim over every page instead of dense first stage + MaxSim rerank")
    ] = False
    candidates: Candidates | None = None
    first_stage: Annotated[FirstStageName | None, Meta(description=_FIRST_STAGE)] = None
    model: str | None = None


class SignalScore(Struct, kw_only=True):
    """One signal's view of a hit: its score and 1-based rank among that signal's candidates."""

    score: float
    rank: int


class HighlightBox(Struct, kw_only=True):
    """A word of the page that matches the query, in pixels of the page image (x right, y down)."""

    x0: float
    y0: float
    x1: float
    y1: float
    word: str
    terms: list[str]


class RegionObject(Struct, kw_only=True):
    """Where a hit's evidence is (a citation): a box on the page or a line range of the chunk (docs/regions.md)."""

    bbox: Annotated[
        list[float] | UnsetType,
        Meta(description="Page hits: [x0, y0, x1, y1] as fractions of the page image (x right, y down)"),
    ] = UNSET
    lines: Annotated[
        list[int] | UnsetType, Meta(description="Chunk hits: [first, last] line of the document, 1-based, inclusive")
    ] = UNSET
    score: Annotated[
        float,
        Meta(
            description="visual: the best patch's (page) or line's (chunk) cosine with the query, -1..1; text: the "
            "share of the query's distinct words in the region, 0..1"
        ),
    ]
    text: Annotated[str, Meta(description="The page's text inside the box, or the chunk's lines")]
    source: Annotated[
        Literal["visual", "text"],
        Meta(description="visual: from the query's token vectors (similarity map); text: from the query's words"),
    ]


class SimilarityMap(Struct, kw_only=True):
    """``maps[t][r][c]`` = cosine of query token ``t`` with the page's image patch at row ``r``, column ``c``
    of the merged 28x28-pixel patch grid (the grid of the stored page image, whose size is ``cols*28`` x
    ``rows*28`` pixels). The page's MaxSim score is the sum over tokens of the max over ALL page tokens (the
    image patches and the few template tokens around them)."""

    rows: int
    cols: int
    tokens: list[str]
    maps: list[list[list[float]]]


class ChunkInfo(Struct, kw_only=True):
    """Where a text/code chunk is and what it is (hits of ``chunk`` collections)."""

    path: str
    language: str
    chunk_kind: Annotated[str, Meta(description="function | method | class | … | code | section | paragraph | lines")]
    name: Annotated[str | None, Meta(description='e.g. "Encoder.encode_text", or a Markdown heading')] = None
    lines: Annotated[list[int], Meta(description="[first, last] line, 1-based, inclusive")]
    char_span: Annotated[list[int], Meta(description="[start, end) in characters of the decoded document")]
    part: Annotated[int | None, Meta(description="1, 2, … when a long definition or section was cut")] = None
    text: str


class SearchHit(Struct, kw_only=True):
    document_id: str
    unit: Annotated[
        int,
        Meta(description="The unit's number in its document: a page hit's page number, a chunk hit's 0-based index"),
    ]
    page: Annotated[int | UnsetType, Meta(description="A page hit's page number (as unit); absent on chunk hits")] = (
        UNSET
    )
    score: float
    metadata: dict[str, Any]
    kind: Annotated[str, Meta(description="page or chunk")] = "page"
    chunk: ChunkInfo | UnsetType = UNSET
    image: Annotated[str | UnsetType, Meta(description="base64 PNG of the page as the model saw it")] = UNSET
    similarity_map: SimilarityMap | UnsetType = UNSET
    signals: Annotated[
        dict[str, SignalScore],
        Meta(description="Which signals found the page (text, visual) and its maxsim score, each with its rank"),
    ] = {}
    text: Annotated[str | UnsetType | None, Meta(description="The page's text layer (include_text)")] = UNSET
    highlights: list[HighlightBox] | UnsetType = UNSET
    regions: Annotated[list[RegionObject] | UnsetType, Meta(description="The hit's citations (regions)")] = UNSET


class SearchResponse(Struct, kw_only=True):
    object: str = "list"
    model: str
    collection: str
    usage: Usage
    results: list[SearchHit]
    warnings: Annotated[list[str], Meta(description=_WARNINGS)] = []
