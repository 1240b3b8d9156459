"""Exact late-interaction (ColBERT MaxSim) scoring with bounded memory, and similarity maps.

MaxSim(q, D) = Σ_i max_j ⟨q_i, d_j⟩ over the query's tokens i and the document's tokens j.

The documents are packed into one contiguous token matrix with offsets (:class:`PackedDocs`), in their storage
codec (float32, float16, bfloat16, int8 codes + scales, binary sign bits). Scoring walks it in blocks of at most
``block_tokens`` tokens; a fused compiled kernel (``_maxsim_kernel.c``, see :mod:`colbert._kernel`) reads each
stored token once and keeps a running max per query token in registers, so no similarity matrix is built and no
float32 copy of float16/int8/binary pages is made. The scores are exact with respect to the stored values to
float32 precision (int8: the query enters in 24-bit fixed point, as fine as float32's significand; binary: the
query's per-byte ±q sums are looked up in 256-entry tables built per query, summed in float64, rounded once).
Without a C compiler, runs of a few pages are decoded to float32 and scored with torch GEMMs, a segmented max per
document and a segmented sum per query; the largest temporary is then ΣLq × block_tokens floats (32 × 65,536 × 4 B
= 8 MiB by default). Memory never depends on the corpus size.

Worked example (hand-computed): q = [[1, 0], [0, 1]], d = [[0.5, 0.5], [1, 0], [0, -1]].
Token 1 of q: max(0.5, 1, 0) = 1; token 2: max(0.5, 0, -1) = 0.5; MaxSim = 1.5.

>>> q = np.array([[1, 0], [0, 1]], dtype=np.float32)
>>> d = np.array([[0.5, 0.5], [1, 0], [0, -1]], dtype=np.float32)
>>> maxsim(q, [d, d[:1]])                      # second document: 0.5 + 0.5
array([[1.5, 1. ]], dtype=float32)
>>> similarity_map(q, d)                       # (Lq, Ld): which document token each query token matched
array([[ 0.5,  1. ,  0. ],
       [ 0.5,  0. , -1. ]], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from colbert import _kernel
from colbert.errors import CodecError, InvalidDocumentError, InvalidQueryError
from colbert.quantize import Codec, bytes_per_row

__all__ = ["PackedDocs", "maxsim", "similarity_map"]

FloatArray = npt.NDArray[np.float32]
_MAX_SCORE_ELEMENTS = 1 << 21  # bound on ΣLq × block tokens per block (8 MiB of float32 scores in the fallback)
_Q_FIXED = 127 * 65536  # integer kernels: the query as Q = 65,536·hi + 256·mid + lo, |Q| ≤ 8,323,072
_LANES = 32  # query tokens per kernel block
_FALLBACK_RUN_TOKENS = 4096  # torch fallback: pages decoded and scored together (2 MiB of float32 at d = 128)


@dataclass(frozen=True, slots=True)
class PackedDocs:
    """N documents as one token matrix plus (N + 1,) offsets; doc i is ``tokens[offsets[i]:offsets[i + 1]]``.
    Empty documents are allowed (they score 0). Every storage is scored exactly with respect to the stored
    values (float32 accumulation); the storage sets the precision:

    * numpy float32 ``(T, d)``: exact.
    * numpy float16 ``(T, d)``: widened to float32 inside the kernel (no float32 copy of the corpus).
    * torch bfloat16 ``(T, d)`` (``dtype="bfloat16"``): each stored component rounded to bf16 (relative 2⁻⁹),
      widened exactly; no faster than float16 and less precise for unit rows, kept for bf16 producers.
    * numpy int8 ``(T, d)`` codes with ``scales`` ``(T,)`` float32 (the :mod:`colbert.quantize` int8 codec: a
      token is ``codes · scale``): the codes are multiplied in integers with the query in 24-bit fixed point
      (per-query-token scale, error ≤ max|q_i|/16.6M per component, like float32's rounding), the token scale is
      applied before the max — on CPUs with AVX-512 VNNI; elsewhere each code is widened to ``code · scale`` in
      float32 inside the float kernel (exactly the decoded value, then scored as float32 storage).
    * numpy uint8 ``(T, ceil(d / 8))`` sign bits with ``dims = d`` (the binary codec, ``numpy.packbits`` order):
      tokens are ±1/√d; scored in integers against the same fixed-point query.

    Without a C compiler the same values are decoded block by block to float32 and scored with torch GEMMs.
    """

    tokens: npt.NDArray[np.generic] | torch.Tensor
    offsets: npt.NDArray[np.int64]
    scales: FloatArray | None = None
    dims: int | None = None

    def __post_init__(self) -> None:
        kind = _kind(self.tokens)
        if kind == "int8" and (self.scales is None or self.scales.shape != (self.tokens.shape[0],)):
            raise InvalidDocumentError("int8 tokens need scales of shape (T,)")
        if kind == "binary" and (self.dims is None or (self.dims + 7) // 8 != self.tokens.shape[1]):
            raise InvalidDocumentError("binary tokens (T, ceil(d/8)) need dims = d")

    @classmethod
    def from_list(cls, docs: Sequence[npt.ArrayLike], *, dtype: npt.DTypeLike | str = np.float32) -> PackedDocs:
        if dtype == "bfloat16":
            packed = cls.from_list(docs, dtype=np.float32)
            return cls(torch.from_numpy(np.asarray(packed.tokens)).to(torch.bfloat16), packed.offsets)
        arrays = [np.asarray(doc) for doc in docs]
        if not arrays:
            return cls(np.zeros((0, 0), dtype=dtype), np.zeros(1, dtype=np.int64))
        dims = {a.shape[1] if a.ndim == 2 else -1 for a in arrays}
        if len(dims) != 1 or -1 in dims:
            raise InvalidDocumentError(f"documents must be (n, d) arrays of one d, got shapes {_shapes(arrays)}")
        lengths = np.array([a.shape[0] for a in arrays], dtype=np.int64)  # (N,)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)  # (N + 1,)
        tokens = np.concatenate(arrays, axis=0).astype(dtype, copy=False)  # (T, d)
        return cls(np.ascontiguousarray(tokens), offsets)

    @classmethod
    def from_encoded(cls, counts: Sequence[int], blobs: Sequence[bytes], d: int, codec: Codec | str) -> PackedDocs:
        """Pages stored by :func:`colbert.quantize.encode` (page i: ``counts[i]`` rows in ``blobs[i]``), packed
        without decoding: the values scored are exactly ``decode(blob)``'s."""
        c = Codec(codec)
        counts_arr = np.asarray(counts, dtype=np.int64).reshape(-1)  # (P,)
        offsets = np.concatenate([[0], np.cumsum(counts_arr)]).astype(np.int64)  # (P + 1,)
        n_rows = int(offsets[-1])
        sizes = [len(b) for b in blobs]
        row_bytes = bytes_per_row(c, d)
        if len(sizes) != counts_arr.size or any(s != n * row_bytes for s, n in zip(sizes, counts, strict=True)):
            raise CodecError(f"{c.value} blobs do not hold counts × {bytes_per_row(c, d)} bytes")
        if c is Codec.INT8:  # blob: n float32 scales, then n × d codes
            scales = [np.frombuffer(b, dtype=np.float32, count=n) for b, n in zip(blobs, counts, strict=True)]
            codes = [np.frombuffer(b, dtype=np.int8, offset=4 * n) for b, n in zip(blobs, counts, strict=True)]
            cat_scales = np.concatenate([np.zeros(0, np.float32), *scales])  # (T,)
            cat_codes = np.concatenate([np.zeros(0, np.int8), *codes]).reshape(n_rows, d)  # (T, d)
            return cls(cat_codes, offsets, scales=cat_scales)
        joined = np.frombuffer(bytearray().join(blobs), dtype=np.uint8)  # one writable copy of the blobs
        if c is Codec.BINARY:
            return cls(joined.reshape(n_rows, (d + 7) // 8), offsets, dims=d)
        dtype = np.float32 if c is Codec.FLOAT32 else np.float16
        return cls(joined.view(dtype).reshape(n_rows, d), offsets)

    def __len__(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @property
    def dim(self) -> int:
        return int(self.dims) if self.dims is not None else int(self.tokens.shape[1])

    def decoded(self, lo: int, hi: int) -> torch.Tensor:
        """Rows [lo, hi) as float32 (T', d): the exact values that are scored."""
        tok = self.tokens[lo:hi]
        kind = _kind(self.tokens)
        if kind == "binary":
            bits = np.unpackbits(np.asarray(tok), axis=1)[:, : self.dim]  # (T', d) 0/1
            signs = bits.astype(np.float32) * 2.0 - 1.0
            return torch.from_numpy((signs / np.float32(np.sqrt(self.dim))).astype(np.float32))
        if kind == "int8":
            assert self.scales is not None
            return torch.from_numpy(np.asarray(tok).astype(np.float32) * self.scales[lo:hi, None])
        t = tok if isinstance(tok, torch.Tensor) else torch.from_numpy(np.asarray(tok))
        return t.to(torch.float32)


def _kind(tokens: npt.NDArray[np.generic] | torch.Tensor) -> str:
    if isinstance(tokens, torch.Tensor):
        if tokens.dtype == torch.bfloat16:
            return "bfloat16"
        return "float32" if tokens.dtype == torch.float32 else "float"
    dt = np.asarray(tokens).dtype
    if dt == np.int8:
        return "int8"
    if dt == np.uint8:
        return "binary"
    return {np.dtype(np.float32): "float32", np.dtype(np.float16): "float16"}.get(dt, "float")


def _shapes(arrays: Sequence[np.ndarray]) -> list[tuple[int, ...]]:
    return [tuple(a.shape) for a in arrays[:5]]


def _as_queries(queries: npt.ArrayLike | Sequence[npt.ArrayLike], mask: npt.ArrayLike | None) -> list[FloatArray]:
    if isinstance(queries, np.ndarray | torch.Tensor) and np.asarray(queries).ndim == 2:
        out = [np.asarray(queries, dtype=np.float32)]
    elif isinstance(queries, np.ndarray | torch.Tensor) and np.asarray(queries).ndim == 3:
        batch = np.asarray(queries, dtype=np.float32)  # (B, Lq, d)
        keep = np.ones(batch.shape[:2], bool) if mask is None else np.asarray(mask, dtype=bool)  # (B, Lq)
        if keep.shape != batch.shape[:2]:
            raise InvalidQueryError(f"query mask shape {keep.shape} does not match queries {batch.shape[:2]}")
        out = [batch[b][keep[b]] for b in range(batch.shape[0])]
    else:
        out = [np.asarray(q, dtype=np.float32) for q in queries]  # type: ignore[union-attr]
    for q in out:
        if q.ndim != 2:
            raise InvalidQueryError(f"each query must be an (Lq, d) array, got shape {q.shape}")
    return out


def _as_packed(
    documents: PackedDocs | npt.ArrayLike | Sequence[npt.ArrayLike], mask: npt.ArrayLike | None
) -> PackedDocs:
    if isinstance(documents, PackedDocs):
        return documents
    if isinstance(documents, np.ndarray) and documents.ndim == 3:
        keep = np.ones(documents.shape[:2], bool) if mask is None else np.asarray(mask, dtype=bool)  # (N, Ld)
        if keep.shape != documents.shape[:2]:
            raise InvalidDocumentError(f"document mask shape {keep.shape} does not match {documents.shape[:2]}")
        return PackedDocs.from_list([documents[i][keep[i]] for i in range(documents.shape[0])])
    return PackedDocs.from_list(list(documents))  # type: ignore[arg-type]


def maxsim(
    queries: npt.ArrayLike | Sequence[npt.ArrayLike],
    documents: PackedDocs | npt.ArrayLike | Sequence[npt.ArrayLike],
    *,
    query_mask: npt.ArrayLike | None = None,
    document_mask: npt.ArrayLike | None = None,
    block_tokens: int | None = None,
) -> FloatArray:
    """Exact MaxSim scores, shape (Q, N).

    ``queries``: one (Lq, d) array, a list of (Lq_i, d) arrays, or a padded (B, Lq, d) array with ``query_mask``.
    ``documents``: a list of (Ld_j, d) arrays, a :class:`PackedDocs`, or a padded (N, Ld, d) array with
    ``document_mask``. Stored codecs are scored without a float32 copy of the corpus (see :class:`PackedDocs`).
    """
    qs = _as_queries(queries, query_mask)
    docs = _as_packed(documents, document_mask)
    n_docs = len(docs)
    scores = np.zeros((len(qs), n_docs), dtype=np.float32)  # (Q, N)
    if not qs or n_docs == 0:
        return scores
    d = docs.dim
    for q in qs:
        if q.shape[1] != d:
            raise InvalidQueryError(f"query dimension {q.shape[1]} does not match documents' {d}")
    q_len = np.array([q.shape[0] for q in qs], dtype=np.int64)  # (Q,)
    q_all = np.ascontiguousarray(np.concatenate(qs, axis=0), dtype=np.float32)  # (ΣLq, d)
    q_starts = np.concatenate([[0], np.cumsum(q_len)[:-1]])  # (Q,)
    has_tokens = q_len > 0  # (Q,) empty queries score 0
    if not has_tokens.any():
        return scores
    scorer = _Scorer(q_all, docs)
    budget = block_tokens or max(1024, _MAX_SCORE_ELEMENTS // max(1, int(q_all.shape[0])))
    offsets = docs.offsets
    lengths = np.diff(offsets)  # (N,)
    first = 0
    while first < n_docs:
        # grow the block while it stays within the token budget (always at least one document)
        last = int(np.searchsorted(offsets, offsets[first] + budget, side="right")) - 1
        last = min(max(last, first + 1), n_docs)
        block = np.arange(first, last)
        nonempty = block[lengths[first:last] > 0]
        if nonempty.size:
            per_doc = scorer.block_max(first, last)[:, nonempty - first]  # (ΣLq, nb)
            per_query = np.add.reduceat(per_doc, q_starts[has_tokens], axis=0)  # (Q', nb)
            scores[np.ix_(has_tokens, nonempty)] = per_query  # empty queries keep 0
        first = last
    return scores


class _Scorer:
    """All query tokens against blocks of one PackedDocs: the compiled kernel when available, else torch."""

    def __init__(self, q_all: FloatArray, docs: PackedDocs) -> None:
        self.q_all, self.docs, self.kind = q_all, docs, _kind(docs.tokens)
        self.kernel = _kernel.kernel()
        if self.kernel is None:
            _kernel.fallback_used()
        self.int8_fixed = self.kind == "int8" and self.kernel is not None and not self.kernel.int8_as_float
        n, d = q_all.shape
        self.n_lanes = -(-n // _LANES) * _LANES
        padded = np.zeros((self.n_lanes, d), dtype=np.float32)  # (n_lanes, d)
        padded[:n] = q_all
        if self.kind == "binary":
            self.lut = _sign_tables(padded, docs.dim, self.kernel.lut_lanes if self.kernel else _LANES)
        elif self.int8_fixed:
            self._prepare_fixed_point(padded)
        else:  # float storage, and int8 widened to its decoded values where the integer kernel has no VNNI
            self.qt = np.ascontiguousarray(padded.reshape(-1, _LANES, d).transpose(0, 2, 1))  # (blocks, d, 32)

    def _prepare_fixed_point(self, padded: FloatArray) -> None:
        """Q = round(q / s) with s = max|q_i| / (127 · 65,536) per token (24-bit fixed point, as fine as float32's
        significand), split into signed bytes Q = 65,536·hi + 256·mid + lo."""
        d = padded.shape[1]
        d4 = -(-d // 4)
        top = np.abs(padded).max(axis=1).astype(np.float64)  # (n_lanes,)
        self.q_scale: npt.NDArray[np.float64] = np.where(top > 0, top / _Q_FIXED, 1.0)  # (n_lanes,)
        fixed = np.zeros((self.n_lanes, d4 * 4), dtype=np.int64)  # (n_lanes, d4·4); padding dims are 0
        fixed[:, :d] = np.clip(np.rint(padded / self.q_scale[:, None]), -_Q_FIXED, _Q_FIXED)
        lo = (fixed + 128) % 256 - 128  # [-128, 127]
        rest = (fixed - lo) // 256
        mid = (rest + 128) % 256 - 128
        hi = (rest - mid) // 256  # [-127, 127]
        limbs = np.stack([hi, mid, lo], axis=0).astype(np.int8)  # (3, n_lanes, d4·4)
        limbs = limbs.reshape(3, -1, _LANES, d4, 4).transpose(1, 3, 0, 2, 4)  # (blocks, d4, 3, 32, 4)
        self.qi = np.ascontiguousarray(limbs)
        offset = 128  # int8 codes enter the kernel as unsigned bytes, +128
        limb_sums = np.stack([hi, mid, lo], axis=0).sum(axis=2)  # (3, n_lanes)
        corr = (offset * limb_sums).astype(np.int32).reshape(3, -1, _LANES).transpose(1, 0, 2)  # (blocks, 3, 32)
        self.corr = np.ascontiguousarray(corr)

    def block_max(self, first: int, last: int) -> FloatArray:
        """(ΣLq, last − first): per query token, the max similarity over each document's tokens (empty: 0)."""
        offsets = self.docs.offsets[first : last + 1]
        lo, hi = int(offsets[0]), int(offsets[-1])
        if self.kernel is None:
            return self._torch_block_max(lo, hi, offsets - lo)
        local = np.ascontiguousarray(offsets - lo, dtype=np.int64)  # (nb + 1,)
        out = np.empty((last - first, self.n_lanes), dtype=np.float32)  # (nb, n_lanes)
        d, k = self.docs.dim, self.kernel
        ptr = _ptr
        if self.kind == "binary":
            bits = np.ascontiguousarray(self.docs.tokens[lo:hi])  # (T', ceil(d/8)) uint8

            def run_bits(p0: int, p1: int) -> None:
                k.maxsim_lut(
                    ptr(self.lut), None, 0, self.n_lanes, bits.shape[1], None, ptr(bits), ptr(local), p0, p1, ptr(out)
                )

            _kernel.run_pages(local, run_bits)
            return np.ascontiguousarray(out[:, : self.q_all.shape[0]].T)
        if self.int8_fixed:
            tokens = np.ascontiguousarray(self.docs.tokens[lo:hi])
            scales = None if self.docs.scales is None else np.ascontiguousarray(self.docs.scales[lo:hi])
            scratch_bytes = 4 * (-(-d // 4) * 4) + 64

            def run_int(p0: int, p1: int) -> None:
                scratch = np.empty(scratch_bytes, dtype=np.uint8)
                k.maxsim_int(
                    ptr(self.qi), self.n_lanes, d, ptr(tokens), None if scales is None else ptr(scales), 0,
                    ptr(self.corr), ptr(local), p0, p1, ptr(out), ptr(scratch),
                )  # fmt: skip

            _kernel.run_pages(local, run_int)
            best = out[:, : self.q_all.shape[0]].T.astype(np.float64)  # (ΣLq, nb)
            return (best * self.q_scale[: self.q_all.shape[0], None]).astype(np.float32)
        return self._float_block_max(lo, hi, local, out)

    def _float_block_max(self, lo: int, hi: int, local: npt.NDArray[np.int64], out: FloatArray) -> FloatArray:
        """``maxsim_float`` over rows [lo, hi): float storage widened to float32 in the kernel (int8: code · scale)."""
        assert self.kernel is not None
        k, d, ptr = self.kernel, self.docs.dim, _ptr
        raw = self.docs.tokens[lo:hi]
        scales = None
        if isinstance(raw, torch.Tensor):
            kind_id = 2 if raw.dtype == torch.bfloat16 else 0
            raw_np = raw.contiguous().view(torch.int16).numpy() if kind_id == 2 else raw.to(torch.float32).numpy()
        elif self.kind == "int8":
            assert self.docs.scales is not None
            kind_id, raw_np, scales = 3, raw, np.ascontiguousarray(self.docs.scales[lo:hi], dtype=np.float32)
        else:
            kind_id = 1 if raw.dtype == np.float16 else 0
            raw_np = raw if kind_id == 1 else np.asarray(raw, dtype=np.float32)
        tokens_f = np.ascontiguousarray(raw_np)

        def run_float(p0: int, p1: int) -> None:
            scratch = np.empty(16 * d + 16, dtype=np.float32)  # ≥ TILE rows (see the kernel)
            k.maxsim_float(
                ptr(self.qt), self.n_lanes, d, ptr(tokens_f), None if scales is None else ptr(scales), kind_id,
                ptr(local), p0, p1, ptr(out), ptr(scratch),
            )  # fmt: skip

        _kernel.run_pages(local, run_float)
        return np.ascontiguousarray(out[:, : self.q_all.shape[0]].T)

    def _torch_block_max(self, lo: int, hi: int, bounds: np.ndarray) -> FloatArray:
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
                sim = torch.mm(q, self.docs.decoded(lo + a, lo + b).T)  # (ΣLq, Tr)
                if (run == run[0]).all():  # equal-length pages: one strided max, no gather
                    out[:, first:last] = sim.view(sim.shape[0], run.size, int(run[0])).amax(dim=-1).numpy()
                else:
                    nonempty = np.flatnonzero(run > 0)
                    starts = bounds[first:last][nonempty] - a
                    out[:, first + nonempty] = np.maximum.reduceat(sim.numpy(), starts, axis=1)
            first = last
        return out


_BYTE_SIGNS = np.where(np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1), 1.0, -1.0)  # (256, 8) ±1


def _sign_tables(padded: FloatArray, d: int, lanes: int) -> FloatArray:
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


def _ptr(a: np.ndarray) -> int:
    return int(a.ctypes.data)


def similarity_map(query: npt.ArrayLike, page: npt.ArrayLike) -> FloatArray:
    """Per-query-token similarity over a page's tokens, shape (Lq, Ld). Slice the page's image rows and reshape
    them to the merged patch grid to see which regions each query token matched."""
    q = np.asarray(query, dtype=np.float32)  # (Lq, d)
    p = np.asarray(page, dtype=np.float32)  # (Ld, d)
    if q.ndim != 2 or p.ndim != 2 or q.shape[1] != p.shape[1]:
        raise InvalidQueryError(f"expected (Lq, d) and (Ld, d) arrays of one d, got {q.shape} and {p.shape}")
    return (q @ p.T).astype(np.float32)  # (Lq, Ld)
