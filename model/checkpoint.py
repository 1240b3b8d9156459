"""Resolve a checkpoint (local directory or hub id), validate its config and load its base weights.

The published checkpoint stores the backbone under the legacy (pre-4.52) Qwen2-VL key names. Loading maps them
onto stock ``Qwen2_5_VLModel`` (never the LM head): ``model.*`` → ``language_model.*``, ``visual.*`` stays,
and the top-level ``multi_vector_projector.{weight,bias}`` go to the projector. Every key and shape is checked;
a mismatch names the file and the key.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from model.errors import (
    CheckpointNotFoundError,
    ConfigError,
    KeyMismatchError,
    MissingFileError,
    ShapeMismatchError,
)

__all__ = [
    "JinaConfig",
    "JinaV4Backbone",
    "check_complete",
    "copy_checked",
    "load_base_weights",
    "read_config",
    "resolve_checkpoint",
]

REQUIRED_FILES = ("config.json", "model.safetensors.index.json", "adapters/adapter_config.json")
_REQUIRED_KEYS = ("text_config", "vision_config", "task_names", "matryoshka_dims", "truncate_dim")


def resolve_checkpoint(
    name_or_path: str | os.PathLike[str],
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
) -> Path:
    """A local directory as is; otherwise a hub id through ``huggingface_hub`` (its cache and
    ``HF_HUB_OFFLINE`` honoured)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.exists() or str(name_or_path).startswith((".", "/", "~")):
        raise CheckpointNotFoundError(f"{str(name_or_path)!r} is not a checkpoint directory")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(
            snapshot_download(
                str(name_or_path),
                revision=revision,
                cache_dir=None if cache_dir is None else Path(cache_dir),
                local_files_only=bool(local_files_only),
                allow_patterns=["*.json", "*.safetensors", "adapters/*", "*.txt", "*.model", "*.tiktoken"],
            )
        )
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
        raise CheckpointNotFoundError(
            f"cannot get {str(name_or_path)!r} from the Hugging Face hub or its local cache ({type(exc).__name__}: "
            f"{exc}). Where the hub is unreachable, download it on a connected machine "
            f"(`hf download {name_or_path} --local-dir DIR`), copy DIR here and pass the directory "
            "instead of the hub id (or pre-fill the HF cache and set HF_HUB_OFFLINE=1)."
        ) from exc


_NOT_BACKBONE = ("architectures", "auto_map", "model_type", "jev4_test_checkpoint")


@dataclass(frozen=True, slots=True)
class JinaConfig:
    """What the encoder needs from ``config.json`` (the backbone config is built from the same dict)."""

    raw: dict[str, Any]
    task_names: tuple[str, ...]
    matryoshka_dims: tuple[int, ...]
    truncate_dim: int | None
    hidden_size: int
    multivector_dim: int
    image_token_id: int
    vision_start_token_id: int
    vision_end_token_id: int
    test_checkpoint: bool = False  # config.json's jev4_test_checkpoint: random weights (model.testing)

    def backbone_config(self) -> Any:
        from transformers import Qwen2_5_VLConfig

        keep = {k: v for k, v in self.raw.items() if k not in _NOT_BACKBONE}
        return Qwen2_5_VLConfig(**keep)


def read_config(directory: Path) -> JinaConfig:
    for name in REQUIRED_FILES:
        if not (directory / name).is_file():
            raise MissingFileError(f"checkpoint {directory} has no {name}")
    try:
        raw = json.loads((directory / "config.json").read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{directory / 'config.json'} is not valid JSON: {exc}") from exc
    missing = [k for k in _REQUIRED_KEYS if k not in raw]
    if missing:
        raise ConfigError(f"{directory / 'config.json'} lacks {missing} (a jina-embeddings-v4 config carries them)")
    text = raw["text_config"]
    if not isinstance(text, dict) or "hidden_size" not in text:
        raise ConfigError(f"{directory / 'config.json'}: text_config must be an object with hidden_size")
    hidden = int(text["hidden_size"])
    dims = tuple(int(d) for d in raw["matryoshka_dims"])
    if not dims or any(d < 1 or d > hidden for d in dims):
        raise ConfigError(f"matryoshka_dims {list(dims)} must be non-empty sizes in 1..{hidden}")
    return JinaConfig(
        raw=raw,
        task_names=tuple(str(t) for t in raw["task_names"]),
        matryoshka_dims=dims,
        truncate_dim=None if raw["truncate_dim"] is None else int(raw["truncate_dim"]),
        hidden_size=hidden,
        multivector_dim=int(raw.get("multi_vector_projector_dim", 128)),
        image_token_id=int(raw.get("image_token_id", 151655)),
        vision_start_token_id=int(raw.get("vision_start_token_id", 151652)),
        vision_end_token_id=int(raw.get("vision_end_token_id", 151653)),
        test_checkpoint=raw.get("jev4_test_checkpoint") is True,
    )


class JinaV4Backbone(nn.Module):
    """Stock ``Qwen2_5_VLModel`` (``self.model``) plus the multi-vector projector, with PEFT-compatible names:
    the adapter keys ``base_model.model.<name>`` map onto ``<name>`` here."""

    def __init__(self, config: JinaConfig, attn_implementation: str = "sdpa") -> None:
        super().__init__()
        from transformers import Qwen2_5_VLModel

        from model import _internals

        backbone_config = config.backbone_config()
        _internals.set_attention_implementation(backbone_config, attn_implementation)
        self.model = Qwen2_5_VLModel(backbone_config)
        self.multi_vector_projector = nn.Linear(config.hidden_size, config.multivector_dim, bias=True)


def _target_key(legacy: str) -> str:
    if legacy.startswith("model."):
        return "model.language_model." + legacy.removeprefix("model.")
    if legacy.startswith("visual."):
        return "model." + legacy
    return legacy  # multi_vector_projector.*


def load_base_weights(module: JinaV4Backbone, directory: Path) -> None:
    """Load the sharded base weights (legacy names) into ``module`` (in its dtype), checking every key and shape."""
    from safetensors import safe_open

    index_path = directory / "model.safetensors.index.json"
    try:
        weight_map: dict[str, str] = json.loads(index_path.read_text())["weight_map"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise ConfigError(f"{index_path} is not a safetensors index with a weight_map: {exc}") from exc
    params = module.state_dict()
    expected = set(params)
    seen: set[str] = set()
    by_file: dict[str, list[str]] = {}
    for key, file in weight_map.items():
        by_file.setdefault(file, []).append(key)
    for file, keys in sorted(by_file.items()):
        path = directory / file
        if not path.is_file():
            raise MissingFileError(f"{index_path.name} names {file}, which is missing from {directory}")
        with safe_open(str(path), framework="pt") as handle:
            present = set(handle.keys())
            for key in keys:
                if key not in present:
                    raise KeyMismatchError(f"{file} lacks key {key!r} that {index_path.name} assigns to it")
                target = _target_key(key)
                if target not in expected:
                    raise KeyMismatchError(f"{file}: unexpected key {key!r} (no parameter {target!r} in the model)")
                copy_checked(params[target], handle.get_tensor(key), file, key)
                seen.add(target)
    check_complete(expected, seen, f"the checkpoint in {directory}")


def copy_checked(param: torch.Tensor, tensor: torch.Tensor, file: str, key: str) -> None:
    """Copy ``tensor`` (stored under ``key`` in ``file``) into ``param``, refusing a shape mismatch."""
    if tuple(tensor.shape) != tuple(param.shape):
        raise ShapeMismatchError(f"{file}: {key!r} has shape {tuple(tensor.shape)}, expected {tuple(param.shape)}")
    with torch.no_grad():
        param.copy_(tensor.to(param.dtype))


def check_complete(expected: set[str], seen: set[str], where: str) -> None:
    """Raise KeyMismatchError naming the first weights of ``expected`` that were not loaded."""
    missing = sorted(expected - seen)
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise KeyMismatchError(f"{where} lacks {len(missing)} weights: {shown}")
