"""MaxSim of prepared queries against packed documents: the block walk, the kernels' calls and the torch fallback.

A :class:`QueryScorer` holds a batch of queries in the forms the compiled kernels read (built on first use per
storage kind, then reused): the float32 query transposed in blocks of 32 lanes (float storage), the 24-bit
fixed-point limbs (int8 codes, integer kernel) or the 256-entry sign tables (binary codes), each starting on a
64-byte boundary (the kernels' vector loads then never split a cache line). One scorer scores any number of
:class:`colbert.scoring.PackedDocs` of one dimension, so a caller that scores one query against many batches of
pages (the embedded index's rerank and exhaustive scan) prepares the query once, not once per batch.

Blocks. Where the kernel reads the stored tokens in place (C-contiguous float32, float16, bfloat16, int8 + float32
scales, binary), its temporaries are per page, not per token (a running max per query lane and page), so it walks
:data:`KERNEL_BLOCK_ELEMENTS` / lanes pages at a time (at least one page; ``lanes`` is ΣLq rounded up to 32): at
most 24 bytes × lanes × pages of temporaries per block (the kernel's (pages, lanes) float32 maxima, their
transpose, int8's float64 rescaling and its float32 result, the gather of non-empty pages), ≤ 24 MiB whatever the
page lengths. Where a block's tokens must be copied first (another dtype, a strided array), and in the torch
fallback, temporaries grow with tokens: those walk blocks of 2^21 / ΣLq tokens (at least one page). Each page's
score depends only on that page's tokens, so the block sizes never change a score.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import torch

from colbert import _kernel
from colbert.errors import InvalidQueryError

if TYPE_CHECKING:
    from colbert.scoring import PackedDocs

__all__ = ["KERNEL_BLOCK_ELEMENTS", "QueryScorer", "fixed_point", "sign_tables"]

FloatArray = npt.NDArray[np.float32]
KERNEL_BLOCK_ELEMENTS = 1 << 20  # kernel paths: bound on lanes × pages per block (24 B each at most: ≤ 24 MiB)
_MAX_SCORE_ELEMENTS = 1 << 21  # fallback: bound on ΣLq × block tokens per block (8 MiB of float32 scores)
_Q_FIXED = 127 * 65536  # integer kernels: the query as Q = 65,536·hi + 256·mid + lo, |Q| ≤ 8,323,072
_LANES = 32  # query tokens per kernel block
_FALLBACK_RUN_TOKENS = 4096  # torch fallback: pages decoded and scored together (2 MiB of float32 at d = 128)


class QueryScorer:
    """Queries (a list of (Lq_i, d) float32 arrays of one d) prepared for scoring; :meth:`maxsim` scores them
    against packed documents, shape (Q, N). Not for concurrent use from several threads (the prepared forms are
    cached on first use); the kernel is the one loaded when the scorer was made."""

    def __init__(self, queries: list[FloatArray]) -> None:
        self.queries = queries
        q_len = np.array([q.shape[0] for q in queries], dtype=np.int64)  # (Q,)
        self.has_tokens = q_len > 0  # (Q,) empty queries score 0
        self.q_starts = np.concatenate([[0], np.cumsum(q_len)[:-1]]).astype(np.int64)  # (Q,)
        dims = {int(q.shape[1]) for q in queries}
        self.dim = dims.pop() if len(dims) == 1 else None  # None: no queries, or of several d (checked per call)
        self.q_all = np.zeros((0, 0), np.float32)  # (ΣLq, d)
        if self.dim is not None:
            self.q_all = np.ascontiguousarray(np.concatenate(queries, axis=0), dtype=np.float32)
        self.n_lanes = -(-self.q_all.shape[0] // _LANES) * _LANES
        self.kernel = _kernel.kernel()
        self._forms: dict[str, tuple[np.ndarray, ...]] = {}

    def maxsim(self, docs: PackedDocs, *, block_tokens: int | None = None) -> FloatArray:
        """Exact MaxSim scores (Q, N) against ``docs``. ``block_tokens``: walk blocks of at most that many tokens
        (at least one page) instead of the default blocks (module docstring); the scores are the same."""
        n_docs = len(docs)
        scores = np.zeros((len(self.queries), n_docs), dtype=np.float32)  # (Q, N)
        if not self.queries or n_docs == 0:
            return scores
        for q in self.queries:
            if q.shape[1] != docs.dim:
                raise InvalidQueryError(f"query dimension {q.shape[1]} does not match documents' {docs.dim}")
        if not self.has_tokens.any():
            return scores
        if self.kernel is None:
            _kernel.fallback_used()
        offsets = docs.offsets
        lengths = np.diff(offsets)  # (N,)
        in_place = self.kernel is not None and not block_tokens and _reads_in_place(docs)
        pages = max(1, KERNEL_BLOCK_ELEMENTS // self.n_lanes) if in_place else 0
        budget = block_tokens or max(1024, _MAX_SCORE_ELEMENTS // max(1, int(self.q_all.shape[0])))
        starts = self.q_starts[self.has_tokens]
        first = 0
        while first < n_docs:
            if pages:
                last = min(first + pages, n_docs)
            else:  # grow the block while it stays within the token budget (always at least one document)
                last = int(np.searchsorted(offsets, offsets[first] + budget, side="right")) - 1
                last = min(max(last, first + 1), n_docs)
            nonempty = np.flatnonzero(lengths[first:last] > 0)  # (nb',) within the block
            if nonempty.size:
                per_doc = self._block_max(docs, first, last)  # (ΣLq, nb)
                if nonempty.size < last - first:
                    per_doc = per_doc[:, nonempty]
                per_query = np.add.reduceat(per_doc, starts, axis=0)  # (Q', nb')
                scores[np.ix_(self.has_tokens, first + nonempty)] = per_query  # empty queries keep 0
            first = last
        return scores

    def _form(self, name: str) -> tuple[np.ndarray, ...]:
        """The query in the form one kernel reads, built on first use: "float" (qt), "fixed" (qi, corr, q_scale),
        "binary" (lut)."""
        if name not in self._forms:
            n, d = self.q_all.shape
            padded = np.zeros((self.n_lanes, d), dtype=np.float32)  # (n_lanes, d)
            padded[:n] = self.q_all
            form: tuple[np.ndarray, ...]
            if name == "binary":
                form = (sign_tables(padded, d, self.kernel.lut_lanes if self.kernel else _LANES),)
            elif name == "fixed":
                form = fixed_point(padded)
            else:
                form = (padded.reshape(-1, _LANES, d).transpose(0, 2, 1),)  # (blocks, d, 32)
            self._forms[name] = tuple(_kernel.aligned(a) for a in form)
        return self._forms[name]

    def _block_max(self, docs: PackedDocs, first: int, last: int) -> FloatArray:
        """(ΣLq, last − first): per query token, the max similarity over each document's tokens (empty: 0)."""
        offsets = docs.offsets[first : last + 1]
        lo, hi = int(offsets[0]), int(offsets[-1])
        if self.kernel is None:
            return self._torch_block_max(docs, lo, offsets - lo)
        local = np.ascontiguousarray(offsets - lo, dtype=np.int64)  # (nb + 1,)
        out = np.empty((last - first, self.n_lanes), dtype=np.float32)  # (nb, n_lanes)
        d, k, n = docs.dim, self.kernel, self.q_all.shape[0]
        kind = docs.kind
        if kind == "binary":
            (lut,) = self._form("binary")
            bits = np.ascontiguousarray(docs.tokens[lo:hi])  # (T', ceil(d/8)) uint8

            def run_bits(p0: int, p1: int) -> None:
                k.maxsim_lut(
                    _ptr(lut), None, 0, self.n_lanes, bits.shape[1], None, _ptr(bits), _ptr(local), p0, p1, _ptr(out)
                )

            _kernel.run_pages(local, run_bits)
            return np.ascontiguousarray(out[:, :n].T)
        if kind == "int8" and not k.int8_as_float:
            qi, corr, q_scale = self._form("fixed")
            tokens = np.ascontiguousarray(docs.tokens[lo:hi])
            scales = None if docs.scales is None else np.ascontiguousarray(docs.scales[lo:hi])
            scratch_bytes = 4 * (-(-d // 4) * 4) + 64

            def run_int(p0: int, p1: int) -> None:
                scratch = np.empty(scratch_bytes, dtype=np.uint8)
                k.maxsim_int(
                    _ptr(qi), self.n_lanes, d, _ptr(tokens), None if scales is None else _ptr(scales), 0,
                    _ptr(corr), _ptr(local), p0, p1, _ptr(out), _ptr(scratch),
                )  # fmt: skip

            _kernel.run_pages(local, run_int)
            best = out[:, :n].T.astype(np.float64)  # (ΣLq, nb)
            best *= q_scale[:n, None]
            return best.astype(np.float32)
        return self._float_block_max(docs, lo, hi, local, out)

    def _float_block_max(
        self, docs: PackedDocs, lo: int, hi: int, local: npt.NDArray[np.int64], out: FloatArray
    ) -> FloatArray:
        """``maxsim_float`` over rows [lo, hi): float storage widened to float32 in the kernel (int8: code · scale)."""
        assert self.kernel is not None
        k, d = self.kernel, docs.dim
        (qt,) = self._form("float")
        raw = docs.tokens[lo:hi]
        scales = None
        if isinstance(raw, torch.Tensor):
            kind_id = 2 if raw.dtype == torch.bfloat16 else 0
            raw_np = raw.contiguous().view(torch.int16).numpy() if kind_id == 2 else raw.to(torch.float32).numpy()
        elif docs.kind == "int8":
            assert docs.scales is not None
            kind_id, raw_np, scales = 3, raw, np.ascontiguousarray(docs.scales[lo:hi], dtype=np.float32)
        else:
            kind_id = 1 if raw.dtype == np.float16 else 0
            raw_np = raw if kind_id == 1 else np.asarray(raw, dtype=np.float32)
        tokens_f = np.ascontiguousarray(raw_np)

        def run_float(p0: int, p1: int) -> None:
            scratch = np.empty(16 * d + 16, dtype=np.float32)  # ≥ TILE rows (see the kernel)
            k.maxsim_float(
                _ptr(qt), self.n_lanes, d, _ptr(tokens_f), None if scales is None else _ptr(scales), kind_id,
                _ptr(local), p0, p1, _ptr(out), _ptr(scratch),
            )  # fmt: skip

        _kernel.run_pages(local, run_float)
        return np.ascontiguousarray(out[:, : self.q_all.shape[0]].T)

    def _torch_block_max(self, docs: PackedDocs, lo: int, bounds: np.ndarray) -> FloatArray:
        """Fallback: decode cache-sized runs of pages (≈ 4,096 tokens, at least one page) to float32 and GEMM each
        right away; the largest temporaries are ΣLq × block tokens and one run's float32 copy."""
        lengths = np.diff(bounds)  # (nb,)
        out = np.zeros((self.q_all.shape[0], lengths.size), dtype=np.float32)  # (ΣLq, nb)
        q = torch.from_numpy(self.q_all)  # (ΣLq, d)
        first = 0
        while first < lengths.size:
            last = int(np.searchsorted(bounds, bounds[first] + _FALLBACK_RUN_TOKENS, side="right")) - 1
            last = min(max(last, first + 1), lengths.size)
            a, b = int(bounds[first]), int(bounds[last])
            run = lengths[first:last]  # (nr,)
            if b > a:
                sim = torch.mm(q, docs.decoded(lo + a, lo + b).T)  # (ΣLq, Tr)
                if (run == run[0]).all():  # equal-length pages: one strided max, no gather
                    out[:, first:last] = sim.view(sim.shape[0], run.size, int(run[0])).amax(dim=-1).numpy()
                else:
                    nonempty = np.flatnonzero(run > 0)
                    starts = bounds[first:last][nonempty] - a
                    out[:, first + nonempty] = np.maximum.reduceat(sim.numpy(), starts, axis=1)
            first = last
        return out


def fixed_point(padded: FloatArray) -> tuple[np.ndarray, np.ndarray, npt.NDArray[np.float64]]:
    """The integer kernel's query (``maxsim_int``): Q = round(q / s) with s = max|q_i| / (127 · 65,536) per token
    (24-bit fixed point, as fine as float32's significand), split into signed bytes Q = 65,536·hi + 256·mid + lo.
    ``padded``: (n_lanes, d), n_lanes a multiple of 32. Returns (qi (blocks, d4, 3, 32, 4) int8, corr (blocks, 3,
    32) int32: 128 · each limb's sum, q_scale (n_lanes,) float64)."""
    n_lanes, d = padded.shape
    d4 = -(-d // 4)
    top = np.abs(padded).max(axis=1).astype(np.float64)  # (n_lanes,)
    q_scale: npt.NDArray[np.float64] = np.where(top > 0, top / _Q_FIXED, 1.0)  # (n_lanes,)
    fixed = np.zeros((n_lanes, d4 * 4), dtype=np.int64)  # (n_lanes, d4·4); padding dims are 0
    fixed[:, :d] = np.clip(np.rint(padded / q_scale[:, None]), -_Q_FIXED, _Q_FIXED)
    lo = (fixed + 128) % 256 - 128  # [-128, 127]
    rest = (fixed - lo) // 256
    mid = (rest + 128) % 256 - 128
    hi = (rest - mid) // 256  # [-127, 127]
    limbs = np.stack([hi, mid, lo], axis=0).astype(np.int8)  # (3, n_lanes, d4·4)
    limbs = limbs.reshape(3, -1, _LANES, d4, 4).transpose(1, 3, 0, 2, 4)  # (blocks, d4, 3, 32, 4)
    offset = 128  # int8 codes enter the VNNI kernel as unsigned bytes, +128
    limb_sums = np.stack([hi, mid, lo], axis=0).sum(axis=2)  # (3, n_lanes)
    corr = (offset * limb_sums).astype(np.int32).reshape(3, -1, _LANES).transpose(1, 0, 2)  # (blocks, 3, 32)
    return np.ascontiguousarray(limbs), np.ascontiguousarray(corr), q_scale


_BYTE_SIGNS = np.where(np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1), 1.0, -1.0)  # (256, 8) ±1


def sign_tables(padded: FloatArray, d: int, lanes: int) -> FloatArray:
    """The binary codec's lookup tables for ``maxsim_lut`` (``_maxsim_lut.c``; no centroid table), in blocks of
    the kernel's ``lanes`` query lanes: (n_lanes / lanes, ceil(d/8), 256, lanes) float32, entry [b, i, v, l] = Σ_c
    sign_c(v) · q[lanes·b + l, 8i + c] / √d over the 8 dims of byte i — the byte v's share of the query's dot
    product with the decoded sign vector, summed in float64 and rounded once."""
    n_lanes = padded.shape[0]
    nbytes = -(-d // 8)
    q = np.zeros((n_lanes, nbytes * 8), dtype=np.float64)  # dims past d stay 0: their padding bits add nothing
    q[:, :d] = padded[:, :d]
    unit = 1.0 / float(np.float32(np.sqrt(d)))  # the fallback's decode divides by float32 √d
    tables = np.einsum("vc,lic->ivl", _BYTE_SIGNS, q.reshape(n_lanes, nbytes, 8)) * unit  # (nbytes, 256, n_lanes)
    blocks = tables.reshape(nbytes, 256, -1, lanes).transpose(2, 0, 1, 3)  # (blocks, nbytes, 256, lanes)
    return np.ascontiguousarray(blocks, dtype=np.float32)


def _reads_in_place(docs: PackedDocs) -> bool:
    """Whether the kernel reads ``docs`` without a copy of a block's tokens (or scales)."""
    tokens = docs.tokens
    if isinstance(tokens, torch.Tensor):
        return docs.kind in ("bfloat16", "float32") and tokens.is_contiguous()
    scales = docs.scales
    scales_ok = scales is None or (scales.dtype == np.float32 and scales.flags.c_contiguous)
    return docs.kind != "float" and bool(tokens.flags.c_contiguous) and scales_ok


def _ptr(a: np.ndarray) -> int:
    return int(a.ctypes.data)
