"""The three task adapters as named PEFT LoRA adapters, routed per row.

``adapters/adapter_model.safetensors`` holds one LoRA per task under keys
``base_model.model.<module>.lora_{A,B}.<task>.weight``. Each task becomes a PEFT adapter named after it, injected
into the text layers' q/k/v/o/gate/up/down projections and the multi-vector projector (none in the vision
tower); scaling = lora_alpha / r (or / √r with rsLoRA), from ``adapter_config.json``.

A forward pass may mix tasks: :func:`route_rows` passes PEFT's per-row ``adapter_names`` to every LoRA layer for
the duration of a ``with`` block (PEFT's mixed-batch path applies each row's own adapter). Nothing global is
switched, so concurrent batches cannot see each other's task.
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from model.checkpoint import check_complete, copy_checked
from model.errors import ConfigError, KeyMismatchError, MissingFileError

__all__ = ["load_adapters", "route_rows"]

_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<ab>[AB])\.(?P<task>[^.]+)\.weight$")


def _lora_config(directory: Path) -> dict[str, Any]:
    path = directory / "adapters" / "adapter_config.json"
    if not path.is_file():
        raise MissingFileError(f"checkpoint {directory} has no adapters/adapter_config.json")
    try:
        config: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    for key in ("r", "lora_alpha", "target_modules"):
        if key not in config:
            raise ConfigError(f"{path} lacks {key!r}")
    return config


def load_adapters(module: nn.Module, directory: Path, task_names: Sequence[str], dtype: torch.dtype) -> None:
    """Inject one LoRA adapter per task into ``module`` and load its weights (strict: every LoRA weight of every
    task must be present with the right shape, and nothing else)."""
    from peft import LoraConfig, inject_adapter_in_model
    from safetensors import safe_open

    raw = _lora_config(directory)
    weights_path = directory / "adapters" / "adapter_model.safetensors"
    if not weights_path.is_file():
        raise MissingFileError(f"checkpoint {directory} has no adapters/adapter_model.safetensors")
    targets = raw["target_modules"]
    for task in task_names:
        config = LoraConfig(
            r=int(raw["r"]),
            lora_alpha=int(raw["lora_alpha"]),
            lora_dropout=0.0,  # inference: dropout is the identity
            target_modules=targets,
            exclude_modules=r".*visual.*",
            use_rslora=bool(raw.get("use_rslora", False)),
            bias="none",
        )
        with warnings.catch_warnings():
            # PEFT warns that a second adapter joins the first: three named adapters is the design here.
            warnings.filterwarnings("ignore", message="Already found a `peft_config`", category=UserWarning)
            inject_adapter_in_model(config, module, adapter_name=task)
    params = dict(module.named_parameters())
    expected = {name for name in params if ".lora_A." in name or ".lora_B." in name}
    seen: set[str] = set()
    with safe_open(str(weights_path), framework="pt") as handle:
        for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
            match = _KEY.match(key)
            if match is None:
                raise KeyMismatchError(f"{weights_path.name}: unexpected key {key!r}")
            target = f"{match['module']}.lora_{match['ab']}.{match['task']}.weight"
            if match["task"] not in task_names:
                raise KeyMismatchError(
                    f"{weights_path.name}: key {key!r} is for task {match['task']!r}, not one of {list(task_names)}"
                )
            if target not in params:
                raise KeyMismatchError(f"{weights_path.name}: key {key!r} matches no LoRA layer ({target!r})")
            copy_checked(params[target], handle.get_tensor(key), weights_path.name, key)
            seen.add(target)
    check_complete(expected, seen, weights_path.name)
    module.to(dtype)


@contextlib.contextmanager
def route_rows(
    module: nn.Module, adapter_names: Sequence[str], packed_lengths: Sequence[int] | None = None
) -> Iterator[None]:
    """Within the block, every LoRA layer of ``module`` applies adapter ``adapter_names[i]`` to batch row ``i``
    (with ``packed_lengths``: to the ``i``-th row of a packed ``(1, T)`` input, ``packed_lengths[i]`` tokens long).

    Fused layers (``model.lora``) are skipped: they take the routing as an argument (``model.forward``). Any PEFT
    LoRA layer that is not fused gets it as PEFT's ``adapter_names`` argument (forward pre-hooks, removed on exit),
    or, for a single-task batch, as its active adapter (PEFT's plain path, same math); PEFT cannot route a packed
    mixed-task batch."""
    from model import _internals

    names = list(adapter_names)
    loras = [m for m in module.modules() if _internals.is_lora_layer(m) and not getattr(m, "_jina_fused", False)]
    if packed_lengths is not None and loras and len(set(names)) > 1:
        raise ValueError("a packed mixed-task batch needs every LoRA layer fused (model.lora)")
    with contextlib.ExitStack() as stack:
        if len(set(names)) == 1:
            saved = [_internals.set_active_adapter(lora, names[0]) for lora in loras]

            def restore() -> None:
                for lora, active in zip(loras, saved, strict=True):
                    _internals.set_active_adapter(lora, active)

            stack.callback(restore)
        else:

            def hook(
                _mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
            ) -> tuple[tuple[Any, ...], dict[str, Any]]:
                kwargs["adapter_names"] = names
                return args, kwargs

            for lora in loras:
                stack.callback(lora.register_forward_pre_hook(hook, with_kwargs=True).remove)
        yield
