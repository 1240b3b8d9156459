"""Exact MaxSim over residual-coded pages (:mod:`colbert.codebook`), scored without decoding them.

A stored token decodes to ``centroid[id] + value[dim, code_dim]`` per dimension, so for a float query token q

    ⟨q, token⟩ = ⟨q, centroid[id]⟩ + Σ_j LUT_q[j, byte_j]

where byte j packs ``PER_BYTE[levels]`` dimensions' codes and ``LUT_q[j, v]`` is the sum over those dimensions of
``q[dim] · value[dim, code(v)]``. Per query, :class:`ResidualScorer` builds the centroid table (Lq × K) and the byte
tables (Lq × bytes × 256) once; the C kernel (``maxsim_lut`` in ``_maxsim_lut.c``, the one byte-table kernel it
shares with the binary codec) then reads each stored token once and adds ``1 + bytes`` table rows of 32 query lanes
(FAISS fast-scan style, in float32: exact with respect to the stored values up to float32 summation order). Without
the kernel, pages are decoded to float32 a run at a time and scored by :func:`colbert.scoring.maxsim` (same values
within float tolerance).

At d = 128, 2 bits: 33 table lookups per (token, query lane) instead of 128 multiply-adds, and 34 bytes read per
token instead of 256 (float16).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from colbert import _kernel
from colbert.codebook import Codebook, place_values
from colbert.errors import CodecError, InvalidQueryError
from colbert.scoring import PackedDocs, maxsim

__all__ = ["ResidualDocs", "ResidualScorer", "residual_maxsim"]

FloatArray = npt.NDArray[np.float32]
_LANES = 32
_FALLBACK_RUN_TOKENS = 16384  # fallback: tokens decoded to float32 at a time (8 MiB at d = 128)


@dataclass(frozen=True, slots=True)
class ResidualDocs:
    """N residual-coded pages: ``ids`` (T,) uint16, ``codes`` (T, code bytes) uint8, ``offsets`` (N + 1,)."""

    ids: npt.NDArray[np.uint16]
    codes: npt.NDArray[np.uint8]
    offsets: npt.NDArray[np.int64]

    @classmethod
    def from_encoded(cls, counts: Sequence[int], blobs: Sequence[bytes], book: Codebook) -> ResidualDocs:
        """Pages as :meth:`Codebook.encode` stored them (page i: ``counts[i]`` tokens in ``blobs[i]``)."""
        if len(counts) != len(blobs):
            raise CodecError(f"{len(counts)} counts for {len(blobs)} blobs")
        parts = [book.split(b, int(n)) for n, b in zip(counts, blobs, strict=True)]
        offsets = np.concatenate([[0], np.cumsum(np.asarray(counts, dtype=np.int64))]).astype(np.int64)
        ids = np.concatenate([np.zeros(0, "<u2"), *(p[0] for p in parts)]).astype(np.uint16)  # (T,)
        codes = np.concatenate([np.zeros((0, book.code_bytes), np.uint8), *(p[1] for p in parts)])  # (T, nb)
        return cls(np.ascontiguousarray(ids), np.ascontiguousarray(codes), offsets)

    def __len__(self) -> int:
        return int(self.offsets.shape[0] - 1)


class ResidualScorer:
    """One query's tables against one codebook (module docstring); reusable across blocks of pages."""

    def __init__(self, query: npt.ArrayLike, book: Codebook) -> None:
        q = np.ascontiguousarray(query, dtype=np.float32)  # (Lq, d)
        if q.ndim != 2 or q.shape[1] != book.dim:
            raise InvalidQueryError(f"query must be an (Lq, {book.dim}) array, got shape {q.shape}")
        self.query, self.book = q, book
        self.kernel = _kernel.kernel()
        if self.kernel is None:
            _kernel.fallback_used()
            return
        self.n_lanes = max(1, -(-q.shape[0] // _LANES)) * _LANES
        padded = np.zeros((self.n_lanes, book.dim), dtype=np.float32)  # (n_lanes, d)
        padded[: q.shape[0]] = q
        lanes = self.kernel.lut_lanes  # the kernel's tables come in blocks of this many query lanes
        blocks = self.n_lanes // lanes
        ct = padded @ book.centroids.T  # (n_lanes, K)
        self.ct = _kernel.aligned(ct.reshape(blocks, lanes, book.k).transpose(0, 2, 1))  # (blocks, K, lanes)
        self.lut = _byte_tables(padded, book).reshape(blocks, lanes, book.code_bytes, 256)
        self.lut = _kernel.aligned(self.lut.transpose(0, 2, 3, 1))  # (blocks, nb, 256, lanes)

    def scores(self, docs: ResidualDocs) -> FloatArray:
        """MaxSim of the query against each page, (N,) float32 (empty pages and an empty query score 0)."""
        n_pages, lq = len(docs), self.query.shape[0]
        if n_pages == 0 or lq == 0:
            return np.zeros(n_pages, dtype=np.float32)
        if self.kernel is None:
            return self._fallback(docs)
        out = np.empty((n_pages, self.n_lanes), dtype=np.float32)  # (N, n_lanes)
        k, book = self.kernel, self.book

        def run(p0: int, p1: int) -> None:
            k.maxsim_lut(
                _ptr(self.lut), _ptr(self.ct), book.k, self.n_lanes, book.code_bytes, _ptr(docs.ids),
                _ptr(docs.codes), _ptr(docs.offsets), p0, p1, _ptr(out),
            )  # fmt: skip

        _kernel.run_pages(docs.offsets, run)
        total: FloatArray = out[:, :lq].sum(axis=1, dtype=np.float32)
        return total

    def _fallback(self, docs: ResidualDocs) -> FloatArray:
        """Decode runs of pages to float32 and score them with :func:`colbert.scoring.maxsim`."""
        out = np.zeros(len(docs), dtype=np.float32)
        offsets, first = docs.offsets, 0
        while first < len(docs):
            last = int(np.searchsorted(offsets, offsets[first] + _FALLBACK_RUN_TOKENS, side="right")) - 1
            last = min(max(last, first + 1), len(docs))
            lo, hi = int(offsets[first]), int(offsets[last])
            tokens = self.book.decode_parts(docs.ids[lo:hi], docs.codes[lo:hi])  # (run tokens, d)
            packed = PackedDocs(tokens, (offsets[first : last + 1] - lo).astype(np.int64))
            out[first:last] = maxsim(self.query, packed)[0]
            first = last
        return out


def _byte_tables(q: FloatArray, book: Codebook) -> FloatArray:
    """(n, code bytes, 256): for each query row, byte position j and byte value v, Σ over the byte's dimensions of
    q[dim] · value[dim, code of dim in v] (dimensions past d contribute 0); for product quantization, the dot
    product of the query's subvector j with sub-centroid v of subvector j."""
    if book.width > 1:
        m, w = book.code_bytes, book.width
        qp = np.zeros((q.shape[0], m * w), dtype=np.float32)  # (n, m·w) zero-padded past d
        qp[:, : book.dim] = q
        pq: FloatArray = np.einsum("nmw,mvw->nmv", qp.reshape(q.shape[0], m, w), book.values).astype(np.float32)
        return pq  # (n, m, 256)
    levels, place = book.levels, place_values(book.levels)
    per = place.shape[0]
    width = book.code_bytes * per
    values = np.zeros((width, levels), dtype=np.float32)  # (width, levels)
    values[: book.dim] = book.values
    qp = np.zeros((q.shape[0], width), dtype=np.float32)  # (n, width)
    qp[:, : book.dim] = q
    qv = (qp[:, :, None] * values[None]).reshape(q.shape[0], book.code_bytes, per, levels)  # (n, nb, per, levels)
    # byte v's codes are its base-`levels` digits, slot 0 the most significant: the (levels,) * per grid of
    # per-slot sums, flattened, is the table over v; summed slot by slot in float32 (no gathers). Byte values
    # ≥ levels^per (ternary: 243..255) never occur: their entries stay 0.
    out = np.zeros((q.shape[0], book.code_bytes) + (1,) * per, dtype=np.float32)
    for slot in range(per):
        shape = [q.shape[0], book.code_bytes] + [1] * per
        shape[2 + slot] = levels
        out = out + qv[:, :, slot, :].reshape(shape)  # broadcast over the other slots' digits
    table = np.zeros((q.shape[0], book.code_bytes, 256), dtype=np.float32)
    table[:, :, : levels**per] = out.reshape(q.shape[0], book.code_bytes, levels**per)
    return table


def residual_maxsim(query: npt.ArrayLike, docs: ResidualDocs, book: Codebook) -> FloatArray:
    """MaxSim of one query (Lq, d) against residual-coded pages, (N,) float32 (module docstring)."""
    return ResidualScorer(query, book).scores(docs)


def _ptr(a: np.ndarray) -> int:
    return int(a.ctypes.data)
