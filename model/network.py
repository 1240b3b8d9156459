"""One forward pass of jina-embeddings-v4 over prepared rows: collate, M-RoPE positions, backbone, projector.

Rows may mix texts and images and tasks. Right padding; positions from the stock ``get_rope_index`` (images) or
``cumsum(mask) - 1`` (text-only batches, the same values); causal attention with the padding mask; the last
hidden state after the final norm; never the LM head. Each row's task LoRA is applied by per-row routing.

A batch whose rows differ in length runs packed (``model.packing``): the decoder sees only the real tokens, laid
end to end, with the same positions and attention confined to each row; the result is scattered back to the
padded ``(B, L, H)`` layout, pads zero. Packing needs the fused attention layers (``model.lora``), which
``Encoder.from_pretrained`` installs; on stock modules every batch runs padded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from model.adapters import route_rows
from model.checkpoint import JinaV4Backbone
from model.lora import FusedTextAttention
from model.packing import packed
from model.processor import PreparedInput

__all__ = ["Batch", "Network"]


@dataclass(frozen=True, slots=True)
class Batch:
    """Collated rows: ``input_ids`` / ``attention_mask`` (B, L); ``lengths`` (B,)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    lengths: list[int]
    pixel_values: torch.Tensor | None
    image_grid_thw: torch.Tensor | None
    tasks: list[str]


class Network:
    """The torch module and how to run it; owned by one thread at a time."""

    def __init__(self, module: JinaV4Backbone, *, pad_token_id: int, image_token_id: int, device: torch.device):
        self.module = module.eval()
        self.pad_token_id = pad_token_id
        self.image_token_id = image_token_id
        self.device = device
        layers = list(getattr(module.model.language_model, "layers", []))
        # packing is on when every text attention layer can attend within packed rows (the fused ones)
        self.pack_rows = bool(layers) and all(isinstance(layer.self_attn, FusedTextAttention) for layer in layers)

    def collate(self, items: Sequence[PreparedInput]) -> Batch:
        lengths = [item.num_tokens for item in items]
        longest = max(lengths)
        ids = torch.full((len(items), longest), self.pad_token_id, dtype=torch.int64)  # (B, L)
        mask = torch.zeros((len(items), longest), dtype=torch.int64)  # (B, L)
        for row, item in enumerate(items):
            ids[row, : lengths[row]] = item.input_ids
            mask[row, : lengths[row]] = 1
        images = [item for item in items if item.pixel_values is not None]
        pixels = torch.cat([item.pixel_values for item in images]) if images else None  # type: ignore[misc]
        grids = torch.cat([item.image_grid_thw for item in images]) if images else None  # type: ignore[misc]
        return Batch(ids, mask, lengths, pixels, grids, [item.spec.task.value for item in items])

    def positions(self, batch: Batch) -> torch.Tensor:
        """(3, B, L) M-RoPE positions (t, h, w)."""
        if batch.image_grid_thw is None:
            pos = (batch.attention_mask.cumsum(-1) - 1).clamp_min(0)  # (B, L)
            return pos.unsqueeze(0).expand(3, -1, -1)
        token_types = (batch.input_ids == self.image_token_id).to(torch.int32)  # (B, L) 1 = image
        rope: Any = self.module.model.get_rope_index
        pos, _ = rope(
            batch.input_ids, token_types, image_grid_thw=batch.image_grid_thw, attention_mask=batch.attention_mask
        )
        positions: torch.Tensor = pos  # (3, B, L)
        return positions

    @torch.inference_mode()
    def hidden_states(self, batch: Batch) -> torch.Tensor:
        """(B, L, H) last hidden states (after the final norm), in the model's dtype; zeros at padding when packed."""
        dev = self.device
        ids, positions = batch.input_ids, self.positions(batch)  # (B, L), (3, B, L)
        mask: Any = batch.attention_mask.to(dev)
        layout: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        real = None
        if self.pack_rows and min(batch.lengths) < max(batch.lengths):
            real = batch.attention_mask.to(torch.bool)  # (B, L); right padding: row-major order = packed order
            ids, positions = ids[real][None], positions[:, real][:, None]  # (1, T), (3, 1, T)
            # no mask at all (a prepared mapping, so that none is built): attention stays within rows by segments
            mask = dict.fromkeys(self.module.model.language_model.config.layer_types, None)
            layout = packed(batch.lengths)
        with route_rows(self.module, batch.tasks, None if real is None else batch.lengths), layout:
            out = self.module.model(
                input_ids=ids.to(dev),
                attention_mask=mask,
                position_ids=positions.to(dev),
                pixel_values=None if batch.pixel_values is None else batch.pixel_values.to(dev),
                image_grid_thw=None if batch.image_grid_thw is None else batch.image_grid_thw.to(dev),
                use_cache=False,
            )
        hidden: torch.Tensor = out.last_hidden_state  # (B, L, H), or (1, T, H) packed
        if real is None:
            return hidden
        padded = hidden.new_zeros((*batch.input_ids.shape, hidden.shape[-1]))  # (B, L, H)
        padded[real.to(dev)] = hidden[0]
        return padded

    @torch.inference_mode()
    def project(self, hidden: torch.Tensor, tasks: Sequence[str]) -> torch.Tensor:
        """(B, L, H) → (B, L, 128) multi-vector projection with each row's task LoRA (not normalised)."""
        with route_rows(self.module, tasks):
            projected: torch.Tensor = self.module.multi_vector_projector(hidden)
        return projected
