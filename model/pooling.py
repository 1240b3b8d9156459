"""Pooling rules of jina-embeddings-v4 (the reference implementation's), as small pure functions.

- Single vector: mean of the last hidden state over all non-pad tokens for text, over ``<|vision_start|>`` …
  ``<|vision_end|>`` inclusive for images; L2-normalised. Each row is pooled by its own kind.
- Matryoshka: slice to one of the trained sizes, then L2-normalise again.
- Multi-vector: the projected tokens, L2-normalised per token, pads removed.

>>> truncate(np.array([[3.0, 4.0, 12.0]], dtype=np.float32), 2, allowed=(2, 3))
array([[0.6, 0.8]], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from model.errors import InvalidDimensionError

__all__ = ["dense_mask", "l2_normalize", "masked_mean", "truncate"]


def dense_mask(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, vision_start_id: int, vision_end_id: int
) -> torch.Tensor:
    """(B, L) float mask of the tokens each row's single vector averages: every non-pad token for a text row,
    ``vision_start`` … ``vision_end`` inclusive for a row that contains an image."""
    positions = torch.arange(input_ids.shape[1], device=input_ids.device)  # (L,)
    mask = attention_mask.to(torch.bool)  # (B, L)
    starts = input_ids == vision_start_id  # (B, L)
    is_image = starts.any(dim=1)  # (B,)
    if bool(is_image.any()):
        first_start = torch.where(starts, positions, input_ids.shape[1]).min(dim=1).values  # (B,)
        ends = input_ids == vision_end_id  # (B, L)
        first_end = torch.where(ends, positions, input_ids.shape[1]).min(dim=1).values  # (B,)
        span = (positions >= first_start[:, None]) & (positions <= first_end[:, None])  # (B, L)
        mask = torch.where(is_image[:, None], span & mask, mask)  # (B, L)
    return mask.to(torch.float32)


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, L, H) states and a (B, L) mask → (B, H) float32 means (summed in float32)."""
    weights = mask.to(torch.float32).unsqueeze(-1)  # (B, L, 1)
    total = (hidden.to(torch.float32) * weights).sum(dim=1)  # (B, H)
    return total / weights.sum(dim=1).clamp_min(1.0)  # (B, H)


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """Rows (last axis) scaled to unit L2 norm, in float32."""
    return F.normalize(x.to(torch.float32), p=2.0, dim=-1)


def truncate(vectors: npt.ArrayLike, dim: int, allowed: Sequence[int]) -> npt.NDArray[np.float32]:
    """Matryoshka truncation of (..., D) vectors to ``dim`` ∈ ``allowed``: slice, then L2-normalise again."""
    if dim not in allowed:
        raise InvalidDimensionError(f"dimension {dim} is not one of the trained Matryoshka sizes {list(allowed)}")
    x = np.asarray(vectors, dtype=np.float32)[..., :dim]  # (..., dim)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)  # (..., 1)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)
