"""Every use of ``transformers`` / ``peft`` internals (private names, attributes of their modules, call conventions
that no public API promises) in one place. ``tests/model/test_internals.py`` checks each one on small stock modules
and fails with a message naming the library version and the helper to fix when an upgrade breaks it.

Public APIs (``Qwen2_5_VLModel``, ``Qwen2_5_VLConfig``, ``peft.LoraConfig``, ``inject_adapter_in_model``) are used
where they are needed; what is here is what an upgrade may change without notice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

__all__ = [
    "TEXT_ATTENTION_ATTRIBUTES",
    "attention_attributes",
    "image_features",
    "is_lora_layer",
    "is_silu",
    "lora_adapters",
    "no_init_weights",
    "rms_norm_parameters",
    "rms_norm_type",
    "rope_index",
    "set_active_adapter",
    "set_attention_implementation",
    "vision_attention_type",
]

# plain attributes of the stock ``Qwen2_5_VLAttention`` that the fused attention copies
TEXT_ATTENTION_ATTRIBUTES = ("head_dim", "num_key_value_groups", "scaling", "is_causal", "layer_idx")


@contextlib.contextmanager
def no_init_weights() -> Iterator[None]:
    """Skip the random init of modules built in the block (every weight is loaded afterwards)."""
    from transformers.initialization import no_init_weights as skip

    with skip():
        yield


def set_attention_implementation(config: Any, implementation: str) -> None:
    """Choose the attention kernels of a ``Qwen2_5_VLConfig`` and its text/vision sub-configs (a private field)."""
    for sub in (config, config.text_config, config.vision_config):
        sub._attn_implementation = implementation


def rms_norm_type() -> type[nn.Module]:
    """The stock RMSNorm class of Qwen2.5-VL (text and vision)."""
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLRMSNorm

    return Qwen2_5_VLRMSNorm


def vision_attention_type() -> type[nn.Module]:
    """The stock vision attention class (children ``qkv``/``proj``, attributes ``num_heads``/``scaling``; called as
    ``attn(hidden_states, cu_seqlens=..., position_embeddings=...)`` with the SAME ``cu_seqlens`` tensor in every
    block of one forward, which ``model.fastpath.window_plan`` relies on)."""
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLVisionAttention

    return Qwen2_5_VLVisionAttention


def attention_attributes(attn: nn.Module, names: tuple[str, ...]) -> dict[str, Any]:
    """Plain (non-module) attributes of a stock attention module; a missing one is a clear error."""
    missing = [n for n in names if not hasattr(attn, n)]
    if missing:
        raise AttributeError(
            f"{type(attn).__name__} has no {missing}: update model/_internals.py for this transformers"
        )
    return {n: getattr(attn, n) for n in names}


def image_features(model: nn.Module, pixel_values: torch.Tensor, image_grid_thw: torch.Tensor) -> torch.Tensor:
    """(N_merged, H) the vision tower's merged tokens for every image, in order (``get_image_features``)."""
    out: Any = model.get_image_features(pixel_values, image_grid_thw, return_dict=True)  # type: ignore[operator]
    return torch.cat(tuple(out.pooler_output), dim=0)


def rope_index(
    model: nn.Module,
    input_ids: torch.Tensor,
    token_types: torch.Tensor,
    image_grid_thw: torch.Tensor,
    attention_mask: torch.Tensor,
) -> torch.Tensor:
    """(3, B, L) M-RoPE positions of a batch with images (the stock ``get_rope_index``; ``token_types`` 1 at image
    tokens)."""
    rope: Any = model.get_rope_index
    positions, _ = rope(input_ids, token_types, image_grid_thw=image_grid_thw, attention_mask=attention_mask)
    result: torch.Tensor = positions
    return result


def is_lora_layer(layer: nn.Module) -> bool:
    from peft.tuners.lora import LoraLayer

    return isinstance(layer, LoraLayer)


def lora_adapters(layer: Any) -> dict[str, tuple[nn.Linear, nn.Linear, float]]:
    """A PEFT ``lora.Linear``'s adapters: name → (A, B, scaling). Refuses what the fused path does not compute
    (merged weights, DoRA or other variants, LoRA bias, ``fan_in_fan_out``)."""
    if getattr(layer, "merged", False):
        raise ValueError("cannot fuse a LoRA layer whose adapters are merged into the base weights")
    if getattr(layer, "lora_variant", {}):
        raise ValueError(f"cannot fuse LoRA variants {sorted(layer.lora_variant)}")
    if any(getattr(layer, "lora_bias", {}).values()):
        raise ValueError("cannot fuse a LoRA layer with lora_bias")
    if getattr(layer, "fan_in_fan_out", False):
        raise ValueError("cannot fuse a fan_in_fan_out LoRA layer")
    return {name: (layer.lora_A[name], layer.lora_B[name], float(layer.scaling[name])) for name in layer.lora_A}


def lora_base(layer: Any) -> nn.Module:
    """The base projection under a PEFT LoRA layer (the layer itself when it is not one)."""
    base: nn.Module = layer.get_base_layer() if is_lora_layer(layer) else layer
    return base


def active_adapters(layer: Any) -> tuple[str, ...]:
    """The adapters a PEFT layer applies when called with no routing (none when adapters are disabled)."""
    if getattr(layer, "disable_adapters", False):
        return ()
    return tuple(layer.active_adapters)


def set_active_adapter(layer: Any, name: str) -> str:
    """Make PEFT layer ``layer`` apply adapter ``name`` (this one layer, no model-wide switch); returns the previous
    value to restore (PEFT's private ``_active_adapter``)."""
    previous: str = layer._active_adapter
    layer._active_adapter = name
    return previous


def is_silu(act: object) -> bool:
    """Whether a stock MLP's ``act_fn`` is SiLU (``transformers.activations.SiLUActivation`` or ``nn.SiLU``)."""
    from transformers.activations import SiLUActivation

    return isinstance(act, SiLUActivation | nn.SiLU)


def rms_norm_parameters(norm: nn.Module) -> tuple[torch.Tensor, float]:
    """A stock RMSNorm's ``(weight, eps)`` (its private-ish ``variance_epsilon``)."""
    weight = norm.get_parameter("weight")
    return weight, float(norm.variance_epsilon)  # type: ignore[arg-type]
