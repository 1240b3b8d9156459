"""What a search asks for: the query (:class:`Query`) and how to run it (:class:`SearchOptions`), both backends'
one input shape (``Store.search(query, options)``).

``SearchOptions`` is validated once, when it is built, against the :class:`~colbert.store.StoreLimits` it is
given (the defaults when none): k, candidates, the mode, the filter (parsed into a
:class:`~colbert.filters.MetadataFilter`), the fusion and the first stage. A backend re-checks an options object
only when it was built against other limits than the backend's own (:meth:`SearchOptions.under`). The query's
vectors depend on the collection (their dimensions), so :func:`checked_query` checks them in the backend, one
function for both backends. The query's words are split into terms once (:attr:`Query.terms`): the check of their
number, the embedded backend's BM25 and the service's highlighter all read that one split.

``text_weight`` has one meaning in both fusion methods (:class:`~colbert.hybrid.Fusion`): the share of BM25 in
the fused score, in 0..1, MaxSim gets the rest.

>>> SearchOptions(k=5, mode="text", filter={"lang": "en"}).filter.conditions
(Condition(key='lang', op='$eq', value='en'),)
>>> SearchOptions(k=50, candidates=20)
Traceback (most recent call last):
...
colbert.errors.InvalidQueryError: candidates must be in k..10000 (k=50), got 20

``candidates`` left out (None) is the collection's default, which grows with its size
(:func:`default_candidates`); a backend resolves it with :meth:`SearchOptions.candidates_for`:

>>> [SearchOptions().candidates_for(n) for n in (1_000, 100_000, 1_000_000)]
[200, 200, 796]
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from colbert._validate import query_arrays
from colbert.errors import InvalidQueryError
from colbert.filters import MetadataFilter, parse_filter
from colbert.hybrid import FIRST_STAGES, Fusion, SearchMode
from colbert.store import CollectionConfig, StoreLimits
from colbert.text import query_terms

__all__ = [
    "DEFAULT_CANDIDATES",
    "CheckedQuery",
    "Query",
    "SearchOptions",
    "check_query_text",
    "checked_query",
    "default_candidates",
    "parse_mode",
]

DEFAULT_CANDIDATES = 200  # first-stage candidates of a collection of up to _GROWTH_FROM units
_GROWTH_FROM = 100_000
_GROWTH_EXPONENT = 0.6


def default_candidates(units: int | None) -> int:
    """The first-stage candidates of a search that names none, in a collection of ``units`` live units (None: not
    known, as on the Qdrant backend): :data:`DEFAULT_CANDIDATES` up to 100,000 units, then
    ``200 * (units / 100,000) ** 0.6`` (796 at 1M, 1,207 at 2M).

    Why it grows: a first stage ranks by an approximate score, and the more units a collection holds, the more of
    them outrank a true top-10 unit by that score's error, so a fixed count finds less of the exact top-10 the
    larger the collection (``pooled_ivf``, synthetic pages, recall@10 against exhaustive MaxSim: 200 candidates
    give 1.00 at 100k but 0.94 at 1M). Measured at 100k and 1M, the count that keeps a recall grows about as the
    0.6th power of the size (0.98: 100 → 400; ≥ 0.99: 200 → 800); the rerank's cost grows with it (1M,
    ``pooled_ivf``: 29.7 → 48.7 ms p50 for recall 0.944 → 0.992). The runs: bench/README.md, "Default candidates
    that grow with the collection"."""
    if units is None or units <= _GROWTH_FROM:
        return DEFAULT_CANDIDATES
    grown: float = DEFAULT_CANDIDATES * (units / _GROWTH_FROM) ** _GROWTH_EXPONENT
    return round(grown)


@dataclass(frozen=True)
class Query:
    """A search's query: a multi-vector ``(Lq, multivector_dim)`` and a dense vector ``(dense_dim,)`` (modes
    ``visual`` and ``hybrid``; ``dense`` None scores every unit exactly), and words (modes ``text`` and
    ``hybrid``)."""

    multivector: np.ndarray | None = None
    dense: np.ndarray | None = None
    text: str | None = None

    @functools.cached_property
    def terms(self) -> tuple[str, ...]:
        """The distinct words of ``text`` as BM25 and highlighting match them (:func:`colbert.text.query_terms`;
        empty without text), split once for every reader of this query.

        >>> Query(text="Café revenue, café").terms
        ('cafe', 'revenue')
        """
        return tuple(query_terms(self.text)) if isinstance(self.text, str) else ()


@dataclass(frozen=True)
class CheckedQuery:
    """A :class:`Query` checked against a collection: float32 arrays of its dimensions, the dense one unit-norm, and
    its words' terms (:attr:`Query.terms`)."""

    multivector: np.ndarray | None  # (Lq, multivector_dim) float32; None in mode text
    dense: np.ndarray | None  # (dense_dim,) float32 unit-norm, or None
    text: str | None  # None in mode visual
    terms: tuple[str, ...] = ()  # the distinct words of text; empty in mode visual


@dataclass(frozen=True)
class SearchOptions:
    """How to search (module docstring); every field validated at construction (``InvalidQueryError``,
    ``InvalidFilterError`` for the filter).

    * ``k``: hits to return, 1..``max_k``; ``candidates``: units the first stage passes to the exact rerank
      (hybrid: the BM25 and visual candidates together), k..``max_candidates``, None: the collection's default
      (:meth:`candidates_for`); ``exhaustive``: score every (matching) unit exactly instead.
    * ``mode`` (:class:`~colbert.hybrid.SearchMode`), ``fusion`` (hybrid only; None: weighted, text_weight 0.5).
    * ``first_stage``: ``dense``, ``pooled``, ``ivf`` (embedded backend, residual codecs:
      :mod:`colbert.local.ivf`) or ``pooled_ivf`` (embedded backend, collections with trained cells:
      :mod:`colbert.local.cells`); None: the backend's default; Qdrant has ``dense`` only.
      ``prefetch`` (>= candidates; ``pooled_ivf``: the units whose sketches are scored) and ``query_groups`` (>= 1)
      tune ``pooled`` and ``pooled_ivf``
      (:meth:`colbert.local.LocalStore.search`).
    * ``include_text`` / ``include_unit_metadata``: each hit carries its unit's text / metadata, read with the
      ranking.
    """

    k: int = 10
    filter: MetadataFilter = field(default_factory=MetadataFilter)
    candidates: int | None = None
    exhaustive: bool = False
    mode: SearchMode = SearchMode.VISUAL
    fusion: Fusion = field(default_factory=Fusion)
    first_stage: str | None = None
    prefetch: int | None = None
    query_groups: int | None = None
    include_text: bool = False
    include_unit_metadata: bool = False
    limits: StoreLimits = field(default_factory=StoreLimits, repr=False, compare=False)

    def __post_init__(self) -> None:
        k, candidates, limits = self.k, self.candidates, self.limits
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= limits.max_k:
            raise InvalidQueryError(f"k must be an int in 1..{limits.max_k}, got {k!r}")
        if candidates is not None and (isinstance(candidates, bool) or not isinstance(candidates, int)):
            raise InvalidQueryError(f"candidates must be None or an int, got {candidates!r}")
        if candidates is not None and not k <= candidates <= limits.max_candidates:
            raise InvalidQueryError(f"candidates must be in k..{limits.max_candidates} (k={k}), got {candidates}")
        if not isinstance(self.mode, SearchMode):  # a string from outside the library; checked once
            object.__setattr__(self, "mode", parse_mode(self.mode))
        if not isinstance(self.filter, MetadataFilter):  # a JSON object: parsed here, once
            object.__setattr__(self, "filter", parse_filter(self.filter))
        if self.fusion is None:
            object.__setattr__(self, "fusion", Fusion())
        if not isinstance(self.fusion, Fusion):
            raise InvalidQueryError(f"fusion must be a colbert.hybrid.Fusion, got {type(self.fusion).__name__}")
        for flag in ("exhaustive", "include_text", "include_unit_metadata"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidQueryError(f"{flag} must be a bool, got {getattr(self, flag)!r}")
        self._check_first_stage()

    def _check_first_stage(self) -> None:
        if self.first_stage is not None and self.first_stage not in FIRST_STAGES:
            raise InvalidQueryError(f"first_stage must be one of {FIRST_STAGES}, got {self.first_stage!r}")
        prefetch, groups = self.prefetch, self.query_groups
        least = self.k if self.candidates is None else self.candidates
        if prefetch is not None and (isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < least):
            what = "k" if self.candidates is None else "candidates"
            raise InvalidQueryError(f"prefetch must be None or an int >= {what} ({least}), got {prefetch!r}")
        if groups is not None and (isinstance(groups, bool) or not isinstance(groups, int) or groups < 1):
            raise InvalidQueryError(f"query_groups must be None or an int >= 1, got {groups!r}")

    @classmethod
    def of(cls, filter: Mapping[str, Any] | MetadataFilter | None = None, **fields: Any) -> SearchOptions:
        """Options from plain values (``filter`` as a JSON object, ``mode`` as a string, ``fusion`` None for the
        default), as a caller outside the library holds them; each is parsed once, in ``__post_init__``."""
        return cls(filter=filter, **fields)  # type: ignore[arg-type]  # parsed to a MetadataFilter on construction

    def candidates_for(self, units: int | None) -> int:
        """The candidates of this search in a collection of ``units`` live units: as given, else
        :func:`default_candidates` within k..``max_candidates`` and at most ``prefetch`` (the units a first stage
        narrows to before choosing its candidates)."""
        if self.candidates is not None:
            return self.candidates
        chosen = min(default_candidates(units), self.limits.max_candidates, self.prefetch or self.limits.max_candidates)
        return max(self.k, chosen)

    def under(self, limits: StoreLimits) -> SearchOptions:
        """These options checked against ``limits`` (a backend's own); themselves when built against them."""
        return self if self.limits == limits else replace(self, limits=limits)


def checked_query(query: Query, options: SearchOptions, config: CollectionConfig) -> CheckedQuery:
    """``query`` as ``options.mode`` needs it, checked against the collection (``InvalidQueryError``): words for
    ``text`` and ``hybrid`` (at most ``max_query_terms`` distinct), vectors of the collection's dimensions for
    ``visual`` and ``hybrid``."""
    if not isinstance(query, Query):
        raise InvalidQueryError(f"query must be a colbert.search.Query, got {type(query).__name__}")
    limits = options.limits
    text = None if options.mode is SearchMode.VISUAL else check_query_text(query, limits.max_query_terms)
    terms = () if text is None else query.terms
    if options.mode is SearchMode.TEXT:
        return CheckedQuery(None, None, text, terms)
    q, dense = query_arrays(query.multivector, query.dense, config, limits)
    return CheckedQuery(q, dense, text, terms)


def parse_mode(mode: object) -> SearchMode:
    """``mode`` as a :class:`SearchMode`; ``InvalidQueryError`` naming the accepted values."""
    try:
        return SearchMode(str(mode)) if isinstance(mode, str) else SearchMode(mode)  # type: ignore[arg-type]
    except ValueError:
        raise InvalidQueryError(
            f"mode must be one of {', '.join(m.value for m in SearchMode)}, got {mode!r:.40}"
        ) from None


def check_query_text(query: Query, max_terms: int) -> str:
    """The query text of a text/hybrid search; ``InvalidQueryError`` when missing or with too many terms."""
    query_text = query.text
    if not isinstance(query_text, str) or not query_text.strip():
        raise InvalidQueryError("modes 'text' and 'hybrid' need query_text: a non-empty string of words")
    n = len(query.terms)
    if n > max_terms:
        raise InvalidQueryError(f"query_text has {n} distinct words, at most {max_terms} are searched: shorten it")
    return query_text
