"""The bench's checkpoint conversion for the peers: key remapping and LoRA merging."""

from __future__ import annotations

import torch

from bench._convert import _remap, merged_weights


def test_legacy_keys_map_to_transformers5_names() -> None:
    assert _remap("model.layers.3.mlp.up_proj.weight") == "model.language_model.layers.3.mlp.up_proj.weight"
    assert _remap("model.embed_tokens.weight") == "model.language_model.embed_tokens.weight"
    assert _remap("model.norm.weight") == "model.language_model.norm.weight"
    assert _remap("visual.blocks.0.attn.qkv.bias") == "model.visual.blocks.0.attn.qkv.bias"
    assert _remap("model.language_model.norm.weight") == "model.language_model.norm.weight"


def test_merged_lora_equals_base_plus_lora() -> None:
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(6, 5, generator=gen)  # (out, in)
    a, b = torch.randn(2, 5, generator=gen), torch.randn(6, 2, generator=gen)  # (r, in), (out, r)
    pw, pa, pb = (
        torch.randn(4, 5, generator=gen),
        torch.randn(2, 5, generator=gen),
        torch.randn(4, 2, generator=gen),
    )
    key = "model.language_model.layers.0.self_attn.q_proj"
    adapters = {
        f"base_model.model.{key}.lora_A.weight": a,
        f"base_model.model.{key}.lora_B.weight": b,
        "base_model.model.multi_vector_projector.lora_A.weight": pa,
        "base_model.model.multi_vector_projector.lora_B.weight": pb,
    }
    backbone, projector = merged_weights({f"{key}.weight": w}, {"weight": pw, "bias": torch.zeros(4)}, adapters, 0.5)
    x = torch.randn(3, 5, generator=gen)  # (N, in)
    torch.testing.assert_close(x @ backbone[f"{key}.weight"].T, x @ w.T + 0.5 * (x @ a.T) @ b.T)
    torch.testing.assert_close(x @ projector["weight"].T, x @ pw.T + 0.5 * (x @ pa.T) @ pb.T)
