"""Forward-pass FLOPs of the encoder per input, counted from the checkpoint's config.

One multiply-add is 2 FLOPs. Counted: every matrix product of the model that an embedding needs — the text
layers' projections (q/k/v/o, gate/up/down) and attention products (QKᵀ and AV), the vision tower's patch
embedding, its blocks' projections and windowed/full attention products, the patch merger, and the 128-d
multi-vector projector. Not counted: the LM head (an encoder never needs it), norms, rotary embeddings,
softmax and activations (elementwise, a fraction of a percent), and the LoRA factors, which are reported
separately (``Flops.lora``) because merging them into the base weights is a valid way to run the model — so
the machine-limit figures built on ``Flops.total`` are the conservative ones.

Causal text attention is counted exactly (token *i* attends to *i* + 1 tokens), which is the work a
causal-aware kernel does; ``causal=False`` counts the full square (what eager attention computes).

>>> dims = ModelDims(TextDims(64, 4, 2, 16, 128, 2), None, projector_dim=8, lora_rank=0)
>>> f = text_flops(dims.text, 10, causal=False)
>>> f.linear == 2 * 10 * 2 * (64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 128)
True
>>> f.attention == 2 * 2 * (2 * 10 * 10 * 64)
True
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Flops",
    "ModelDims",
    "TextDims",
    "VisionDims",
    "image_flops",
    "image_window_sizes",
    "projector_flops",
    "text_flops",
    "text_input_flops",
    "vision_flops",
]


@dataclass(frozen=True)
class Flops:
    """FLOPs split by kind; ``total`` excludes the LoRA factors (see the module docstring)."""

    linear: int = 0
    attention: int = 0
    lora: int = 0

    @property
    def total(self) -> int:
        return self.linear + self.attention

    def __add__(self, other: Flops) -> Flops:
        return Flops(self.linear + other.linear, self.attention + other.attention, self.lora + other.lora)


@dataclass(frozen=True)
class TextDims:
    """The language model's sizes (``text_config``)."""

    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    layers: int


@dataclass(frozen=True)
class VisionDims:
    """The vision tower's sizes (``vision_config``)."""

    hidden: int
    heads: int
    intermediate: int
    depth: int
    out_hidden: int
    fullatt_blocks: tuple[int, ...]
    patch_size: int = 14
    merge_size: int = 2
    temporal_patch: int = 2
    window_size: int = 112
    in_chans: int = 3


@dataclass(frozen=True)
class ModelDims:
    """Everything the counter needs; ``from_checkpoint`` reads it from a published-layout directory."""

    text: TextDims
    vision: VisionDims | None
    projector_dim: int = 128
    lora_rank: int = 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any], lora_rank: int = 0) -> ModelDims:
        tc = config.get("text_config") or config
        heads = int(tc["num_attention_heads"])
        text = TextDims(
            hidden=int(tc["hidden_size"]),
            heads=heads,
            kv_heads=int(tc.get("num_key_value_heads") or heads),
            head_dim=int(tc.get("head_dim") or int(tc["hidden_size"]) // heads),
            intermediate=int(tc["intermediate_size"]),
            layers=int(tc["num_hidden_layers"]),
        )
        vc = config.get("vision_config")
        vision = None
        if vc is not None:
            vision = VisionDims(
                hidden=int(vc.get("hidden_size") or vc["embed_dim"]),
                heads=int(vc["num_heads"]),
                intermediate=int(vc["intermediate_size"]),
                depth=int(vc["depth"]),
                out_hidden=int(vc.get("out_hidden_size") or text.hidden),
                fullatt_blocks=tuple(int(i) for i in vc.get("fullatt_block_indexes", ())),
                patch_size=int(vc.get("patch_size", 14)),
                merge_size=int(vc.get("spatial_merge_size", 2)),
                temporal_patch=int(vc.get("temporal_patch_size", 2)),
                window_size=int(vc.get("window_size", 112)),
                in_chans=int(vc.get("in_chans") or vc.get("in_channels") or 3),
            )
        return cls(text, vision, int(config.get("multi_vector_projector_dim", 128)), lora_rank)

    @classmethod
    def from_checkpoint(cls, directory: Path) -> ModelDims:
        config = json.loads((directory / "config.json").read_text())
        adapter_cfg = directory / "adapters" / "adapter_config.json"
        rank = int(json.loads(adapter_cfg.read_text())["r"]) if adapter_cfg.exists() else 0
        return cls.from_config(config, rank)


def _lora(rank: int, n_in: int, n_out: int) -> int:
    return 2 * rank * (n_in + n_out)  # A: in -> r, B: r -> out, per token


def text_flops(dims: TextDims, seq_len: int, *, causal: bool = True, lora_rank: int = 0) -> Flops:
    """One sequence of ``seq_len`` tokens through every text layer (no LM head)."""
    d, kv = dims.hidden, dims.kv_heads * dims.head_dim
    q_out = dims.heads * dims.head_dim
    shapes = [(d, q_out), (d, kv), (d, kv), (q_out, d)] + [(d, dims.intermediate)] * 2 + [(dims.intermediate, d)]
    per_token = sum(2 * i * o for i, o in shapes)  # q, k, v, o, gate, up, down
    lora_per_token = sum(_lora(lora_rank, i, o) for i, o in shapes) if lora_rank else 0
    # QKᵀ and AV: each 2 · heads · head_dim FLOPs per (query, key) pair.
    pairs = seq_len * (seq_len + 1) // 2 if causal else seq_len * seq_len
    attention = 2 * 2 * q_out * pairs
    n = dims.layers
    return Flops(n * per_token * seq_len, n * attention, n * lora_per_token * seq_len)


def projector_flops(dims: ModelDims, seq_len: int) -> Flops:
    """The multi-vector projector (hidden -> 128, with its LoRA) on every token."""
    lora = _lora(dims.lora_rank, dims.text.hidden, dims.projector_dim) if dims.lora_rank else 0
    return Flops(linear=2 * dims.text.hidden * dims.projector_dim * seq_len, lora=lora * seq_len)


def text_input_flops(dims: ModelDims, seq_len: int, *, causal: bool = True) -> Flops:
    """A text input of ``seq_len`` tokens (prefix included): text layers + projector."""
    return text_flops(dims.text, seq_len, causal=causal, lora_rank=dims.lora_rank) + projector_flops(dims, seq_len)


def image_window_sizes(vision: VisionDims, grid_thw: Sequence[int]) -> list[int]:
    """Patch counts of the attention windows of one image, as Qwen2.5-VL tiles its merged grid."""
    t, h, w = (int(x) for x in grid_thw)
    mh, mw = h // vision.merge_size, w // vision.merge_size
    win = vision.window_size // vision.merge_size // vision.patch_size  # window side in merged units
    unit = vision.merge_size**2
    rows = [min(win, mh - r) for r in range(0, mh, win)]
    cols = [min(win, mw - c) for c in range(0, mw, win)]
    return [r * c * unit for _ in range(t) for r in rows for c in cols]


def vision_flops(vision: VisionDims, grid_thw: Sequence[int]) -> Flops:
    """One image through the vision tower: patch embedding, blocks (windowed/full attention), merger."""
    t, h, w = (int(x) for x in grid_thw)
    patches = t * h * w
    d = vision.hidden
    patch_in = vision.in_chans * vision.temporal_patch * vision.patch_size**2
    embed = 2 * patch_in * d * patches
    block_linear = 2 * (d * 3 * d + d * d + 3 * d * vision.intermediate) * patches  # qkv, proj, gate/up/down
    windows = image_window_sizes(vision, grid_thw)
    window_pairs = sum(n * n for n in windows)
    full_pairs = patches * patches  # one image attends over all its patches (images never attend to each other)
    n_full = sum(1 for i in vision.fullatt_blocks if i < vision.depth)
    attention = 2 * 2 * d * (n_full * full_pairs + (vision.depth - n_full) * window_pairs)
    merged = patches // vision.merge_size**2
    merged_in = d * vision.merge_size**2
    merger = 2 * (merged_in * merged_in + merged_in * vision.out_hidden) * merged
    return Flops(linear=embed + vision.depth * block_linear + merger, attention=attention)


def image_flops(dims: ModelDims, grid_thw: Sequence[int], seq_len: int, *, causal: bool = True) -> Flops:
    """An image input: the vision tower, then ``seq_len`` tokens (template + merged image tokens)."""
    if dims.vision is None:
        raise ValueError("the config has no vision_config")
    return vision_flops(dims.vision, grid_thw) + text_input_flops(dims, seq_len, causal=causal)
