"""Fast paths for the stock Qwen2.5-VL vision tower: the same weights and math, fewer and larger kernels.

Two spots of ``transformers``' vision tower cost far more on CPU than their FLOPs (measured on this project's
bench, real width, one page of 3072 patches):

- the patch embedding is a ``Conv3d`` whose kernel equals its stride, i.e. one matrix product in disguise;
  oneDNN's 3-D convolution takes 176 ms in float32 and 658 ms in bfloat16 where ``F.linear`` on the flattened
  patches takes 24 ms and 8 ms. :class:`LinearPatchProjection` is that matrix product (same ``weight``).
- windowed attention runs one ``scaled_dot_product_attention`` call per window (48 windows of 64 patches per
  page, in 3 of every 4 blocks); in bfloat16 the per-call cost dominates (48 calls: 513 ms, one batched call:
  17 ms). :class:`WindowBatchedVisionAttention` stacks the windows of equal length into one call. Which windows
  go together is planned once per forward (:func:`window_plan`, cached per ``cu_seqlens`` tensor, which the tower
  hands to every block): on a GPU, reading ``cu_seqlens`` and sending gather indices in every block made ~300
  host-device copies and syncs per forward (``bench/gpu.py --profile``, H100, 32 blocks).

:func:`speed_up_vision_tower` swaps both into a loaded ``Qwen2_5_VisionTransformerPretrainedModel`` in place;
parameter names (hence ``state_dict`` keys) are unchanged, and outputs equal the stock modules' up to float
summation order (≤ 1e-6 in float32, checked by ``tests/model/test_fastpath.py``).

For long texts, :func:`chunk_token_mlps` bounds the text MLPs' intermediate activations: an MLP mixes no
tokens, so running it over at most ``max_tokens`` tokens at a time gives the same rows, while a 32k-token
input no longer holds three (32768, 11008) tensors at once (2.1 GB in bfloat16, 4.3 GB in float32).

On CPU, :func:`chunk_token_norms` runs every RMSNorm over a cache-sized slice of tokens at a time, and the rotary
embeddings (text and vision) run the same way (:func:`model.elementwise.in_token_slices`). The stock norm makes five
passes over a float32 copy of its input; over a whole packed batch those passes run at the speed of main memory, over
~2M elements they stay in the last-level cache. Measured on this project's CPU host (32 MiB L3, bfloat16, 8192 tokens
× 2048): 76.8 ms per norm whole, 7.0 ms in slices of 1024 tokens; the whole real-width encoder in bfloat16
(``bench/levers.py --only slices``): 16 passages 37.2 s → 34.9 s, 8 pages 28.7 s → 25.7 s. Neither op mixes
tokens: the rows are bit-identical.
"""

from __future__ import annotations

import itertools
import weakref
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model import _internals
from model.elementwise import SLICE_ELEMENTS, in_token_slices, rotate_in_float32

__all__ = [
    "LinearPatchProjection",
    "WindowBatchedVisionAttention",
    "chunk_token_mlps",
    "chunk_token_norms",
    "compile_norms",
    "speed_up_vision_tower",
    "window_plan",
]


class LinearPatchProjection(nn.Module):
    """A stride-equals-kernel ``Conv3d`` without bias, as one matrix product over the flattened patches."""

    def __init__(self, conv: nn.Conv3d) -> None:
        super().__init__()
        if conv.kernel_size != conv.stride or conv.padding != (0, 0, 0) or conv.bias is not None:
            raise ValueError(f"not a patchifying Conv3d: kernel {conv.kernel_size}, stride {conv.stride}")
        self.weight = conv.weight  # (D, C, T, P, P): the checkpoint's tensor, shared

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        # patches: (N, C, T, P, P) -> (N, D, 1, 1, 1), the shape the convolution returns
        flat = patches.reshape(patches.shape[0], -1)  # (N, C·T·P·P)
        out = F.linear(flat, self.weight.reshape(self.weight.shape[0], -1))  # (N, D)
        return out[:, :, None, None, None]


@dataclass(frozen=True, slots=True)
class WindowGroup:
    """``count`` attention segments of ``length`` tokens each, attended in one call: the tokens ``start :
    start + count·length`` when the segments lie end to end, else those at ``index`` (on the device)."""

    length: int
    count: int
    start: int
    index: torch.Tensor | None


_PLANS: dict[int, tuple[weakref.ref[torch.Tensor], tuple[WindowGroup, ...]]] = {}


def _plan(bounds: list[int], device: torch.device) -> tuple[WindowGroup, ...]:
    starts_by_len: dict[int, list[int]] = defaultdict(list)
    for start, stop in itertools.pairwise(bounds):
        if stop > start:
            starts_by_len[stop - start].append(start)
    groups = []
    for length, starts in starts_by_len.items():
        first, n = starts[0], len(starts)
        if starts == list(range(first, first + n * length, length)):  # end to end: a view, no gather
            groups.append(WindowGroup(length, n, first, None))
        else:
            index = (torch.tensor(starts)[:, None] + torch.arange(length)).reshape(-1)  # (n·L,)
            groups.append(WindowGroup(length, n, first, index.to(device)))
    return tuple(groups)


def window_plan(cu_seqlens: torch.Tensor, *, once: bool = True) -> tuple[WindowGroup, ...]:
    """The segments of ``cu_seqlens`` grouped by length, computed once per tensor object: the stock tower passes the
    same ``cu_window_seqlens`` (windows) or ``cu_seqlens`` (whole images) to every block of a forward, so reading
    its values (a device-to-host sync on a GPU) and sending the gather indices happen once per forward, not per
    block. The cache entry goes with the tensor. ``once=False`` plans on every call (``bench/gpu.py``'s
    ``ours-replan`` measures that lever)."""
    key = id(cu_seqlens)
    hit = _PLANS.get(key) if once else None
    if hit is not None and hit[0]() is cu_seqlens:
        return hit[1]
    groups = _plan(cu_seqlens.tolist(), cu_seqlens.device)
    if once:

        def forget(_ref: weakref.ref[torch.Tensor]) -> None:
            _PLANS.pop(key, None)

        _PLANS[key] = (weakref.ref(cu_seqlens, forget), groups)
    return groups


class WindowBatchedVisionAttention(nn.Module):
    """``Qwen2_5_VLVisionAttention`` attending the equal-length segments of ``cu_seqlens`` in one call."""

    def __init__(
        self,
        attn: nn.Module,
        slice_elements: int | None = None,
        plan_once: bool = True,
        rotate_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        qkv, proj = attn.get_submodule("qkv"), attn.get_submodule("proj")
        if not isinstance(qkv, nn.Linear) or not isinstance(proj, nn.Linear):
            raise TypeError(f"expected Linear qkv/proj, got {type(qkv).__name__}/{type(proj).__name__}")
        self.qkv, self.proj = qkv, proj
        self.num_heads: int = int(getattr(attn, "num_heads"))  # noqa: B009 - a plain attribute, not a submodule
        self.scaling: float = float(getattr(attn, "scaling"))  # noqa: B009
        self.slice_elements = slice_elements
        self.plan_once = plan_once
        self.rotate_fn = rotate_fn  # None: model.elementwise.rotate_in_float32 (a compiled one: model.compiled)

    def forward(
        self,
        hidden_states: torch.Tensor,
        cu_seqlens: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        **kwargs: object,
    ) -> torch.Tensor:
        seq = hidden_states.shape[0]
        qkv = self.qkv(hidden_states).reshape(seq, 3, self.num_heads, -1)  # (S, 3, H, d)
        cos, sin = position_embeddings  # (S, d)
        # the stock rotary, in float32 as there, on q and k at once
        qk = in_token_slices(
            self.rotate_fn or rotate_in_float32,
            qkv[:, :2],
            cos[:, None, None],
            sin[:, None, None],
            dim=0,
            max_elements=self.slice_elements,
        )
        q, k = qk.unbind(1)  # each (S, H, d)
        v = qkv[:, 2]
        out = torch.empty_like(v)  # (S, H, d)
        for group in window_plan(cu_seqlens, once=self.plan_once):
            n, length = group.count, group.length
            # segments end to end: a view (no copy); else a gather of their tokens
            at = slice(group.start, group.start + n * length) if group.index is None else group.index
            qs, ks, vs = (t[at].reshape(n, length, self.num_heads, -1).transpose(1, 2) for t in (q, k, v))
            o = F.scaled_dot_product_attention(qs, ks, vs, scale=self.scaling)  # (n, H, L, d)
            out[at] = o.transpose(1, 2).reshape(n * length, self.num_heads, -1)
        result: torch.Tensor = self.proj(out.reshape(seq, -1))  # (S, D)
        return result


def speed_up_vision_tower(
    visual: nn.Module,
    *,
    linear_patch: bool = True,
    batched_windows: bool = True,
    slice_elements: int | None = None,
    plan_once: bool = True,
    rotate_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> int:
    """Swap the fast paths into a stock Qwen2.5-VL vision tower in place; return how many were swapped.

    Modules that are not the expected stock ones are left alone (the function is then a no-op for them).
    """
    attention_type = _internals.vision_attention_type()
    swapped = 0
    patch_embed = getattr(visual, "patch_embed", None)
    proj = getattr(patch_embed, "proj", None)
    if linear_patch and isinstance(proj, nn.Conv3d) and proj.kernel_size == proj.stride and proj.bias is None:
        patch_embed.proj = LinearPatchProjection(proj)  # type: ignore[union-attr]
        swapped += 1
    for block in getattr(visual, "blocks", []) if batched_windows else []:
        if isinstance(block.attn, attention_type):
            block.attn = WindowBatchedVisionAttention(block.attn, slice_elements, plan_once, rotate_fn)
            swapped += 1
    return swapped


def _chunked_forward(forward: Callable[[torch.Tensor], torch.Tensor], max_tokens: int) -> Callable[..., torch.Tensor]:
    def chunked(hidden_states: torch.Tensor) -> torch.Tensor:
        # hidden_states: (B, S, H); the MLP maps each token on its own. Chunks run along the sequence axis and
        # keep the batch axis, so that per-row LoRA routing (PEFT ``adapter_names``, one per row) still applies.
        rows, length = hidden_states.shape[0], hidden_states.shape[-2]
        step = max(1, max_tokens // max(1, rows))
        if hidden_states.dim() != 3 or length <= step:
            return forward(hidden_states)
        parts = []
        for i in range(0, length, step):
            # contiguous slices: a strided (B, step, H) view sends oneDNN's matmul down a far slower path (×2)
            parts.append(forward(hidden_states[:, i : i + step].contiguous()))  # (B, ≤step, H)
        return torch.cat(parts, dim=1)  # (B, S, H)

    return chunked


def chunk_token_mlps(language_model: nn.Module, max_tokens: int = 8192) -> int:
    """Make every (stock, unfused) decoder layer's ``mlp`` run over at most ``max_tokens`` tokens at a time; return
    how many. The fused MLPs (``model.lora.FusedMLP``) chunk by themselves (``chunk_tokens``) and are skipped.

    The module tree is unchanged (``forward`` is wrapped on the instance), so adapters and state-dict keys
    still find ``layers.N.mlp.{gate,up,down}_proj``.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be positive, got {max_tokens}")
    count = 0
    for layer in getattr(language_model, "layers", []):
        mlp = getattr(layer, "mlp", None)
        if isinstance(mlp, nn.Module) and not getattr(mlp, "_token_chunked", False) and not hasattr(mlp, "_gate_up"):
            mlp.forward = _chunked_forward(mlp.forward, max_tokens)
            object.__setattr__(mlp, "_token_chunked", True)  # a plain flag, not a module attribute
            count += 1
    return count


def _norm_in_slices(forward: Callable[[torch.Tensor], torch.Tensor], max_elements: int) -> Callable[..., torch.Tensor]:
    def sliced(hidden_states: torch.Tensor) -> torch.Tensor:
        width = hidden_states.shape[-1]
        flat = hidden_states.reshape(-1, width)  # (N, W)
        out = in_token_slices(forward, flat, dim=0, max_elements=max_elements)
        return out.view(*hidden_states.shape[:-1], width)

    return sliced


def chunk_token_norms(module: nn.Module, max_elements: int = SLICE_ELEMENTS) -> int:
    """Make every ``Qwen2_5_VLRMSNorm`` under ``module`` (text and vision) run over at most ``max_elements``
    input elements (whole tokens) at a time on CPU (:func:`~model.elementwise.in_token_slices`); return how many.

    ``forward`` is wrapped on the instance: the module tree and state-dict keys are unchanged.
    """
    norm_type = _internals.rms_norm_type()
    if max_elements < 1:
        raise ValueError(f"max_elements must be positive, got {max_elements}")
    count = 0
    for norm in module.modules():
        if isinstance(norm, norm_type) and not getattr(norm, "_token_sliced", False):
            norm.forward = _norm_in_slices(norm.forward, max_elements)
            object.__setattr__(norm, "_token_sliced", True)
            count += 1
    return count


def compile_norms(module: nn.Module, norm: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> int:
    """Make every ``Qwen2_5_VLRMSNorm`` under ``module`` call ``norm(x, weight, eps)`` (a compiled RMSNorm,
    ``model.compiled``) instead of its stock forward; return how many. Instead of, not on top of,
    :func:`chunk_token_norms` (a norm already sliced is left alone)."""
    norm_type = _internals.rms_norm_type()
    count = 0
    for layer in module.modules():
        if isinstance(layer, norm_type) and not getattr(layer, "_token_sliced", False):
            weight, eps = _internals.rms_norm_parameters(layer)

            def forward(x: torch.Tensor, weight: torch.Tensor = weight, eps: float = eps) -> torch.Tensor:
                return norm(x, weight, eps)

            layer.forward = forward
            object.__setattr__(layer, "_token_sliced", True)  # one wrapper per norm
            count += 1
    return count
