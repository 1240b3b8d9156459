"""One forward pass of jina-embeddings-v4 over prepared rows: collate, M-RoPE positions, backbone, projector.

Rows may mix texts and images and tasks. Right padding; positions from the stock ``get_rope_index`` (images) or
``cumsum(mask) - 1`` (text-only batches, the same values); causal attention with the padding mask; the last
hidden state after the final norm; never the LM head. Each row's task LoRA is applied by per-row routing.

The fused path (``model.speedups`` installed the fused layers) runs :mod:`model.forward`: a batch whose rows differ
in length runs packed (``model.packing``): the decoder sees only the real tokens, laid end to end, with the same
positions and attention confined to each row; the result is scattered back to the padded ``(B, L, H)`` layout, pads
zero. The routing and the packed segments are arguments of that forward. With CUDA graphs on (``model.graphs``,
a GPU), a text-only batch that fits a token bucket replays its bucket's captured forward instead. On stock modules
(``ForwardOptions.stock()``) the stock ``Qwen2_5_VLModel`` runs every batch padded, routed through PEFT.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from model import _internals
from model.adapters import route_rows
from model.checkpoint import JinaV4Backbone
from model.compiled import compiled_kernels
from model.forward import Layout, embed_inputs, text_forward, uses_fused_layers
from model.graphs import CudaCapture, GraphCapture, GraphRunner, buckets_up_to
from model.lora import fused_projection
from model.options import ForwardOptions
from model.packing import Segments
from model.processor import PreparedInput
from model.routing import Routing

__all__ = ["Batch", "Network"]

_LOG = logging.getLogger("jev4.model")


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

    def __init__(
        self,
        module: JinaV4Backbone,
        *,
        pad_token_id: int,
        image_token_id: int,
        device: torch.device,
        options: ForwardOptions | None = None,
    ):
        self.module = module.eval()
        self.pad_token_id = pad_token_id
        self.image_token_id = image_token_id
        self.device = device
        self.options = options or ForwardOptions()
        # the fused decoder loop (model.forward) when the fused layers are installed; else the stock module
        self.fused = uses_fused_layers(module.model.language_model)
        self.pack_rows = self.fused and self.options.pack_rows
        # the compiled path fuses each residual add with the next norm (model.compiled); None: eager
        self.add_norm = compiled_kernels().add_norm if self.options.compile and self.fused else None
        # short text batches as CUDA graphs (model.graphs); None: every batch eager
        self.graphs: GraphRunner | None = None
        if self.options.cuda_graphs:
            if device.type == "cuda":
                self.enable_graphs(CudaCapture())
            else:
                _LOG.warning(
                    "CUDA graphs asked for (JEV4_CUDA_GRAPHS / ForwardOptions.cuda_graphs) but the model runs on %s: "
                    "every batch runs eager",
                    device,
                )

    def enable_graphs(self, capture: GraphCapture) -> GraphRunner:
        """Run text-only batches of at most ``options.graph_max_tokens`` tokens through a :class:`GraphRunner`
        (``capture``: :class:`~model.graphs.CudaCapture` on a GPU; the tests pass a stand-in)."""
        if not self.fused:
            raise ValueError("CUDA graphs need the fused text layers (ForwardOptions.fuse_text)")
        language_model = self.module.model.language_model
        q_proj = language_model.get_submodule("layers.0.self_attn.q_proj")
        tasks = tuple(sorted(_internals.lora_adapters(q_proj))) if _internals.is_lora_layer(q_proj) else ()
        self.graphs = GraphRunner.for_model(
            language_model,
            self.module.model.get_input_embeddings(),
            buckets=buckets_up_to(self.options.graph_max_tokens),
            device=self.device,
            pad_token_id=self.pad_token_id,
            task_names=tasks,
            add_norm=self.add_norm,
            capture=capture,
        )
        return self.graphs

    @torch.inference_mode()
    def capture_graphs(self) -> int:
        """Capture every CUDA-graph bucket now (the server does it in its warm-up, before ``/ready``); returns how
        many were captured (0 when graphs are off)."""
        return 0 if self.graphs is None else self.graphs.capture_all()

    def batch_cost(self, lengths: Sequence[int]) -> int:
        """Tokens a forward pass over rows of these lengths runs: their sum when rows run packed, else rows x
        longest (right padding).

        >>> from types import SimpleNamespace
        >>> net = SimpleNamespace(pack_rows=True)
        >>> Network.batch_cost(net, [5, 300, 7]), Network.batch_cost(SimpleNamespace(pack_rows=False), [5, 300, 7])
        (312, 900)
        """
        if not lengths:
            return 0
        return sum(lengths) if self.pack_rows else len(lengths) * max(lengths)

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
        return _internals.rope_index(
            self.module.model, batch.input_ids, token_types, batch.image_grid_thw, batch.attention_mask
        )  # (3, B, L)

    @torch.inference_mode()
    def hidden_states(self, batch: Batch) -> torch.Tensor:
        """(B, L, H) last hidden states (after the final norm), in the model's dtype; zeros at padding when packed."""
        if not self.fused:
            return self._stock_hidden_states(batch)
        if self.graphs is not None and batch.pixel_values is None:
            bucket = self.graphs.bucket_for(sum(batch.lengths))
            if bucket is not None:
                return self._graph_hidden_states(batch, bucket)
        dev = self.device
        ids, positions = batch.input_ids, self.positions(batch)  # (B, L), (3, B, L)
        uneven = min(batch.lengths) < max(batch.lengths)
        real = None
        if self.pack_rows and uneven:
            real = batch.attention_mask.to(torch.bool)  # (B, L); right padding: row-major order = packed order
            ids, positions = ids[real][None], positions[:, real][:, None]  # (1, T), (3, 1, T)
            segments = Segments(tuple(batch.lengths), self.options.group_tokens)
            layout = Layout(Routing.packed(batch.tasks, batch.lengths), segments=segments)
        else:
            key_mask = batch.attention_mask.to(dev, torch.bool) if uneven else None
            layout = Layout(Routing.by_rows(batch.tasks), key_mask=key_mask)
        pixels = None if batch.pixel_values is None else batch.pixel_values.to(dev)
        grid = None if batch.image_grid_thw is None else batch.image_grid_thw.to(dev)
        embeds = embed_inputs(self.module.model, ids.to(dev), pixels, grid, self.image_token_id)
        hidden = text_forward(self.module.model.language_model, embeds, positions.to(dev), layout, self.add_norm)
        return hidden if real is None else self._unpacked(hidden[0], batch.attention_mask)  # (B, L, H)

    def _graph_hidden_states(self, batch: Batch, bucket: int) -> torch.Tensor:
        """A text-only batch through its bucket's graph; (B, L, H), zeros at padding (as the packed path)."""
        assert self.graphs is not None
        static = self.graphs.pack(batch.input_ids, batch.lengths, batch.tasks, bucket)  # (4, bucket) on the host
        hidden = self.graphs.run(static, sum(batch.lengths))  # (T, H), the rows end to end
        return self._unpacked(hidden, batch.attention_mask)

    def _unpacked(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Packed rows ``hidden`` (T, H), end to end, back in the right-padded (B, L, H) layout of
        ``attention_mask`` (B, L) (on the host), zeros at padding. Where each token goes is found on the host, so
        the device is not synchronised (a boolean index on the device would be)."""
        rows, longest = attention_mask.shape
        where = attention_mask.reshape(-1).nonzero().squeeze(1).to(self.device)  # (T,) row-major = packed order
        padded = hidden.new_zeros((rows * longest, hidden.shape[-1]))
        padded.index_copy_(0, where, hidden)
        return padded.view(rows, longest, -1)

    def _stock_hidden_states(self, batch: Batch) -> torch.Tensor:
        """The stock ``Qwen2_5_VLModel`` on the padded batch, each row's adapter routed through PEFT."""
        dev = self.device
        with route_rows(self.module, batch.tasks):
            out = self.module.model(
                input_ids=batch.input_ids.to(dev),
                attention_mask=batch.attention_mask.to(dev),
                position_ids=self.positions(batch).to(dev),
                pixel_values=None if batch.pixel_values is None else batch.pixel_values.to(dev),
                image_grid_thw=None if batch.image_grid_thw is None else batch.image_grid_thw.to(dev),
                use_cache=False,
            )
        hidden: torch.Tensor = out.last_hidden_state  # (B, L, H)
        return hidden

    @torch.inference_mode()
    def project(self, hidden: torch.Tensor, tasks: Sequence[str]) -> torch.Tensor:
        """(B, L, H) → (B, L, 128) multi-vector projection with each row's task LoRA (not normalised)."""
        fused = fused_projection(self.module.multi_vector_projector)
        if fused is not None:
            return fused(hidden, Routing.by_rows(tasks))
        with route_rows(self.module, tasks):
            projected: torch.Tensor = self.module.multi_vector_projector(hidden)
        return projected
