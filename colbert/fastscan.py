"""Fast-scan bounds on MaxSim over binary and residual codes, used to prune pages before their exact scoring.

The exact kernel (``maxsim_lut``) adds one float32 table row per code byte; this module's kernel (``fastscan`` in
``_fastscan.c``, FAISS's "fast scan" idea) looks up 4-bit nibbles in uint8 tables, 32 tokens per byte shuffle, and
sums them in uint16. Its scores are approximate, so they are only used to **prune**: a page is dropped when even
its upper bound is below the k-th best lower bound (or below the k-th best exact score already known); the pages
left are scored by the exact kernel, so the returned top-k and its scores are the exact path's, bit for bit.

Quantisation, per query token (lane) l. A token's similarity is a sum of terms: one per code nibble m,
``T_m[nibble]`` (the nibble's dimensions' share of ⟨q_l, decoded token⟩, computed in float64), plus, for the
residual codecs, the centroid term ``C[id] = ⟨q_l, centroid⟩``. With one scale ``s_l`` for the lane and an offset
``o_m = min T_m`` per term, each term is stored as ``round((T_m − o_m) / s_l)``: uint8 for the nibble tables
(``s_l ≥ range(T_m) / 255``) and uint16 for the centroid term (``s_l ≥ range(C) / (65,535 − 255 · nibbles)``, so
that every token's integer sum fits uint16: saturation-free by construction). The lane's value for a token is
``Σ_m o_m + s_l · Q``, and with ``e_m = max_v |T_m[v] − o_m − s_l · q_m[v]|`` (≤ s_l / 2, computed exactly from the
tables) it is within ``E_l = Σ_m e_m`` of the real sum; the max over a page's tokens moves by no more. The exact
kernel itself differs from the real sums by float32 rounding, bounded by ``R = (d + bytes + Lq + 16) · 2⁻²³ · Σ_l
A_l`` with ``A_l = Σ_c |q_lc| · max |value_c| + ‖q_l‖ · max ‖centroid‖`` (a bound on every partial sum's magnitude,
at twice the unit roundoff). So for each page

    |fast − exact| ≤ bound = Σ_l E_l + R,

and :meth:`FastScan.bounds` returns ``fast ∓ bound``. Codecs whose bytes do not split into nibbles (ternary
residuals: 5 base-3 digits a byte) get no fast scan (:meth:`FastScan.build` returns None) and are scored exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from colbert import _kernel
from colbert.codebook import Codebook
from colbert.quantize import Codec, needs_codebook
from colbert.residual import ResidualDocs, ResidualScorer
from colbert.scoring import PackedDocs

__all__ = ["FastScan", "Pruner", "take_pages"]

F64 = npt.NDArray[np.float64]
_U16_MAX = 65535
_NIBBLE_DIMS = {2: 4, 4: 2, 16: 1}  # bucket levels → dimensions per 4-bit nibble (others do not split)


@dataclass
class FastScan:
    """One query's quantised tables for one compact codec (module docstring), and the pages it has pruned."""

    tables: npt.NDArray[np.uint8]  # (Lq, nibbles, 16)
    centroid_terms: npt.NDArray[np.uint16] | None  # (K, Lq rounded up to 8; the padding lanes 0) or None (binary)
    scale: F64  # (Lq,) s_l
    offset: F64  # (Lq,) Σ_m o_m
    bound: float  # Σ_l E_l + R: |fast − exact| for any page
    kernel: _kernel.Kernel
    pages_seen: int = field(default=0)
    pages_kept: int = field(default=0)

    @classmethod
    def build(
        cls, query: npt.ArrayLike, dim: int, book: Codebook | None = None, *, centroid_terms: np.ndarray | None = None
    ) -> FastScan | None:
        """Tables for the binary codec (``book`` None, ``dim`` dimensions) or a residual codec's ``book``; None when
        there is no fast scan for it (no compiled kernel, ternary codes, an empty or non-finite query).
        ``centroid_terms``: (Lq, K) ⟨q, centroid⟩ as the exact scorer has them (saves computing them again)."""
        kern = _kernel.kernel()
        q = np.asarray(query, dtype=np.float32).astype(np.float64)  # (Lq, d)
        if kern is None or q.ndim != 2 or q.shape[0] == 0 or q.shape[1] != dim or not np.isfinite(q).all():
            return None
        if book is None:
            unit = 1.0 / float(np.float32(np.sqrt(dim)))  # the binary codec's ±1/√d, as scoring decodes it
            levels, values = 2, np.tile([-unit, unit], (dim, 1))  # (d, 2): bit 0 → −, bit 1 → +
            terms, reach = None, np.zeros(q.shape[0])
        elif book.levels in _NIBBLE_DIMS:
            levels, values = book.levels, book.values.astype(np.float64)  # (d, levels)
            terms = q @ book.centroids.T.astype(np.float64) if centroid_terms is None else centroid_terms  # (Lq, K)
            terms = np.asarray(terms, dtype=np.float64)
            reach = np.linalg.norm(q, axis=1) * float(np.linalg.norm(book.centroids, axis=1).max())
        else:
            return None
        nibbles = _nibble_tables(q, values, levels)  # (Lq, nibbles, 16)
        if nibbles.shape[1] > kern.fastscan_max_terms:
            return None
        reach = reach + (np.abs(q) * np.abs(values).max(axis=1)).sum(axis=1)  # (Lq,) A_l
        slack = (dim + nibbles.shape[1] // 2 + q.shape[0] + 16) * 2.0**-23 * float(reach.sum())
        return _quantise(nibbles, terms, slack, kern)

    def bounds(self, docs: PackedDocs | ResidualDocs) -> tuple[F64, F64]:
        """(lower, upper), each (N,): every page's exact-kernel MaxSim lies in [lower, upper] (empty pages: 0)."""
        if isinstance(docs, ResidualDocs):
            ids, codes = docs.ids, docs.codes
        else:
            ids, codes = None, np.asarray(docs.tokens)
        codes = np.ascontiguousarray(codes, dtype=np.uint8)  # (T, bytes)
        offsets = np.ascontiguousarray(docs.offsets, dtype=np.int64)  # (N + 1,)
        n_pages, lanes = offsets.shape[0] - 1, self.tables.shape[0]
        if 2 * codes.shape[1] != self.tables.shape[1] or (ids is None) != (self.centroid_terms is None):
            raise ValueError("pages do not match the codec these tables were built for")
        best = np.zeros((n_pages, lanes), dtype=np.uint16)  # (N, Lq)
        if n_pages:
            self._run(ids, codes, offsets, best)
        fast = self.offset.sum() + best.astype(np.float64) @ self.scale  # (N,) Σ_l (Σ_m o_m + s_l · max)
        empty = offsets[1:] == offsets[:-1]
        lower = np.where(empty, 0.0, fast - self.bound)
        upper = np.where(empty, 0.0, fast + self.bound)
        return lower, upper

    def _run(
        self,
        ids: npt.NDArray[np.uint16] | None,
        codes: npt.NDArray[np.uint8],
        offsets: npt.NDArray[np.int64],
        out: np.ndarray,
    ) -> None:
        k, ct = self.kernel, self.centroid_terms
        ids_c = None if ids is None else np.ascontiguousarray(ids, dtype=np.uint16)
        lanes = self.tables.shape[0]

        def run(p0: int, p1: int) -> None:
            k.fastscan(
                _ptr(self.tables), None if ct is None else _ptr(ct), 0 if ct is None else ct.shape[1], lanes,
                codes.shape[1],
                None if ids_c is None else _ptr(ids_c), _ptr(codes), _ptr(offsets), p0, p1, _ptr(out),
            )  # fmt: skip

        _kernel.run_pages(offsets, run)

    def keep(self, docs: PackedDocs | ResidualDocs, k: int, floor: float = -np.inf) -> npt.NDArray[np.bool_] | None:
        """Pages that may be in the exact top-``k``: those whose upper bound reaches both the k-th best lower bound
        and ``floor`` (the k-th best exact score already known, or −inf). A dropped page has ``k`` pages scoring
        strictly more, so ties keep their order. None when ``k`` < 1 (nothing to prune by)."""
        lower, upper = self.bounds(docs)
        if k < 1:
            return None
        threshold = floor
        if lower.size > k:
            threshold = max(threshold, float(np.partition(lower, lower.size - k)[lower.size - k]))
        kept: npt.NDArray[np.bool_] = upper >= threshold
        self.pages_seen += int(kept.size)
        self.pages_kept += int(kept.sum())
        return kept


Docs = TypeVar("Docs", PackedDocs, ResidualDocs)


class Pruner:
    """Fast-scan pruning for one query's top-``k`` over blocks of pages (the embedded index's rerank and exhaustive
    scan): the tables are built on the first block of a binary or residual collection; other codecs, and codecs
    without a fast scan, pass every page through."""

    def __init__(self, query: npt.ArrayLike, k: int, codec: Codec | str, dim: int) -> None:
        self.query, self.k, self.dim = query, k, dim
        self.active = k >= 1 and (Codec(codec) is Codec.BINARY or needs_codebook(codec))
        self.scan: FastScan | None = None
        self._built = False

    def prune(
        self,
        ids: npt.NDArray[np.int64],
        docs: Docs,
        best: npt.NDArray[np.float32],
        residual: ResidualScorer | None = None,
    ) -> tuple[npt.NDArray[np.int64], Docs]:
        """The block's pages (ids and docs) that may enter the top-k, given ``best``: the exact scores of the
        running top-k (at most k of them; its minimum is a floor once there are k). ``residual``: the exact scorer
        of a residual codec's pages (its codebook and centroid terms are reused)."""
        if not self.active:
            return ids, docs
        if not self._built:
            book = None if residual is None else residual.book
            self.scan, self._built = FastScan.build(self.query, self.dim, book, centroid_terms=_terms(residual)), True
        if self.scan is None:
            return ids, docs
        floor = float(best.min()) if best.size >= self.k else -np.inf
        keep = self.scan.keep(docs, self.k, floor)
        if keep is None or keep.all():
            return ids, docs
        return ids[keep], take_pages(docs, keep)


def _terms(scorer: ResidualScorer | None) -> np.ndarray | None:
    """(Lq, K) float32: the exact scorer's own centroid terms, or None (no scorer, or it has no kernel tables)."""
    ct = None if scorer is None else getattr(scorer, "ct", None)  # (blocks, K, lanes)
    if ct is None or scorer is None:
        return None
    terms: np.ndarray = ct.transpose(0, 2, 1).reshape(-1, ct.shape[1])[: scorer.query.shape[0]]
    return terms


def _nibble_tables(q: F64, values: F64, levels: int) -> F64:
    """(Lq, nibbles, 16): T_m[v] = Σ over nibble m's dimensions of q[dim] · values[dim, digit of dim in v] (digits
    base ``levels``, first dimension most significant, as the codes are packed; dimensions past d add 0)."""
    per = _NIBBLE_DIMS[levels]
    dims_per_byte = 2 * per
    n_bytes = -(-values.shape[0] // dims_per_byte)
    width = n_bytes * dims_per_byte
    qv = np.zeros((q.shape[0], width, levels))  # (Lq, width, levels): q[dim] · values[dim, code]
    qv[:, : values.shape[0]] = q[:, :, None] * values[None]
    qv = qv.reshape(q.shape[0], 2 * n_bytes, per, levels)
    digits = (np.arange(16)[:, None] // levels ** np.arange(per - 1, -1, -1)[None]) % levels  # (16, per)
    return sum(qv[:, :, s, digits[:, s]] for s in range(per))  # type: ignore[return-value]


def _quantise(nibbles: F64, terms: F64 | None, slack: float, kern: _kernel.Kernel) -> FastScan:
    """Per lane: one scale for all terms, uint8 nibble tables and uint16 centroid terms (module docstring)."""
    lo = nibbles.min(axis=2, keepdims=True)  # (Lq, nibbles, 1)
    span = (nibbles.max(axis=2, keepdims=True) - lo).max(axis=(1, 2)) / 255  # (Lq,)
    offset = lo.sum(axis=(1, 2))  # (Lq,)
    ct: npt.NDArray[np.uint16] | None = None
    err = np.zeros(nibbles.shape[0])
    if terms is not None:
        t_lo = terms.min(axis=1, keepdims=True)  # (Lq, 1)
        room = _U16_MAX - 255 * nibbles.shape[1]
        span = np.maximum(span, (terms.max(axis=1) - t_lo[:, 0]) / room)
    scale = np.where(span > 0, span, 1.0)  # (Lq,) a constant lane: any scale, every term quantises to 0
    q_nib = np.clip(np.rint((nibbles - lo) / scale[:, None, None]), 0, 255)
    err += np.abs(nibbles - lo - q_nib * scale[:, None, None]).max(axis=2).sum(axis=1)
    if terms is not None:
        room = _U16_MAX - 255 * nibbles.shape[1]
        q_ct = np.clip(np.rint((terms - t_lo) / scale[:, None]), 0, room)
        err += np.abs(terms - t_lo - q_ct * scale[:, None]).max(axis=1)
        offset = offset + t_lo[:, 0]
        ct = np.zeros((q_ct.shape[1], -(-q_ct.shape[0] // 8) * 8), dtype=np.uint16)  # (K, Lq rounded up to 8)
        ct[:, : q_ct.shape[0]] = q_ct.T
    return FastScan(np.ascontiguousarray(q_nib, dtype=np.uint8), ct, scale, offset, float(err.sum()) + slack, kern)


def take_pages(docs: Docs, keep: npt.NDArray[np.bool_]) -> Docs:
    """The pages where ``keep`` is True, in order, as a new packed batch of the same kind (rows copied)."""
    offsets = docs.offsets
    lengths = np.diff(offsets)[keep]  # (n,)
    new_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)  # (n + 1,)
    rows = np.arange(int(new_offsets[-1])) + np.repeat(offsets[:-1][keep] - new_offsets[:-1], lengths)  # (T',)
    if isinstance(docs, ResidualDocs):
        return ResidualDocs(docs.ids[rows], docs.codes[rows], new_offsets)
    scales = None if docs.scales is None else docs.scales[rows]
    return PackedDocs(np.asarray(docs.tokens)[rows], new_offsets, scales=scales, dims=docs.dims)


def _ptr(a: np.ndarray) -> int:
    return int(a.ctypes.data)
