"""Every knob of the encoder's forward path in one value: which speed substitutions ``model.speedups`` applies and
with what sizes. ``Encoder.from_pretrained(..., options=ForwardOptions(...))``; the benches pass variants instead of
overwriting module globals.

Each substitution keeps the weights and the math (outputs equal the stock modules' up to float summation order,
checked by ``tests/model``); turning one off is how the benches measure it alone (``bench/levers.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from model.elementwise import SLICE_ELEMENTS

__all__ = ["ForwardOptions"]


@dataclass(frozen=True, slots=True)
class ForwardOptions:
    """The forward path's knobs (defaults: every substitution on, as the server runs).

    >>> ForwardOptions().pack_rows, ForwardOptions.stock().fuse_text
    (True, False)
    """

    linear_patch_embedding: bool = True
    """Vision patch ``Conv3d`` (kernel = stride) → one matrix product (``fastpath.LinearPatchProjection``)."""
    batched_windows: bool = True
    """Vision attention: equal-length windows in one sdpa call (``fastpath.WindowBatchedVisionAttention``)."""
    plan_windows_once: bool = True
    """Plan the window groups once per forward (per ``cu_seqlens`` tensor), not in every block."""
    fuse_vision_mlps: bool = True
    """Vision gate/up as one product (``lora.FusedMLP``)."""
    fuse_text: bool = True
    """Text decoder layers: fused q/k/v and gate/up with task-grouped LoRA (``lora.FusedTextAttention`` /
    ``FusedMLP``), run by ``model.forward``'s decoder loop. Packing needs it; off = the stock modules + PEFT."""
    fuse_projector: bool = True
    """The multi-vector projector's LoRA as one fused projection."""
    pack_rows: bool = True
    """Rows of uneven length run packed end to end, attention within each row (``model.packing``; needs
    ``fuse_text``)."""
    group_tokens: int = 512
    """Packed attention: consecutive short rows attended in one call, up to this many tokens."""
    mlp_chunk_tokens: int | None = 8192
    """Text MLPs over at most this many tokens at a time (bounds a long text's activations); None = whole."""
    slice_elements: int | None = SLICE_ELEMENTS
    """On CPU, norms and rotary embeddings over token slices of at most this many elements (cache-sized);
    None = whole tensors. Not used by the compiled kernels (one fused pass each)."""
    compile: bool = False
    """``torch.compile`` (inductor, dynamic shapes) the elementwise half: residual add + RMSNorm, the other norms,
    rotary, SiLU·up (``model.compiled``); the matmuls, LoRA routing, attention and packing stay eager. Needs
    ``fuse_text``. Off by default: its speed at real width is not measured yet (cold compile took minutes here)."""

    cuda_graphs: bool = False
    """On a CUDA device, text-only batches of at most ``graph_max_tokens`` tokens run as CUDA graphs, one per token
    bucket (``model.graphs``): a query batch is one replay instead of ~1,700 launches. Ignored, with a warning,
    on another device. Needs ``fuse_text``. Off by default until the GPU check has measured it."""
    graph_max_tokens: int = 2048
    """The largest CUDA-graph bucket (packed tokens); buckets are the powers of two from 64 below it, then it."""

    def __post_init__(self) -> None:
        for name in ("group_tokens", "mlp_chunk_tokens", "slice_elements", "graph_max_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"ForwardOptions.{name} must be positive (or None), got {value}")
        if self.compile and not (self.fuse_text and self.fuse_vision_mlps):
            raise ValueError("ForwardOptions.compile needs fuse_text and fuse_vision_mlps (it compiles their pieces)")
        if self.cuda_graphs and not self.fuse_text:
            raise ValueError("ForwardOptions.cuda_graphs needs fuse_text (the graphed forward is the fused decoder)")
        if self.pack_rows and not self.fuse_text:
            raise ValueError("ForwardOptions.pack_rows needs fuse_text (packed attention lives in the fused layers)")

    @classmethod
    def stock(cls) -> ForwardOptions:
        """No substitution at all: the stock transformers modules and PEFT layers, every batch padded."""
        return cls(
            linear_patch_embedding=False,
            batched_windows=False,
            plan_windows_once=False,
            fuse_vision_mlps=False,
            fuse_text=False,
            fuse_projector=False,
            pack_rows=False,
            mlp_chunk_tokens=None,
            slice_elements=None,
        )

    def replace(self, **changes: object) -> ForwardOptions:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
