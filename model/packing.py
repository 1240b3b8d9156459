"""Packed batches: the rows of a batch laid end to end as one sequence, attention kept within each row.

A right-padded batch computes every projection, norm and MLP over ``rows × longest`` tokens, and its attention
over the padded square with a mask (which also stops the fused attention kernels from skipping the causal upper
triangle). Packing runs the decoder on the real tokens only, ``(1, T)`` with ``T = Σ lengths``: everything but
attention mixes no tokens, so it gives the same rows; attention runs per segment (:func:`segment_attention`).

Measured on this project's CPU (real width, bf16, the bench's 16 passages of 302–1981 tokens in length-sorted
batches of 8): the padded batches hold 24,504 tokens for 18,270 real ones (matmuls at the machine's rate
already, so the waste is all time), and the masked attention over a padded 8 × 1981² square takes 1.68 s where
per-row causal attention takes 0.70 s.

Attention plan: consecutive short segments are grouped up to :data:`GROUP_TOKENS` tokens and attended in one
call with a block-diagonal causal mask (a batch of 16 queries is one call, not 16: on a GPU short rows are bound
by kernel launches, not FLOPs); a segment at least that long gets its own call with ``is_causal`` and no mask,
the form the flash kernels (CPU and CUDA) run fastest, with grouped-query attention as the stock sdpa path does
it (``enable_gqa`` without a mask, repeated KV heads with one; also repeated where no fused kernel takes
``enable_gqa``, see :func:`_fused_gqa`). On CUDA, ``torch.nn.attention.varlen`` could
attend every segment in one call; it is not used until it can be measured on a GPU.

``model.forward`` hands the :class:`Segments` of a packed batch to every fused attention layer
(``model.lora.FusedTextAttention``) as an argument; a padded batch goes to :func:`padded_attention` instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

__all__ = ["GROUP_TOKENS", "Segments", "masked_attention", "padded_attention", "segment_attention", "segment_mask"]

GROUP_TOKENS = 512


@dataclass(frozen=True, slots=True)
class _Call:
    """One attention call over packed tokens ``start:stop``; ``mask`` None means causal with no mask."""

    start: int
    stop: int
    mask: torch.Tensor | None


@dataclass(slots=True)
class Segments:
    """Row lengths of a packed sequence and the attention calls that cover it (planned once per device)."""

    lengths: tuple[int, ...]
    group_tokens: int = GROUP_TOKENS
    _plans: dict[torch.device, tuple[_Call, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.lengths or any(n < 1 for n in self.lengths):
            raise ValueError(f"segment lengths must be positive, got {self.lengths}")

    @property
    def total(self) -> int:
        return sum(self.lengths)

    def plan(self, device: torch.device) -> tuple[_Call, ...]:
        if device not in self._plans:
            self._plans[device] = tuple(self._build(device))
        return self._plans[device]

    def _build(self, device: torch.device) -> Iterator[_Call]:
        group: list[int] = []  # lengths of the short segments gathered so far
        group_start = offset = 0
        for n in self.lengths:
            if group and (n >= self.group_tokens or sum(group) + n > self.group_tokens):
                yield _grouped(group, group_start, device)
                group = []
            if n >= self.group_tokens:
                yield _Call(offset, offset + n, None)
            else:
                if not group:
                    group_start = offset
                group.append(n)
            offset += n
        if group:
            yield _grouped(group, group_start, device)


def _grouped(lengths: Sequence[int], start: int, device: torch.device) -> _Call:
    """One call over consecutive segments: causal alone, a block-diagonal causal mask for several."""
    n = sum(lengths)
    if len(lengths) == 1:
        return _Call(start, start + n, None)
    mask = torch.zeros((n, n), dtype=torch.bool, device=device)
    at = 0
    for m in lengths:
        mask[at : at + m, at : at + m] = torch.ones((m, m), dtype=torch.bool, device=device).tril()
        at += m
    return _Call(start, start + n, mask[None, None])  # (1, 1, n, n)


def _fused_gqa(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> bool:
    """Whether ``enable_gqa`` reaches a fused attention kernel for these inputs. On CPU it does (the CPU flash kernel
    takes fewer KV heads). On CUDA only the flash kernel takes them (bfloat16/float16 on compute capability ≥ 8.0);
    elsewhere (float32, a T4 or V100) sdpa falls back to its unfused math kernel, which holds the whole score matrix
    in memory (float32: 68 GB for one 32k-token row), so the KV heads are repeated instead and a fused kernel
    (memory-efficient attention) runs."""
    if query.device.type != "cuda":
        return True
    from torch.backends.cuda import SDPAParams, can_use_flash_attention

    try:
        return bool(can_use_flash_attention(SDPAParams(query, key, value, None, 0.0, True, True), False))
    except (TypeError, RuntimeError):  # another torch's SDPAParams: repeat the heads, which every kernel takes
        return False


def segment_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, segments: Segments, *, scaling: float
) -> torch.Tensor:
    """Causal attention within each segment of packed ``(1, heads, T, d)`` q and ``(1, kv_heads, T, d)`` k/v;
    returns ``(1, T, heads, d)`` (the layout the stock attention functions return)."""
    if query.shape[0] != 1 or query.shape[2] != segments.total:
        raise ValueError(f"packed attention expects (1, heads, {segments.total}, d) queries, got {tuple(query.shape)}")
    heads, kv_heads = query.shape[1], key.shape[1]
    groups = heads // kv_heads
    native_gqa = groups == 1 or _fused_gqa(query, key, value)
    out = torch.empty(
        (1, query.shape[2], heads, value.shape[-1]), dtype=query.dtype, device=query.device
    )  # (1, T, H, d)
    for call in segments.plan(query.device):
        q = query[:, :, call.start : call.stop]  # (1, H, n, d)
        k, v = key[:, :, call.start : call.stop], value[:, :, call.start : call.stop]  # (1, Hkv, n, d)
        if call.mask is None and native_gqa:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scaling, enable_gqa=groups > 1)
        else:
            k, v = _repeat_kv(q, k, v)
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=call.mask, is_causal=call.mask is None, scale=scaling)
        out[:, call.start : call.stop] = o.transpose(1, 2)  # (1, n, H, d)
    return out


def padded_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, key_mask: torch.Tensor | None, *, scaling: float
) -> torch.Tensor:
    """Causal attention over a right-padded batch: ``(B, heads, L, d)`` q, ``(B, kv_heads, L, d)`` k/v and
    ``key_mask`` (B, L) bool, True at real tokens (None: every token is real); returns ``(B, L, heads, d)``.
    Padded positions' outputs are not meaningful (they attend the row's real tokens)."""
    groups = query.shape[1] // key.shape[1]
    if key_mask is None and (groups == 1 or _fused_gqa(query, key, value)):
        out = F.scaled_dot_product_attention(query, key, value, is_causal=True, scale=scaling, enable_gqa=groups > 1)
        return out.transpose(1, 2)
    if key_mask is not None:
        n = query.shape[2]
        causal = torch.ones((n, n), dtype=torch.bool, device=query.device).tril()  # (L, L)
        mask = causal[None, None] & key_mask.to(query.device, torch.bool)[:, None, None, :]  # (B, 1, L, L)
        return masked_attention(query, key, value, mask, scaling=scaling)
    key, value = _repeat_kv(query, key, value)
    out = F.scaled_dot_product_attention(query, key, value, is_causal=True, scale=scaling)
    return out.transpose(1, 2)


def segment_mask(segment_ids: torch.Tensor) -> torch.Tensor:
    """(1, 1, T, T) bool: token ``i`` attends token ``j`` when both carry the same segment id and ``j ≤ i`` — causal
    attention within each row of a packed ``(T,)`` sequence, from a tensor rather than python lengths (the form a
    CUDA graph replays for any batch, ``model.graphs``). Every token attends at least itself, so no row of the
    softmax is empty (a padding segment attends only itself).

    >>> segment_mask(torch.tensor([0, 0, 1, 1, 1]))[0, 0].int().tolist()
    [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 1, 1, 0], [0, 0, 1, 1, 1]]
    """
    same = segment_ids[:, None] == segment_ids[None, :]  # (T, T)
    return same.tril()[None, None]


def masked_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor, *, scaling: float
) -> torch.Tensor:
    """Attention with an explicit bool ``mask`` (broadcast to (B, heads, L, L), True = attend; causal already):
    ``(B, heads, L, d)`` q, ``(B, kv_heads, L, d)`` k/v → ``(B, L, heads, d)``. KV heads repeated, as
    :func:`padded_attention` does with a mask (the flash kernels take no mask; memory-efficient attention does)."""
    key, value = _repeat_kv(query, key, value)
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scaling)
    return out.transpose(1, 2)


def _repeat_kv(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``key`` and ``value`` with each KV head repeated for the query heads that share it (GQA, when sdpa is not
    told ``enable_gqa``)."""
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    return key, value
