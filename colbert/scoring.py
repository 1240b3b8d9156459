"""Exact late-interaction (ColBERT MaxSim) scoring with bounded memory, and similarity maps.

MaxSim(q, D) = Σ_i max_j ⟨q_i, d_j⟩ over the query's tokens i and the document's tokens j.

The documents are packed into one contiguous token matrix with offsets (:class:`PackedDocs`), in their storage
codec (float32, float16, bfloat16, int8 codes + scales, binary sign bits). A fused compiled kernel
(``_maxsim_kernel.c``, see :mod:`colbert._kernel`) reads each stored token once and keeps a running max per query
token in registers, so no similarity matrix is built and no float32 copy of float16/int8/binary pages is made. The
scores are exact with respect to the stored values to float32 precision (int8: the query enters in 24-bit fixed
point, as fine as float32's significand; binary: the query's per-byte ±q sums are looked up in 256-entry tables built
per query, summed in float64, rounded once). Without a C compiler, runs of a few pages are decoded to float32 and
scored with torch GEMMs, a segmented max per document and a segmented sum per query. Memory never depends on the
corpus size: :mod:`colbert.query_scorer` (the prepared query, the block walk and the kernels' calls; use its
:class:`~colbert.query_scorer.QueryScorer` to score one query against many batches) states the bounds.

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

from colbert.errors import CodecError, InvalidDocumentError, InvalidQueryError
from colbert.quantize import Codec, bytes_per_row
from colbert.query_scorer import QueryScorer

__all__ = ["PackedDocs", "maxsim", "similarity_map"]

FloatArray = npt.NDArray[np.float32]


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
        kind = self.kind
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
    def kind(self) -> str:
        """The storage: "float32", "float16", "bfloat16", "int8", "binary" or "float" (another float dtype)."""
        return _kind(self.tokens)

    @property
    def dim(self) -> int:
        return int(self.dims) if self.dims is not None else int(self.tokens.shape[1])

    def decoded(self, lo: int, hi: int) -> torch.Tensor:
        """Rows [lo, hi) as float32 (T', d): the exact values that are scored."""
        tok = self.tokens[lo:hi]
        kind = self.kind
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
    ``block_tokens``: score blocks of at most that many tokens (at least one document) instead of the default
    blocks (:mod:`colbert.query_scorer`); the scores are the same.
    """
    return QueryScorer(_as_queries(queries, query_mask)).maxsim(
        _as_packed(documents, document_mask), block_tokens=block_tokens
    )


def similarity_map(query: npt.ArrayLike, page: npt.ArrayLike) -> FloatArray:
    """Per-query-token similarity over a page's tokens, shape (Lq, Ld). Slice the page's image rows and reshape
    them to the merged patch grid to see which regions each query token matched."""
    q = np.asarray(query, dtype=np.float32)  # (Lq, d)
    p = np.asarray(page, dtype=np.float32)  # (Ld, d)
    if q.ndim != 2 or p.ndim != 2 or q.shape[1] != p.shape[1]:
        raise InvalidQueryError(f"expected (Lq, d) and (Ld, d) arrays of one d, got {q.shape} and {p.shape}")
    return (q @ p.T).astype(np.float32)  # (Lq, Ld)
