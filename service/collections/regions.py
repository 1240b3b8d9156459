"""Regions: where a hit's evidence is — a page's boxes or a chunk's line ranges that answer the query (the hit's
citations). Asked with ``regions: true`` on a search or on the page-similarity route; at most
:data:`MAX_REGIONS` per hit, best first. Pure functions over what search already holds: the page's stored words
(:mod:`.highlight`), its similarity grid (:class:`~service.collections.search.SimilarityGrid`), a chunk's text and
its stored token vectors.

Page hits (``bbox`` = ``[x0, y0, x1, y1]`` as fractions of the page image, x right, y down):

- ``source: "visual"`` (modes ``visual`` and ``hybrid``): each patch of the merged grid scores the max over the
  query's tokens of its cosine with the patch (the heatmap's "whole query" map). Patches at or above
  ``median + VISUAL_LEVEL * (max - median)`` of the page's patch scores (the top quarter of the way from the
  page's typical patch to its best one: relative, so it works the same whatever the model's cosine scale) are
  joined into 8-connected areas. Each area is snapped to the page's words whose centre lies in it: the box
  becomes the union of those words' boxes and ``text`` those words in reading order (lines joined by newlines).
  An area with no word (a figure, a scanned page without OCR) keeps its patch box and an empty ``text``.
  ``score``: the area's best patch score (a cosine, -1..1).
- ``source: "text"`` (modes ``text`` and ``hybrid``): the page's lines (its words grouped by position: a word
  starts a new line when it does not overlap the previous word vertically by half the smaller height, or starts
  left of it) holding a word that shares a :mod:`colbert.text` token with the query — the words search's
  ``highlight`` outlines. ``score``: the share of the query's distinct tokens found on the line (0..1]; lines
  of equal score are ordered by the longest run of query tokens they hold in the query's order (a quoted phrase
  first), then reading order. The box is the line's words, ``text`` the line.
- ``hybrid``: the text regions first (they rest on the query's literal words), then the visual regions whose
  box does not overlap one of them.

Chunk hits (text/code collections; ``lines`` = ``[first, last]``, 1-based inclusive lines of the document, no
``bbox``): a region is a run of consecutive lines of the chunk.

- ``source: "text"`` (mode ``text``, and first in ``hybrid``): runs of lines holding a query token (BM25's
  terms); ``score``: the share of the query's distinct tokens in the run.
- ``source: "visual"`` (the late-interaction signal, modes ``visual`` and ``hybrid``): each line scores the
  MaxSim of the query's token vectors against the chunk's stored token vectors that fall on the line (late
  chunking keeps one vector per token of the chunk), divided by the query's token count (a cosine, -1..1);
  runs of lines at or above ``median + VISUAL_LEVEL * (max - median)`` of the chunk's line scores, each run
  scored by its best line. The stored vectors are aligned to characters by tokenizing the chunk's text again
  (:func:`token_spans`); vectors beyond its tokens (the whitespace fed after the chunk) belong to no line.
  A pooled collection (``pool_factor > 1``) holds no vector per token: :func:`check_regions` answers 422 for
  ``visual`` and ``hybrid`` keeps only the text regions (and says so in ``warnings``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from colbert.hybrid import SearchMode
from colbert.text import query_terms, tokens
from colbert.units import ChunkInfo
from model.layout import PATCH, PageLayout
from model.types import PromptType
from service.collections.tasks import task_spec
from service.collections.units import read_words
from service.errors import UnprocessableError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from colbert.store import CollectionConfig, Hit, Store

__all__ = [
    "MAX_REGIONS",
    "VISUAL_LEVEL",
    "Region",
    "check_regions",
    "chunk_regions",
    "hit_regions",
    "line_scores",
    "page_lines",
    "page_regions",
    "token_spans",
]

MAX_REGIONS = 5
VISUAL_LEVEL = 0.75  # a patch / line is part of a region at median + 0.75 * (max - median) of its page / chunk
_EIGHT = np.ones((3, 3), dtype=bool)  # 8-connectivity of patches

Word = tuple[float, float, float, float, str]  # x0, y0, x1, y1 (pixels of the page image), text


@dataclass(frozen=True, slots=True)
class Region:
    """One citation of a hit: a box on a page (fractions of the page image) or a line range of a chunk."""

    score: float
    text: str
    source: str  # "visual" | "text"
    bbox: tuple[float, float, float, float] | None = None
    lines: tuple[int, int] | None = None


def check_regions(config: CollectionConfig, mode: SearchMode) -> str | None:
    """Whether ``regions`` can be answered in ``mode`` for a collection: a 422 where they cannot be at all,
    a warning (returned) where only the text half can."""
    if config.unit_kind != "chunk" or config.pool_factor == 1 or mode is SearchMode.TEXT:
        return None
    if mode is SearchMode.VISUAL:
        raise UnprocessableError(
            f"regions need one stored vector per token to find a chunk's lines in mode 'visual', and this collection "
            f"pools them (pool_factor {config.pool_factor}): use mode 'text' or 'hybrid' (text regions), or leave "
            "regions out",
            code="regions_unavailable",
        )
    return (
        f"regions: this collection pools its token vectors (pool_factor {config.pool_factor}), so its chunks' "
        "regions are the text ones only (the lines holding query words)"
    )


def hit_regions(
    store: Store,
    hit: Hit,
    query: str | None,
    query_vectors: np.ndarray | None,
    grid_maps: np.ndarray | None,
    mode: SearchMode,
    tokenizer: Tokenizer,
) -> list[Region]:
    """One hit's regions in the search's ``mode`` (blocking: may read the chunk's stored vectors).
    ``grid_maps``: the page's ``(Lq, rows, cols)`` similarity grid; ``query_vectors``: the query's ``(Lq, d)``
    multi-vector (None in mode text). The hit carries its unit's text and metadata (the plan asks for them)."""
    if hit.kind != "chunk":
        patch_scores = None if grid_maps is None else np.asarray(grid_maps).max(axis=0)
        return page_regions(query, hit.unit_metadata or {}, patch_scores, mode)
    text = hit.text or ""
    scores = None
    if query_vectors is not None and store.config.pool_factor == 1:
        record = store.get_unit(hit.doc_id, hit.unit)
        if record is not None:
            scores = line_scores(
                query_vectors, record.multivector, _chunk_token_lines(store, hit, text, tokenizer), text.count("\n") + 1
            )
    lines = ChunkInfo.from_metadata(hit.unit_metadata or {}).lines
    return chunk_regions(query, text, lines[0] if lines else 1, scores, mode)


def _chunk_token_lines(store: Store, hit: Hit, text: str, tokenizer: Tokenizer) -> np.ndarray:
    """The line of each stored token vector of a chunk: late chunking tokenizes each chunk's text on its own
    (:meth:`model.processor.Processor.prepare_late_chunks`), the document's first chunk behind the passage
    prompt, whose vectors belong to no line (-1)."""
    if hit.unit != 0:
        return token_spans(tokenizer.encode(text, add_special_tokens=False).offsets, text)
    prefix = task_spec(store.config, PromptType.PASSAGE).prefix
    offsets = tokenizer.encode(prefix + text, add_special_tokens=False).offsets
    shifted = [(s - len(prefix), e - len(prefix)) for s, e in offsets]
    lines = token_spans([(max(s, 0), e) for s, e in shifted], text)
    lines[np.array([s < 0 for s, _ in shifted], dtype=bool)] = -1
    return lines


# ---- pages ------------------------------------------------------------------------------------------------------
def page_lines(words: Sequence[Word]) -> list[list[Word]]:
    """The page's words (reading order) grouped into lines: a word starts a new line when it overlaps the
    previous word vertically by less than half the smaller height, or starts left of the previous word."""
    lines: list[list[Word]] = []
    for word in words:
        if lines:
            prev = lines[-1][-1]
            overlap = min(prev[3], word[3]) - max(prev[1], word[1])
            height = min(prev[3] - prev[1], word[3] - word[1])
            if overlap >= 0.5 * max(height, 1e-6) and word[0] >= prev[0]:
                lines[-1].append(word)
                continue
        lines.append([word])
    return lines


def page_regions(
    query: str | None, unit_metadata: Mapping[str, Any], patch_scores: np.ndarray | None, mode: SearchMode
) -> list[Region]:
    """A page hit's regions (see the module doc); ``patch_scores``: the ``(rows, cols)`` max over query tokens of
    the similarity grid (None without one: no visual regions). Empty when the page has no image grid."""
    layout = PageLayout.from_metadata(unit_metadata)
    if layout is None and patch_scores is not None:
        layout = PageLayout(int(patch_scores.shape[0]), int(patch_scores.shape[1]))
    if layout is None:
        return []
    words = read_words(unit_metadata)
    found: list[Region] = []
    if mode is not SearchMode.VISUAL and query:
        found = _text_regions(query, words, layout)
    if mode is not SearchMode.TEXT and patch_scores is not None:
        taken = [r.bbox for r in found if r.bbox is not None]
        found += [r for r in _visual_regions(patch_scores, words, layout) if not any(_meet(r.bbox, b) for b in taken)]
    return found[:MAX_REGIONS]


def _text_regions(query: str, words: Sequence[Word], layout: PageLayout) -> list[Region]:
    terms = query_terms(query)
    if not terms:
        return []
    ranked = []
    for order, line in enumerate(page_lines(words)):
        line_terms = [t for w in line for t in tokens(w[4])]
        coverage = len(set(terms) & set(line_terms)) / len(set(terms))
        if coverage > 0:
            ranked.append((-coverage, -_phrase_run(terms, line_terms), order, coverage, line))
    ranked.sort(key=lambda r: r[:3])
    return [Region(round(c, 4), _spelled([ln]), "text", _fraction(_union(ln), layout)) for *_, c, ln in ranked]


def _phrase_run(terms: Sequence[str], line_terms: Sequence[str]) -> int:
    """The longest run of consecutive query terms (in the query's order) found consecutively on the line."""
    best = 0
    for i in range(len(line_terms)):
        for j in range(len(terms)):
            n = 0
            while i + n < len(line_terms) and j + n < len(terms) and line_terms[i + n] == terms[j + n]:
                n += 1
            best = max(best, n)
    return best


def _visual_regions(patch_scores: np.ndarray, words: Sequence[Word], layout: PageLayout) -> list[Region]:
    scores = np.asarray(patch_scores, dtype=np.float32)
    level = _level(scores.ravel())
    labels, _count = ndimage.label(scores >= level, structure=_EIGHT)
    areas = []
    for index, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
        mask = labels == index
        box = (cols.start * PATCH, rows.start * PATCH, cols.stop * PATCH, rows.stop * PATCH)
        inside = [w for w in words if _patch_of(w, labels) == index]
        if inside:
            region = Region(0.0, _spelled(page_lines(inside)), "visual", _fraction(_union(inside), layout))
        else:
            region = Region(0.0, "", "visual", _fraction(box, layout))
        areas.append((float(scores[mask].max()), region))
    areas.sort(key=lambda a: -a[0])
    return [Region(round(s, 4), r.text, r.source, r.bbox) for s, r in areas]


def _patch_of(word: Word, labels: np.ndarray) -> int:
    """The area label of the patch holding the word's centre (0: none)."""
    row = int((word[1] + word[3]) / 2 // PATCH)
    col = int((word[0] + word[2]) / 2 // PATCH)
    if 0 <= row < labels.shape[0] and 0 <= col < labels.shape[1]:
        return int(labels[row, col])
    return 0


def _level(values: np.ndarray) -> float:
    median, top = float(np.median(values)), float(values.max())
    return median + VISUAL_LEVEL * (top - median)


def _union(words: Sequence[Word]) -> tuple[float, float, float, float]:
    return min(w[0] for w in words), min(w[1] for w in words), max(w[2] for w in words), max(w[3] for w in words)


def _spelled(lines: Sequence[Sequence[Word]]) -> str:
    return "\n".join(" ".join(w[4] for w in line) for line in lines)


def _fraction(box: tuple[float, float, float, float], layout: PageLayout) -> tuple[float, float, float, float]:
    width, height = layout.image_size
    x0, y0, x1, y1 = box
    return (_clip(x0 / width), _clip(y0 / height), _clip(x1 / width), _clip(y1 / height))


def _clip(v: float) -> float:
    return round(min(max(v, 0.0), 1.0), 5)


def _meet(a: tuple[float, float, float, float] | None, b: tuple[float, float, float, float]) -> bool:
    return a is not None and a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


# ---- chunks -----------------------------------------------------------------------------------------------------
def token_spans(offsets: Sequence[tuple[int, int]], text: str) -> np.ndarray:
    """The 0-based line of ``text`` each token's ``(start, end)`` character offset starts on."""
    starts = np.fromiter((s for s, _ in offsets), dtype=np.int64, count=len(offsets))
    breaks = np.array([i for i, ch in enumerate(text) if ch == "\n"], dtype=np.int64)
    return np.searchsorted(breaks, starts, side="left").astype(np.int64)


def line_scores(query: np.ndarray, chunk: np.ndarray, token_lines: np.ndarray, num_lines: int) -> np.ndarray:
    """Per line of a chunk: MaxSim of ``query`` (Lq, d) over the chunk's token vectors on that line, / Lq
    (``-inf`` for a line without tokens). ``token_lines[j]``: the line of ``chunk`` row ``j`` (rows past it: none)."""
    rows = min(len(token_lines), chunk.shape[0])
    sims = np.asarray(query, dtype=np.float32) @ np.asarray(chunk[:rows], dtype=np.float32).T  # (Lq, rows)
    out = np.full(num_lines, -np.inf, dtype=np.float32)
    for line in np.unique(token_lines[:rows]):
        if 0 <= line < num_lines:
            out[line] = float(sims[:, token_lines[:rows] == line].max(axis=1).mean())
    return out


def chunk_regions(
    query: str | None, text: str, first_line: int, scores: np.ndarray | None, mode: SearchMode
) -> list[Region]:
    """A chunk hit's regions (see the module doc): ``first_line`` is the chunk's first line in its document,
    ``scores`` the per-line MaxSim of :func:`line_scores` (None: no visual regions)."""
    lines = text.split("\n")
    found: list[Region] = []
    if mode is not SearchMode.VISUAL and query and query_terms(query):
        terms = set(query_terms(query))
        held = [terms & set(tokens(line)) for line in lines]
        for a, b in _runs([bool(h) for h in held]):
            coverage = len(set().union(*held[a:b])) / len(terms)
            found.append(Region(round(coverage, 4), "\n".join(lines[a:b]), "text", lines=_span(first_line, a, b)))
        found.sort(key=lambda r: -r.score)
    if mode is not SearchMode.TEXT and scores is not None and np.isfinite(scores).any():
        finite = scores[np.isfinite(scores)]
        above = [bool(np.isfinite(s) and s >= _level(finite)) for s in scores]
        taken = [r.lines for r in found if r.lines is not None]
        visual = []
        for a, b in _runs(above):
            span = _span(first_line, a, b)
            if not any(span[0] <= t[1] and t[0] <= span[1] for t in taken):
                visual.append(Region(round(float(scores[a:b].max()), 4), "\n".join(lines[a:b]), "visual", lines=span))
        found += sorted(visual, key=lambda r: -r.score)
    return found[:MAX_REGIONS]


def _runs(flags: Sequence[bool]) -> list[tuple[int, int]]:
    """``[a, b)`` index ranges of the maximal runs of True."""
    runs, start = [], None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append((start, i))
            start = None
    return runs


def _span(first_line: int, a: int, b: int) -> tuple[int, int]:
    return first_line + a, first_line + b - 1
