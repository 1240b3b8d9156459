"""The one place the encoder's speed substitutions are applied: :func:`apply_speedups` swaps them into a loaded
backbone in a fixed order, per :class:`~model.options.ForwardOptions`, and returns (and logs) what it replaced.

Order matters once, and only here: the fusions make the weights views of one concatenated tensor, so they run after
the module is on its device (``.to`` would move parameters out of the shared storage); the norm slicing wraps
``forward`` on the RMSNorm instances and is independent of the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from model.compiled import EAGER, Kernels, compiled_kernels, require_compiler
from model.fastpath import chunk_token_mlps, chunk_token_norms, compile_norms, speed_up_vision_tower
from model.lora import fuse_projection, fuse_text_projections, fuse_vision_mlps
from model.options import ForwardOptions

__all__ = ["Substitution", "apply_speedups"]

log = logging.getLogger("model.speedups")


@dataclass(frozen=True, slots=True)
class Substitution:
    """``count`` modules under ``where`` were given the fast path ``what``."""

    what: str
    where: str
    count: int

    def __str__(self) -> str:
        return f"{self.what} ×{self.count} ({self.where})"


def apply_speedups(backbone: nn.Module, options: ForwardOptions) -> tuple[Substitution, ...]:
    """Swap the fast paths ``options`` asks for into ``backbone`` (a ``JinaV4Backbone`` on its final device) in
    place; return what was replaced (substitutions that found nothing to replace are left out)."""
    if options.compile:
        require_compiler(next(backbone.parameters()).device)  # a clear error now, not at the first batch
    kernels = compiled_kernels() if options.compile else EAGER
    slices = None if kernels.compiled else options.slice_elements  # a compiled kernel is one fused pass
    visual = backbone.get_submodule("model.visual")
    text = backbone.get_submodule("model.language_model")
    done: list[Substitution] = []

    def record(what: str, where: str, count: int) -> None:
        if count:
            done.append(Substitution(what, where, count))

    _vision_speedups(visual, options, kernels, slices, record)
    if options.fuse_text:
        count = fuse_text_projections(
            text,
            slice_elements=slices,
            mlp_chunk_tokens=options.mlp_chunk_tokens,
            kernels=kernels if kernels.compiled else None,
        )
        record("text q/k/v and gate/up fused, task-grouped LoRA", "model.language_model.layers.*", count)
    elif options.mlp_chunk_tokens is not None:
        record(
            "text MLP in token chunks",
            "model.language_model.layers.*.mlp",
            chunk_token_mlps(text, options.mlp_chunk_tokens),
        )
    if options.fuse_projector:
        fuse_projection(backbone.get_submodule("multi_vector_projector"))
        record("projector LoRA fused", "multi_vector_projector", 1)
    if kernels.norm is not None:
        what = "torch.compile (inductor, dynamic shapes): add+RMSNorm, RMSNorm, rotary, SiLU·up"
        record(what, "*norm*, *attn, *mlp", compile_norms(backbone, kernels.norm))
    elif options.slice_elements is not None:
        record(
            "RMSNorm in cache-sized token slices (CPU)", "*norm*", chunk_token_norms(backbone, options.slice_elements)
        )
    for substitution in done:
        log.info("forward path: %s", substitution)
    return tuple(done)


def _vision_speedups(
    visual: nn.Module,
    options: ForwardOptions,
    kernels: Kernels,
    slices: int | None,
    record: Callable[[str, str, int], None],
) -> None:
    """The vision tower's substitutions, in their order (patch matmul, batched windows, gate/up)."""
    if options.linear_patch_embedding:
        record(
            "patch Conv3d → one matmul",
            "model.visual.patch_embed",
            speed_up_vision_tower(visual, batched_windows=False),
        )
    if options.batched_windows:
        count = speed_up_vision_tower(
            visual,
            linear_patch=False,
            slice_elements=slices,
            plan_once=options.plan_windows_once,
            rotate_fn=kernels.rotate_f32 if kernels.compiled else None,
        )
        record("vision attention, equal windows in one call", "model.visual.blocks.*.attn", count)
    if options.fuse_vision_mlps:
        record(
            "vision gate/up fused",
            "model.visual.blocks.*.mlp",
            fuse_vision_mlps(visual, kernels if kernels.compiled else None),
        )
