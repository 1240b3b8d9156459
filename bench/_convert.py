"""Turn a published-layout checkpoint into the peers' layouts (runs in either venv; no ``model`` import).

The peers are built from the *same* random weights as our encoder:

- ``hf_config``: ``config.json`` → ``Qwen2_5_VLConfig`` (nested text/vision configs, special token ids).
- ``base_state_dict``: the sharded safetensors with the legacy keys remapped to transformers 5's
  ``Qwen2_5_VLForConditionalGeneration`` names (``model.*`` → ``model.language_model.*``, ``visual.*`` →
  ``model.visual.*``); ``multi_vector_projector.*`` is returned apart.
- ``adapter_state_dicts``: ``adapters/adapter_model.safetensors`` split into one PEFT state dict per task
  (``…lora_A.<task>.weight`` → ``…lora_A.weight``), plus the LoRA scaling ``lora_alpha / r``.
- ``merged_weights``: base + scaling · B·A of one task, for peers without adapters (ColQwen2.5).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

__all__ = [
    "adapter_state_dicts",
    "base_state_dict",
    "hf_config",
    "lora_config",
    "merged_weights",
    "read_config",
]

_TOKEN_KEYS = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")


def read_config(directory: Path) -> dict[str, Any]:
    return dict(json.loads((directory / "config.json").read_text()))


def hf_config(directory: Path) -> Any:
    """A ``Qwen2_5_VLConfig`` with the checkpoint's text/vision sizes and special token ids."""
    from transformers import Qwen2_5_VLConfig

    cfg = read_config(directory)
    extra = {k: cfg[k] for k in _TOKEN_KEYS if k in cfg}
    config = Qwen2_5_VLConfig(
        text_config=cfg["text_config"], vision_config=cfg["vision_config"], tie_word_embeddings=True, **extra
    )
    return config


def _remap(key: str) -> str:
    if key.startswith("visual."):
        return "model." + key
    if key.startswith("model.") and not key.startswith(("model.language_model.", "model.visual.")):
        return "model.language_model." + key[len("model.") :]
    return key


def base_state_dict(directory: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(backbone weights in transformers 5 names, ``multi_vector_projector`` weights without prefix)."""
    index = json.loads((directory / "model.safetensors.index.json").read_text())
    backbone: dict[str, torch.Tensor] = {}
    projector: dict[str, torch.Tensor] = {}
    for shard in sorted(set(index["weight_map"].values())):
        for key, tensor in load_file(directory / shard).items():
            if key.startswith("multi_vector_projector."):
                projector[key.removeprefix("multi_vector_projector.")] = tensor
            else:
                backbone[_remap(key)] = tensor
    return backbone, projector


def lora_config(directory: Path) -> dict[str, Any]:
    return dict(json.loads((directory / "adapters" / "adapter_config.json").read_text()))


_ADAPTER_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<ab>[AB])\.(?P<task>[^.]+)\.weight$")


def adapter_state_dicts(directory: Path) -> dict[str, dict[str, torch.Tensor]]:
    """``{task: {"base_model.model.<module>.lora_A.weight": A, …}}`` (PEFT's single-adapter key form)."""
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in load_file(directory / "adapters" / "adapter_model.safetensors").items():
        match = _ADAPTER_KEY.match(key)
        if match is None:
            raise ValueError(f"unexpected adapter key {key!r}")
        out.setdefault(match["task"], {})[f"{match['module']}.lora_{match['ab']}.weight"] = tensor
    return out


def merged_weights(
    backbone: dict[str, torch.Tensor],
    projector: dict[str, torch.Tensor],
    adapters: dict[str, torch.Tensor],
    scaling: float,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Fold one task's LoRA into copies of the weights: W + scaling · B @ A (in float32)."""
    backbone, projector = dict(backbone), dict(projector)
    for key, a in adapters.items():
        if ".lora_A." not in key:
            continue
        b = adapters[key.replace(".lora_A.", ".lora_B.")]
        module = key.removeprefix("base_model.model.").removesuffix(".lora_A.weight")
        delta = scaling * (b.float() @ a.float())  # (out, r) @ (r, in) -> (out, in)
        if module == "multi_vector_projector":
            projector["weight"] = (projector["weight"].float() + delta).to(projector["weight"].dtype)
        else:
            w = backbone[module + ".weight"]
            backbone[module + ".weight"] = (w.float() + delta).to(w.dtype)
    return backbone, projector
