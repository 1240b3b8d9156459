"""Small stock modules shared by the fast-path tests (random weights, seeded)."""

from __future__ import annotations

import torch
from torch import nn


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
