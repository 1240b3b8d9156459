"""A random checkpoint in the published layout, for the bench only while ``model.testing`` is unavailable.

``bench/encoder.py`` builds its checkpoint with ``model.testing.build_tiny_checkpoint``; when that module does
not exist yet (the encoder is being written), it says so loudly and uses this builder, which writes the same
layout (legacy keys, index, ``adapters/`` with per-task LoRA keys, tokenizer and preprocessor files from
``model.testing_tokenizer``) from a stock ``Qwen2_5_VLForConditionalGeneration`` with transformers' own random
init (bfloat16 on disk, as published).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

__all__ = ["TINY", "build_random_checkpoint"]

TINY: dict[str, Any] = {
    "text_config": {
        "hidden_size": 64,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
    },
    "vision_config": {
        "depth": 3,
        "hidden_size": 32,
        "num_heads": 2,
        "intermediate_size": 40,
        "out_hidden_size": 64,
        "fullatt_block_indexes": [1],
    },
}
_IDS = {
    "image_token_id": 151655,
    "video_token_id": 151656,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
}
_PROJ = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj")
_MLP = ("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def build_random_checkpoint(directory: Path, overrides: dict[str, Any], *, seed: int = 0) -> Path:
    """Write the checkpoint (``overrides``: ``text_config`` / ``vision_config`` sizes; empty = ``TINY``)."""
    from safetensors.torch import save_file
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from model.testing_tokenizer import write_preprocessor_config, write_qwen2_tokenizer

    sections = overrides or TINY
    text = {"vocab_size": 151936, "rms_norm_eps": 1e-6, "rope_theta": 1e6} | sections["text_config"]
    heads_dim = text["hidden_size"] // text["num_attention_heads"]
    half = heads_dim // 2  # M-RoPE sections (t, h, w) in the published proportions: [16, 24, 24] of 64
    sections_mrope = [half // 4, 3 * half // 8, half - half // 4 - 3 * half // 8]
    text["rope_scaling"] = {"type": "default", "mrope_section": sections_mrope}
    vision = {"window_size": 112, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}
    vision |= sections["vision_config"]
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(
        Qwen2_5_VLConfig(text_config=text, vision_config=vision, **_IDS)
    )
    hidden = text["hidden_size"]
    rank = 32 if hidden >= 1024 else 8  # the published r=32 at real width
    state: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        if key == "lm_head.weight":
            continue
        key = key.replace("model.language_model.", "model.").replace("model.visual.", "visual.")
        state[key] = value.to(torch.bfloat16).contiguous()
    state["multi_vector_projector.weight"] = (torch.randn(128, hidden) * 0.02).to(torch.bfloat16)
    state["multi_vector_projector.bias"] = (torch.randn(128) * 0.02).to(torch.bfloat16)
    directory.mkdir(parents=True, exist_ok=True)
    shard = "model-00001-of-00001.safetensors"
    save_file(state, directory / shard)
    index = {"metadata": {}, "weight_map": dict.fromkeys(state, shard)}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))
    tasks = ["retrieval", "text-matching", "code"]
    config = {"text_config": text, "vision_config": vision, **_IDS, "task_names": tasks}
    config |= {
        "matryoshka_dims": [128, 256, 512, 1024, 2048],
        "multi_vector_projector_dim": 128,
        "truncate_dim": None,
    }
    (directory / "config.json").write_text(json.dumps(config, indent=1))
    kv = text["num_key_value_heads"] * heads_dim
    shapes = dict(zip(_PROJ, [(hidden, hidden), (hidden, kv), (hidden, kv), (hidden, hidden)], strict=True))
    inter = text["intermediate_size"]
    shapes |= dict(zip(_MLP, [(hidden, inter), (hidden, inter), (inter, hidden)], strict=True))
    adapters: dict[str, torch.Tensor] = {}
    for task in tasks:
        for layer in range(text["num_hidden_layers"]):
            for name, (n_in, n_out) in shapes.items():
                base = f"base_model.model.model.language_model.layers.{layer}.{name}"
                adapters[f"{base}.lora_A.{task}.weight"] = (torch.randn(rank, n_in) * 0.02).to(torch.bfloat16)
                adapters[f"{base}.lora_B.{task}.weight"] = (torch.randn(n_out, rank) * 0.02).to(
                    torch.bfloat16
                )
        base = "base_model.model.multi_vector_projector"
        adapters[f"{base}.lora_A.{task}.weight"] = (torch.randn(rank, hidden) * 0.02).to(torch.bfloat16)
        adapters[f"{base}.lora_B.{task}.weight"] = (torch.randn(128, rank) * 0.02).to(torch.bfloat16)
    (directory / "adapters").mkdir(exist_ok=True)
    save_file(adapters, directory / "adapters" / "adapter_model.safetensors")
    targets = [*(p.split(".")[1] for p in _PROJ + _MLP), "multi_vector_projector"]
    lora = {"r": rank, "lora_alpha": 2 * rank, "peft_type": "LORA", "target_modules": targets}
    (directory / "adapters" / "adapter_config.json").write_text(json.dumps(lora, indent=1))
    write_qwen2_tokenizer(directory)
    write_preprocessor_config(directory)
    return directory
