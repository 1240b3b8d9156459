"""Token-wise elementwise helpers of the forward pass: the rotary embedding and cache-sized token slices.

Neither depends on any other module of ``model/``: the vision fast paths (``model.fastpath``) and the fused text
layers (``model.lora``) both use them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["SLICE_ELEMENTS", "in_token_slices", "rotate", "rotate_in_float32"]

SLICE_ELEMENTS = 1 << 21  # ~2M elements: a float32 slice (8 MiB) and its temporaries stay in a 32 MiB L3


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``x · cos + rotate_half(x) · sin`` (the stock rotary embedding) on a contiguous copy of ``x`` (one call for
    q and k together; ``cos``/``sin`` broadcast to ``x``). Measured on this CPU: the stock ops on strided q/k views
    are the slow part. In float32 the halves are computed apart (no ``cat``, no negated copy, ``addcmul_``); in
    reduced precision the stock formula is kept (bf16 ``addcmul_`` is slower there), so the result is bit-identical.
    """
    x = x.contiguous()
    h = x.shape[-1] // 2
    if x.dtype != torch.float32:
        return x * cos + torch.cat((-x[..., h:], x[..., :h]), dim=-1) * sin
    out = torch.empty_like(x)
    x1, x2, o1, o2 = x[..., :h], x[..., h:], out[..., :h], out[..., h:]
    torch.mul(x1, cos[..., :h], out=o1)
    o1.addcmul_(x2, sin[..., :h], value=-1.0)  # first half: x1·cos - x2·sin
    torch.mul(x2, cos[..., h:], out=o2)
    o2.addcmul_(x1, sin[..., h:])  # second half: x2·cos + x1·sin
    return out


def rotate_in_float32(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """The stock vision rotary: in float32, back to ``x``'s dtype."""
    return rotate(x.float(), cos.float(), sin.float()).to(x.dtype)


def in_token_slices(
    fn: Callable[..., torch.Tensor], *tensors: torch.Tensor, dim: int, max_elements: int | None
) -> torch.Tensor:
    """``fn(*tensors)`` computed over slices of the token axis ``dim`` (whole tokens, at most ``max_elements`` of
    the first tensor per slice) into one result, for an ``fn`` that maps each token on its own (same values as one
    call). On CPU only, where slices that fit the cache run several times faster than memory-bound whole-tensor
    passes; on other devices, for small inputs and with ``max_elements=None`` it is the one call."""
    x = tensors[0]
    if max_elements is None or x.device.type != "cpu":
        return fn(*tensors)
    tokens = x.shape[dim]
    step = max(1, max_elements // max(1, x.numel() // max(1, tokens)))
    if tokens <= step:
        return fn(*tensors)
    first = fn(*(t.narrow(dim, 0, step) for t in tensors))  # the result's dtype and other dims
    out = first.new_empty((*first.shape[:dim], tokens, *first.shape[dim + 1 :]))
    out.narrow(dim, 0, step).copy_(first)
    for i in range(step, tokens, step):
        n = min(step, tokens - i)
        out.narrow(dim, i, n).copy_(fn(*(t.narrow(dim, i, n) for t in tensors)))
    return out


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """The stock Qwen2.5-VL RMSNorm written as one function (float32 inside, back to ``x``'s dtype, then the
    weight), so that a compiler can fuse its passes."""
    h = x.to(torch.float32)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


def add_rms_norm(
    residual: torch.Tensor, delta: torch.Tensor, weight: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(residual + delta, rms_norm(residual + delta))``: a residual add and the next norm in one function."""
    total = residual + delta
    return total, rms_norm(total, weight, eps)


def rotate_functional(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """:func:`rotate` without in-place ops (the form a compiler fuses into one pass): the stock formula."""
    h = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., h:], x[..., :h]), dim=-1) * sin


def rotate_functional_in_float32(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """The stock vision rotary (float32 inside), without in-place ops."""
    return rotate_functional(x.float(), cos.float(), sin.float()).to(x.dtype)


def silu_mul(gate_up: torch.Tensor, width: int) -> torch.Tensor:
    """``silu(gate) · up`` for a fused gate/up output (gate = the first ``width`` columns)."""
    return torch.nn.functional.silu(gate_up[..., :width]) * gate_up[..., width:]
