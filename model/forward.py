"""The encoder's forward pass over the fused layers, written out: embeddings (text tokens, image tokens from the
vision tower), then each decoder layer — norm, attention, residual, norm, MLP, residual — then the final norm.

Everything a layer needs travels as arguments: the task :class:`~model.routing.Routing` (which LoRA applies to
which rows or tokens), the packed :class:`~model.packing.Segments` (attention within each row) or the padding mask.
This is the stock ``Qwen2_5_VLModel`` forward for an encoder (no cache, no LM head, positions given), with the
fused modules that ``model.speedups`` installs; ``tests/model/test_parity.py`` checks it against the stock model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from model import _internals
from model.lora import FusedMLP, FusedTextAttention
from model.packing import Segments
from model.routing import Routing, TokenTasks

AddNorm = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], tuple[torch.Tensor, torch.Tensor]]

__all__ = ["AddNorm", "Layout", "decoder_layer", "embed_inputs", "text_forward", "uses_fused_layers"]


@dataclass(frozen=True, slots=True)
class Layout:
    """How one forward runs: its task routing and either packed ``segments`` (input ``(1, T)``) or, for a padded
    ``(B, L)`` batch, ``key_mask`` (B, L) bool, True at real tokens (None: no padding), or the whole attention
    ``attn_mask`` (1, 1, T, T) bool of a packed input with :class:`~model.routing.TokenTasks` (``model.graphs``:
    nothing in it is a python number that depends on the batch)."""

    routing: Routing | TokenTasks
    segments: Segments | None = None
    key_mask: torch.Tensor | None = None
    attn_mask: torch.Tensor | None = None


def uses_fused_layers(language_model: nn.Module) -> bool:
    """Whether every decoder layer has the fused attention and MLP (then :func:`text_forward` runs it)."""
    layers = list(getattr(language_model, "layers", []))
    return bool(layers) and all(
        isinstance(layer.self_attn, FusedTextAttention) and isinstance(layer.mlp, FusedMLP) for layer in layers
    )


def embed_inputs(
    model: nn.Module,
    input_ids: torch.Tensor,
    pixel_values: torch.Tensor | None,
    image_grid_thw: torch.Tensor | None,
    image_token_id: int,
) -> torch.Tensor:
    """(B, L, H) input embeddings: token embeddings, the image tokens replaced by the vision tower's output."""
    embeds: torch.Tensor = model.get_input_embeddings()(input_ids)  # type: ignore[operator]
    if pixel_values is None or image_grid_thw is None:
        return embeds
    image = _internals.image_features(model, pixel_values, image_grid_thw).to(embeds.device, embeds.dtype)
    at = input_ids == image_token_id  # (B, L)
    if int(at.sum()) != image.shape[0]:
        raise ValueError(f"{int(at.sum())} image tokens in the input for {image.shape[0]} image features")
    return embeds.masked_scatter(at[..., None], image)


def decoder_layer(
    layer: nn.Module, hidden: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], layout: Layout
) -> torch.Tensor:
    """One fused decoder layer (pre-norm attention and MLP, each with its residual add)."""
    attn, mlp = layer.get_submodule("self_attn"), layer.get_submodule("mlp")
    h = layer.get_submodule("input_layernorm")(hidden)
    hidden = hidden + attn(h, rope, layout.routing, layout.segments, layout.key_mask, layout.attn_mask)
    h = layer.get_submodule("post_attention_layernorm")(hidden)
    result: torch.Tensor = hidden + mlp(h, layout.routing)
    return result


def text_forward(
    language_model: nn.Module,
    embeds: torch.Tensor,
    positions: torch.Tensor,
    layout: Layout,
    add_norm: AddNorm | None = None,
) -> torch.Tensor:
    """(B, L, H) last hidden states (after the final norm) of the fused text decoder; ``positions`` (3, B, L).
    ``add_norm`` (``model.compiled``): each residual add and the norm after it as one fused function."""
    rope = language_model.get_submodule("rotary_emb")(embeds, positions)  # (cos, sin), each (B, L, d)
    layers = list(language_model.get_submodule("layers").children())
    final = language_model.get_submodule("norm")
    if add_norm is not None:
        return _fused_residual_forward(layers, final, embeds, rope, layout, add_norm)
    hidden = embeds
    for layer in layers:
        hidden = decoder_layer(layer, hidden, rope, layout)
    result: torch.Tensor = final(hidden)
    return result


def _fused_residual_forward(
    layers: list[nn.Module],
    final: nn.Module,
    embeds: torch.Tensor,
    rope: tuple[torch.Tensor, torch.Tensor],
    layout: Layout,
    add_norm: AddNorm,
) -> torch.Tensor:
    """The same layers, each residual add fused with the norm that follows it (the next layer's input norm, or the
    final norm after the last layer)."""
    h: torch.Tensor = layers[0].get_submodule("input_layernorm")(embeds)
    hidden = embeds
    for i, layer in enumerate(layers):
        attn = layer.get_submodule("self_attn")
        attn_out = attn(h, rope, layout.routing, layout.segments, layout.key_mask, layout.attn_mask)
        weight, eps = _internals.rms_norm_parameters(layer.get_submodule("post_attention_layernorm"))
        hidden, h = add_norm(hidden, attn_out, weight, eps)
        mlp_out = layer.get_submodule("mlp")(h, layout.routing)
        after = layers[i + 1].get_submodule("input_layernorm") if i + 1 < len(layers) else final
        weight, eps = _internals.rms_norm_parameters(after)
        hidden, h = add_norm(hidden, mlp_out, weight, eps)
    return h
