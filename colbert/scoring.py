"""Exact late-interaction (ColBERT MaxSim) scoring with bounded memory, and similarity maps.

MaxSim(q, D) = Σ_i max_j ⟨q_i, d_j⟩ over the query's tokens i and the document's tokens j.

The documents are packed into one contiguous token matrix with offsets (:class:`PackedDocs`). Scoring walks it in
blocks of at most ``block_tokens`` tokens: one GEMM of all query tokens against the block, a segmented max per
document (``numpy.maximum.reduceat``), a segmented sum per query. The (Q × N × Lq × Ld) block is never built; the
largest temporary is ΣLq × block_tokens floats (32 × 65,536 × 4 B = 8 MiB by default), whatever the corpus size.

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

from colbert.errors import InvalidDocumentError, InvalidQueryError

__all__ = ["PackedDocs", "maxsim", "similarity_map"]

FloatArray = npt.NDArray[np.float32]
_MAX_SCORE_ELEMENTS = 1 << 21  # bound on ΣLq × block tokens per GEMM (8 MiB of float32 scores)


@dataclass(frozen=True, slots=True)
class PackedDocs:
    """N documents as one (T, d) token matrix plus (N + 1,) offsets; doc i is ``tokens[offsets[i]:offsets[i + 1]]``.
    Empty documents are allowed (they score 0).

    ``tokens``: numpy float32 (scored exactly), numpy float16 (scored in float32: exact up to the storage
    rounding), or a torch bfloat16 tensor (``dtype="bfloat16"``; scored with bf16 GEMMs, ~5× the fp32 GEMM rate
    on AVX-512 BF16 CPUs; each similarity rounded to bf16, so a 32-token score moves by ≲ 0.02).
    """

    tokens: npt.NDArray[np.floating] | torch.Tensor
    offsets: npt.NDArray[np.int64]

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

    def __len__(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @property
    def dim(self) -> int:
        return int(self.tokens.shape[1])


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
    ``document_mask``. Float16 documents are scored without a float32 copy of the corpus (block by block).
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
    q_all = torch.from_numpy(np.ascontiguousarray(np.concatenate(qs, axis=0)))  # (ΣLq, d)
    q_starts = np.concatenate([[0], np.cumsum(q_len)[:-1]])  # (Q,)
    has_tokens = q_len > 0  # (Q,) empty queries score 0
    if not has_tokens.any():
        return scores
    budget = block_tokens or max(1024, _MAX_SCORE_ELEMENTS // max(1, int(q_all.shape[0])))
    offsets = docs.offsets
    lengths = np.diff(offsets)  # (N,)
    first = 0
    while first < n_docs:
        # grow the block while it stays within the token budget (always at least one document)
        last = int(np.searchsorted(offsets, offsets[first] + budget, side="right")) - 1
        last = min(max(last, first + 1), n_docs)
        lo, hi = int(offsets[first]), int(offsets[last])
        block = np.arange(first, last)
        nonempty = block[lengths[first:last] > 0]
        if nonempty.size and hi > lo:
            per_doc = _block_max(q_all, docs.tokens[lo:hi], offsets[first : last + 1] - lo, nonempty - first)
            per_query = np.add.reduceat(per_doc, q_starts[has_tokens], axis=0)  # (Q', nb)
            scores[np.ix_(has_tokens, nonempty)] = per_query  # empty queries keep 0
        first = last
    return scores


def _block_max(
    q_all: torch.Tensor, tokens: npt.NDArray[np.floating] | torch.Tensor, bounds: np.ndarray, nonempty: np.ndarray
) -> FloatArray:
    """(ΣLq, nb) max over each non-empty document's tokens of the query-token similarities.

    ``bounds`` (n + 1,) are the block's document offsets from 0; ``nonempty`` indexes its non-empty documents.
    bfloat16 tokens are scored in bfloat16 (AVX-512 BF16 GEMM, float32 accumulation, scores rounded to bf16);
    anything else in float32.
    """
    tok = tokens if isinstance(tokens, torch.Tensor) else torch.from_numpy(np.asarray(tokens))  # (Tb, d)
    if tok.dtype == torch.bfloat16:
        sim = torch.mm(q_all.to(torch.bfloat16), tok.T)  # (ΣLq, Tb) bf16
    else:
        sim = torch.mm(q_all, tok.to(torch.float32).T)  # (ΣLq, Tb) fp32
    lengths = np.diff(bounds)  # (n,)
    if lengths.size and (lengths == lengths[0]).all():  # equal-length pages: one strided max, no gather
        per_doc = sim.view(sim.shape[0], lengths.size, int(lengths[0])).amax(dim=-1)  # (ΣLq, n)
        return per_doc.to(torch.float32).numpy()
    sim32 = sim.to(torch.float32).numpy()  # (ΣLq, Tb)
    return np.maximum.reduceat(sim32, bounds[nonempty], axis=1)  # (ΣLq, nb)


def similarity_map(query: npt.ArrayLike, page: npt.ArrayLike) -> FloatArray:
    """Per-query-token similarity over a page's tokens, shape (Lq, Ld). Slice the page's image rows and reshape
    them to the merged patch grid to see which regions each query token matched."""
    q = np.asarray(query, dtype=np.float32)  # (Lq, d)
    p = np.asarray(page, dtype=np.float32)  # (Ld, d)
    if q.ndim != 2 or p.ndim != 2 or q.shape[1] != p.shape[1]:
        raise InvalidQueryError(f"expected (Lq, d) and (Ld, d) arrays of one d, got {q.shape} and {p.shape}")
    return (q @ p.T).astype(np.float32)  # (Lq, Ld)
