"""A tiny random-weight checkpoint in exactly the published jina-embeddings-v4 layout, for tests and demos.

What :func:`build_tiny_checkpoint` writes (the layout of ``jinaai/jina-embeddings-v4``):

- ``config.json``: nested ``text_config`` / ``vision_config``, ``task_names``, ``matryoshka_dims``,
  ``truncate_dim`` (null), ``multi_vector_projector_dim``, the special token ids, and ``jev4_test_checkpoint:
  true`` (not in the published config: it marks the weights as random, see ``ModelInfo.test_checkpoint``);
- ``model-0000N-of-0000M.safetensors`` + ``model.safetensors.index.json`` with the **legacy** key names
  (``model.embed_tokens``, ``model.layers.*``, ``model.norm``, ``visual.*``, top-level
  ``multi_vector_projector.{weight,bias}``, no ``lm_head``);
- ``adapters/adapter_config.json`` + ``adapters/adapter_model.safetensors`` with the keys
  ``base_model.model.model.language_model.layers.N.<proj>.lora_{A,B}.<task>.weight`` and
  ``base_model.model.multi_vector_projector.lora_{A,B}.<task>.weight``: every B non-zero (a dropped adapter
  changes the output) and ``lora_alpha`` ≠ ``r`` (a wrong scaling changes it too);
- the real Qwen2 tokenizer (``model.testing_tokenizer``) and ``preprocessor_config.json``.

The vectors carry no meaning. ``overrides`` change ``text_config`` / ``vision_config`` sizes (e.g. a real-width
model with few layers for benchmarks), ``matryoshka_dims``, ``lora_rank`` / ``lora_alpha`` and ``dtype``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

__all__ = ["TASKS", "TINY_TEXT", "TINY_VISION", "build_tiny_checkpoint"]

TASKS = ("retrieval", "text-matching", "code")
TINY_TEXT: dict[str, Any] = {
    "hidden_size": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 96,
    "num_hidden_layers": 2,
}
TINY_VISION: dict[str, Any] = {
    "depth": 3,
    "hidden_size": 32,
    "num_heads": 2,
    "intermediate_size": 40,
    "fullatt_block_indexes": [1],
}
TOKEN_IDS = {
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "pad_token_id": 151643,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "vision_token_id": 151654,
    "image_token_id": 151655,
    "video_token_id": 151656,
}
_ATTN = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj")
_MLP = ("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def _configs(overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    text = (
        {
            "vocab_size": 151936,
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "max_position_embeddings": 128000,
            "hidden_act": "silu",
            "tie_word_embeddings": True,
            "use_sliding_window": False,
        }
        | TINY_TEXT
        | overrides.get("text_config", {})
    )
    half = text["hidden_size"] // text["num_attention_heads"] // 2  # rotary pairs per head (64 at real width)
    mrope = [half // 4, 3 * half // 8, half - half // 4 - 3 * half // 8]  # [16, 24, 24] at real width
    text["rope_scaling"] = {"type": "default", "rope_type": "default", "mrope_section": mrope}
    vision = (
        {
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "in_chans": 3,
            "hidden_act": "silu",
            "tokens_per_second": 2,
            "out_hidden_size": text["hidden_size"],
        }
        | TINY_VISION
        | overrides.get("vision_config", {})
    )
    return text, vision


def build_tiny_checkpoint(directory: str | Path, *, seed: int = 0, **overrides: Any) -> Path:
    """Write a random checkpoint in the published layout to ``directory`` and return it.

    ``overrides``: ``text_config`` / ``vision_config`` (dicts merged over the tiny sizes), ``matryoshka_dims``,
    ``lora_rank``, ``lora_alpha``, ``dtype`` (``torch.float32`` by default; the published files are bfloat16),
    ``shards`` (number of safetensors files, default 2), ``device`` (where the random values are drawn: ``"cuda"``
    builds a full-size checkpoint in seconds; the values differ from a CPU build with the same seed).
    """
    from safetensors.torch import save_file
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLModel

    from model.testing_tokenizer import write_preprocessor_config, write_qwen2_tokenizer

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    text, vision = _configs(overrides)
    hidden = int(text["hidden_size"])
    dims = list(overrides.get("matryoshka_dims", [d for d in (16, 32, 64) if d < hidden] + [hidden]))
    rank = int(overrides.get("lora_rank", 32 if hidden >= 1024 else 8))
    alpha = int(overrides.get("lora_alpha", 2 * rank))
    dtype: torch.dtype = overrides.get("dtype", torch.float32)
    device = torch.device(overrides.get("device", "cpu"))  # where the random numbers are drawn (a GPU is faster)
    generator = torch.Generator(device=device).manual_seed(seed)

    def rand(*shape: int, std: float = 0.02) -> torch.Tensor:
        return (torch.randn(*shape, generator=generator, device=device) * std).to(dtype)

    torch.manual_seed(seed)
    backbone_config: Any = Qwen2_5_VLConfig(text_config=text, vision_config=vision, **TOKEN_IDS)  # type: ignore[arg-type]
    with device:
        model = Qwen2_5_VLModel(backbone_config)
    state: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        legacy = key.replace("language_model.", "model.", 1) if key.startswith("language_model.") else key
        # random norms (stock init is all ones) so that a norm loaded from the wrong key is noticed
        state[legacy] = (value + rand(*value.shape, std=0.1).to(value.dtype)).to(dtype).contiguous().cpu()
    del model
    state["multi_vector_projector.weight"] = rand(128, hidden, std=0.2).cpu()
    state["multi_vector_projector.bias"] = rand(128, std=0.2).cpu()
    _write_shards(out, state, int(overrides.get("shards", 2)), save_file)

    config = {
        "architectures": ["JinaEmbeddingsV4Model"],
        "model_type": "qwen2_5_vl",
        "torch_dtype": str(dtype).removeprefix("torch."),
        "text_config": text,
        "vision_config": vision,
        **TOKEN_IDS,
        "task_names": list(TASKS),
        "matryoshka_dims": dims,
        "truncate_dim": None,
        "multi_vector_projector_dim": 128,
        "single_vector_pool_strategy": "mean",
        "jev4_test_checkpoint": True,  # random weights: the server's /ready and search page say so
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))
    _write_adapters(out / "adapters", text, rank, alpha, rand, save_file)
    write_qwen2_tokenizer(out)
    write_preprocessor_config(out)
    return out


def _write_shards(out: Path, state: dict[str, torch.Tensor], shards: int, save_file: Any) -> None:
    keys = sorted(state)
    per = -(-len(keys) // shards)
    weight_map: dict[str, str] = {}
    total = 0
    for i in range(shards):
        name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: state[k] for k in keys[i * per : (i + 1) * per]}
        save_file(part, out / name, metadata={"format": "pt"})
        weight_map |= dict.fromkeys(part, name)
        total += sum(t.numel() * t.element_size() for t in part.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def _write_adapters(out: Path, text: dict[str, Any], rank: int, alpha: int, rand: Any, save_file: Any) -> None:
    hidden, inter = int(text["hidden_size"]), int(text["intermediate_size"])
    kv = int(text["num_key_value_heads"]) * hidden // int(text["num_attention_heads"])
    shapes = dict(zip(_ATTN, [(hidden, hidden), (hidden, kv), (hidden, kv), (hidden, hidden)], strict=True))
    shapes |= dict(zip(_MLP, [(hidden, inter), (hidden, inter), (inter, hidden)], strict=True))
    tensors: dict[str, torch.Tensor] = {}
    for task in TASKS:
        for layer in range(int(text["num_hidden_layers"])):
            for name, (n_in, n_out) in shapes.items():
                base = f"base_model.model.model.language_model.layers.{layer}.{name}"
                tensors[f"{base}.lora_A.{task}.weight"] = rand(rank, n_in, std=0.1).cpu()
                tensors[f"{base}.lora_B.{task}.weight"] = rand(n_out, rank, std=0.1).cpu()
        base = "base_model.model.multi_vector_projector"
        tensors[f"{base}.lora_A.{task}.weight"] = rand(rank, hidden, std=0.1).cpu()
        tensors[f"{base}.lora_B.{task}.weight"] = rand(128, rank, std=0.1).cpu()
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, out / "adapter_model.safetensors", metadata={"format": "pt"})
    targets = [p.split(".")[1] for p in _ATTN + _MLP] + ["multi_vector_projector"]
    config = {
        "peft_type": "LORA",
        "task_type": "FEATURE_EXTRACTION",
        "r": rank,
        "lora_alpha": alpha,
        "lora_dropout": 0.1,
        "bias": "none",
        "use_rslora": False,
        "target_modules": targets,
        "exclude_modules": ".*visual.*",
        "base_model_name_or_path": "jinaai/jina-embeddings-v4",
    }
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2))
