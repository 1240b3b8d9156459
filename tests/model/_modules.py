"""Small stock modules shared by the fast-path tests (random weights, seeded)."""

from __future__ import annotations

import warnings

import torch
from torch import nn

TASKS = ("retrieval", "text-matching", "code")
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def small_text_model(seed: int = 0) -> nn.Module:
    """A 2-layer stock ``Qwen2_5_VLTextModel`` (hidden 32, 4 heads, 2 KV heads, MLP 48), sdpa, eval mode."""
    from transformers import Qwen2_5_VLConfig
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLTextModel

    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 32,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "intermediate_size": 48,
            "num_hidden_layers": 2,
            "vocab_size": 100,
            "rope_scaling": {"type": "default", "mrope_section": [1, 1, 2]},
        }
    ).text_config
    config._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    return Qwen2_5_VLTextModel(config).eval()


def with_adapters(module: nn.Module, targets: list[str]) -> nn.Module:
    """``module`` with one PEFT LoRA adapter per task in :data:`TASKS` (r 4, distinct scalings, random A and B)."""
    from peft import LoraConfig, inject_adapter_in_model

    for i, task in enumerate(TASKS):
        config = LoraConfig(r=4, lora_alpha=8 + 4 * i, target_modules=targets, lora_dropout=0.0, bias="none")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Already found a `peft_config`", category=UserWarning)
            inject_adapter_in_model(config, module, adapter_name=task)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if ".lora_" in name:  # PEFT initialises B to zero: give every adapter a real delta
                param.normal_(0.0, 0.05)
    return module.eval()


def run_fused(
    language_model: nn.Module, ids: torch.Tensor, tasks: list[str], mask: torch.Tensor | None = None
) -> torch.Tensor:
    """(B, L, H) of a fused text model (``model.lora.fuse_text_projections``) through ``model.forward``'s decoder
    loop: row ``i`` routed to ``tasks[i]``, right padding where ``mask`` is 0 (positions count the real tokens)."""
    from model.forward import Layout, text_forward
    from model.routing import Routing

    positions = torch.arange(ids.shape[1])[None].expand(ids.shape[0], -1) if mask is None else mask.cumsum(-1) - 1
    layout = Layout(Routing.by_rows(tasks), key_mask=None if mask is None else mask.bool())
    embeds = language_model.embed_tokens(ids)  # type: ignore[operator]
    return text_forward(language_model, embeds, positions.clamp_min(0)[None].expand(3, -1, -1), layout)
