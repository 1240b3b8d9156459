"""Fused projections with per-row task LoRA: fewer, larger kernels than PEFT's per-layer path, same math.

PEFT's ``lora.Linear`` computes ``base(x) + lora_B(lora_A(x)) * scaling`` per projection: two small matrix
products, a scale and an add, each a full pass over the output. With per-row ``adapter_names`` (a batch that mixes
tasks) it also gathers every task's rows out of ``x`` and scatters their result back, at every layer. On this
project's CPU bench that costs ~20 % of a mixed-task forward.

:class:`FusedProjections` takes the projections that read the same input (an attention layer's q/k/v, an MLP's
gate/up, or a single one) and computes

- all base outputs with one ``addmm`` over the concatenated weights (the layers' own ``weight``/``bias``
  parameters become views into the concatenation: no extra memory, ``state_dict`` unchanged);
- per task, ``h = x_rows @ A_catᵀ`` (the projections' ``lora_A`` stacked, one product) and then
  for each projection ``out_rows[:, its columns] += scaling · h[:, its ranks] @ Bᵀ`` in place (``addmm_``,
  the scale and the add folded into the product).

Rows are routed by :func:`routed`: the batch rows are split into runs of consecutive rows with the same task
(``model.network`` orders a batch's rows by task first, so a mixed batch has one run per task); a run's rows are a
contiguous slice of the flattened input and output, so no gather or scatter is needed at all. For a packed batch
(``model.packing``: rows laid end to end as one ``(1, T)`` sequence) ``routed(names, lengths)`` gives the runs in
tokens instead, and :func:`token_window` narrows them to a slice of the sequence (``model.fastpath`` runs long
MLPs in slices). Outside a :func:`routed` block every row gets the layers' active PEFT adapters, as PEFT itself
would do.

:func:`fuse_text_projections` swaps fused attention and MLP modules into a loaded ``Qwen2_5_VLTextModel`` (and
:func:`fuse_vision_mlps` fuses the vision tower's gate/up) in place; parameter names are unchanged. The fused
weights are views of the parameters (no copies): fuse after the module is on its device (``.to`` would move the
parameters out of the shared storage).
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = [
    "FusedMLP",
    "FusedProjections",
    "FusedTextAttention",
    "TaskRun",
    "fuse_projection",
    "fuse_text_projections",
    "fuse_vision_mlps",
    "routed",
    "task_runs",
    "token_window",
]


@dataclass(frozen=True, slots=True)
class TaskRun:
    """Batch rows (or, packed, tokens) ``start:stop`` use adapter ``task``."""

    task: str
    start: int
    stop: int


@dataclass(frozen=True, slots=True)
class _Routing:
    runs: tuple[TaskRun, ...]
    tokens: bool  # runs index the tokens of a packed (1, T) input, not batch rows


_RUNS: contextvars.ContextVar[_Routing | None] = contextvars.ContextVar("jina_lora_runs", default=None)


def task_runs(names: Sequence[str]) -> tuple[TaskRun, ...]:
    """Runs of consecutive equal names: ``["a", "a", "b", "a"]`` → ``(a 0:2, b 2:3, a 3:4)``."""
    runs: list[TaskRun] = []
    start = 0
    for i in range(1, len(names) + 1):
        if i == len(names) or names[i] != names[start]:
            runs.append(TaskRun(names[start], start, i))
            start = i
    return tuple(runs)


@contextlib.contextmanager
def routed(names: Sequence[str], lengths: Sequence[int] | None = None) -> Iterator[None]:
    """Within the block, fused projections apply adapter ``names[i]`` to batch row ``i`` (this thread/context only);
    with ``lengths``, the input is packed: row ``i`` is the next ``lengths[i]`` tokens of a ``(1, T)`` sequence."""
    runs = task_runs(list(names))
    if lengths is not None:
        if len(lengths) != len(names):
            raise ValueError(f"{len(names)} task names for {len(lengths)} packed rows")
        ends = [0, *itertools.accumulate(lengths)]
        runs = tuple(TaskRun(r.task, ends[r.start], ends[r.stop]) for r in runs)
    token = _RUNS.set(_Routing(runs, lengths is not None))
    try:
        yield
    finally:
        _RUNS.reset(token)


@contextlib.contextmanager
def token_window(start: int, stop: int) -> Iterator[None]:
    """Within the block, a packed routing applies to tokens ``start:stop`` of the sequence only (an input that holds
    just that slice); a routing by batch rows, or none, is left as it is."""
    routing = _RUNS.get()
    if routing is None or not routing.tokens:
        yield
        return
    runs = tuple(
        TaskRun(r.task, max(r.start, start) - start, min(r.stop, stop) - start)
        for r in routing.runs
        if r.start < stop and r.stop > start
    )
    token = _RUNS.set(_Routing(runs, True))
    try:
        yield
    finally:
        _RUNS.reset(token)


def _is_lora(layer: nn.Module) -> bool:
    from peft.tuners.lora import LoraLayer

    return isinstance(layer, LoraLayer)


def _base(layer: nn.Module) -> nn.Linear:
    base = layer.get_base_layer() if _is_lora(layer) else layer  # type: ignore[operator]
    if not isinstance(base, nn.Linear):
        raise TypeError(f"expected a Linear projection, got {type(base).__name__}")
    return base


def _check_plain_lora(layer: nn.Module) -> None:
    """Only vanilla LoRA (no DoRA/variants, no LoRA bias, not merged) is fused."""
    if getattr(layer, "merged", False):
        raise ValueError("cannot fuse a LoRA layer whose adapters are merged into the base weights")
    if getattr(layer, "lora_variant", {}):
        raise ValueError(f"cannot fuse LoRA variants {sorted(getattr(layer, 'lora_variant'))}")  # noqa: B009
    if any(getattr(layer, "lora_bias", {}).values()):
        raise ValueError("cannot fuse a LoRA layer with lora_bias")
    if getattr(layer, "fan_in_fan_out", False):
        raise ValueError("cannot fuse a fan_in_fan_out LoRA layer")


class FusedProjections:
    """Linear projections (PEFT ``lora.Linear`` or plain ``nn.Linear``) that read the same input, as one product.

    ``forward(x)`` returns the projections' outputs concatenated along the last axis; ``splits`` gives their widths.
    Not a module: the layers stay where they are in the module tree, so that no parameter is registered twice.
    """

    def __init__(self, layers: Sequence[nn.Module]) -> None:
        if not layers:
            raise ValueError("no projections to fuse")
        self._layers = list(layers)
        bases = [_base(layer) for layer in layers]
        in_features = {b.in_features for b in bases}
        if len(in_features) != 1:
            raise ValueError(f"projections read inputs of different widths {sorted(in_features)}")
        self.in_features = bases[0].in_features
        self.splits = [b.out_features for b in bases]
        with torch.no_grad():
            self.weight = self._concat_shared([b.weight for b in bases])  # (ΣO, I)
            biases = [b.bias for b in bases]
            if all(b is None for b in biases):
                self.bias: torch.Tensor | None = None
            elif any(b is None for b in biases):
                raise ValueError("cannot fuse projections where only some have a bias")
            else:
                self.bias = self._concat_shared([b for b in biases if b is not None])  # (ΣO,)
        self.loras: list[Any] = [layer for layer in layers if _is_lora(layer)]  # PEFT lora.Linear
        if self.loras and len(self.loras) != len(layers):
            raise ValueError("cannot fuse LoRA and plain projections together")
        self.lora_a: dict[str, torch.Tensor] = {}  # task -> (n·r, I): the projections' A stacked
        self.lora_b: dict[str, list[tuple[slice, slice, torch.Tensor, float]]] = {}  # task -> per projection
        self.lora_a_all: torch.Tensor | None = None  # every task's A stacked (a small copy), for mixed batches
        self.task_ranks: dict[str, slice] = {}  # task -> its columns of ``x @ lora_a_allᵀ``
        if self.loras:
            self._fuse_adapters()
        for layer in self.loras:
            object.__setattr__(layer, "_jina_fused", True)

    @staticmethod
    def _concat_shared(params: Sequence[torch.Tensor]) -> torch.Tensor:
        """The concatenation along dim 0; each parameter becomes a view of it (no copy is kept)."""
        if len(params) == 1:
            return params[0].detach()
        cat = torch.cat([p.detach() for p in params])
        offset = 0
        for p in params:
            p.data = cat[offset : offset + p.shape[0]]
            offset += p.shape[0]
        return cat

    def _fuse_adapters(self) -> None:
        for layer in self.loras:
            _check_plain_lora(layer)
        tasks = [set(layer.lora_A.keys()) for layer in self.loras]
        if any(t != tasks[0] for t in tasks):
            raise ValueError(f"projections carry different adapters: {[sorted(t) for t in tasks]}")
        with torch.no_grad():
            for task in sorted(tasks[0]):
                a = [layer.lora_A[task].weight for layer in self.loras]  # each (r, I)
                self.lora_a[task] = self._concat_shared(a)  # (n·r, I)
                parts, rank_at, out_at = [], 0, 0
                for layer, width in zip(self.loras, self.splits, strict=True):
                    b = layer.lora_B[task].weight  # (O, r): the parameter itself, no copy
                    r = b.shape[1]
                    parts.append(
                        (slice(rank_at, rank_at + r), slice(out_at, out_at + width), b, float(layer.scaling[task]))
                    )
                    rank_at, out_at = rank_at + r, out_at + width
                self.lora_b[task] = parts
            at = 0
            for task, a_cat in self.lora_a.items():
                self.task_ranks[task] = slice(at, at + a_cat.shape[0])
                at += a_cat.shape[0]
            self.lora_a_all = torch.cat(list(self.lora_a.values()))  # (tasks·n·r, I)

    def _runs(self, x: torch.Tensor, flat_rows: int) -> tuple[tuple[TaskRun, ...], int]:
        """The task runs for input ``x`` and how many flattened rows one unit of a run covers."""
        routing = _RUNS.get()
        if routing is not None and routing.tokens:  # packed: a run's units are the flattened rows themselves
            units, per_unit = flat_rows, 1
        else:
            units = x.shape[0] if x.dim() > 1 else 1
            per_unit = flat_rows // max(units, 1)
        if routing is None:
            first = self.loras[0]
            if getattr(first, "disable_adapters", False):
                return (), per_unit
            return tuple(TaskRun(task, 0, units) for task in first.active_adapters), per_unit
        if routing.runs and routing.runs[-1].stop != units:
            kind = "tokens" if routing.tokens else "rows"
            raise RuntimeError(f"task routing covers {routing.runs[-1].stop} {kind}, the input has {units}")
        return routing.runs, per_unit

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)  # (N, I), rows of batch row b at [b·per_row, (b+1)·per_row)
        # (N, ΣO); addmm with the bias, as F.linear does
        out = flat @ self.weight.t() if self.bias is None else torch.addmm(self.bias, flat, self.weight.t())
        if self.loras:
            all_runs, per_row = self._runs(x, flat.shape[0])
            runs = [run for run in all_runs if run.task in self.lora_a]  # PEFT skips unknown adapters
            # several runs (a mixed batch): every task's A for every row in one product (the A products are
            # thin), instead of one small product per run
            h_all = flat @ self.lora_a_all.t() if len(runs) > 1 and self.lora_a_all is not None else None
            for run in runs:
                lo, hi = run.start * per_row, run.stop * per_row
                if h_all is not None:
                    h = h_all[lo:hi, self.task_ranks[run.task]]  # (n, k·r)
                else:
                    h = flat[lo:hi] @ self.lora_a[run.task].t()  # (n, k·r): every projection's A in one product
                rows_out = out[lo:hi]
                for ranks, cols, b, scaling in self.lora_b[run.task]:
                    rows_out[:, cols].addmm_(h[:, ranks], b.t(), alpha=scaling)  # += s · (x Aᵀ) Bᵀ, in place
        return out.view(*x.shape[:-1], out.shape[-1])


class FusedTextAttention(nn.Module):
    """``Qwen2_5_VLAttention`` with q/k/v as one fused projection (same children, same attention call)."""

    def __init__(self, attn: nn.Module) -> None:
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (
            attn.get_submodule(n) for n in ("q_proj", "k_proj", "v_proj", "o_proj")
        )
        self.config: Any = getattr(attn, "config")  # noqa: B009 - plain attributes of the stock module
        self.layer_idx: int | None = getattr(attn, "layer_idx")  # noqa: B009
        self.head_dim = int(getattr(attn, "head_dim"))  # noqa: B009
        self.num_key_value_groups = int(getattr(attn, "num_key_value_groups"))  # noqa: B009
        self.scaling = float(getattr(attn, "scaling"))  # noqa: B009
        self.is_causal = bool(getattr(attn, "is_causal"))  # noqa: B009
        self.attention_dropout = float(getattr(attn, "attention_dropout"))  # noqa: B009
        self.sliding_window = getattr(attn, "sliding_window", None)
        self._qkv = FusedProjections([self.q_proj, self.k_proj, self.v_proj])
        self._o = FusedProjections([self.o_proj])

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache: Any = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
        from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import eager_attention_forward

        from model.fastpath import in_token_slices, rotate
        from model.packing import current_segments, segment_attention

        if position_embeddings is None:
            raise ValueError("position_embeddings are required")
        bsz, q_len, _ = hidden_states.shape
        d = self.head_dim
        nq, nk, _nv = (s // d for s in self._qkv.splits)
        qkv = self._qkv(hidden_states).view(bsz, q_len, -1, d)  # (B, L, nq+2·nk, d)
        cos, sin = position_embeddings  # (B, L, d), in the model's dtype as in the stock rotary
        # q and k heads at once, over cache-sized token slices on CPU
        qk = in_token_slices(rotate, qkv[:, :, : nq + nk], cos[:, :, None], sin[:, :, None], dim=1)
        q = qk[:, :, :nq].transpose(1, 2)  # (B, nq, L, d)
        k = qk[:, :, nq:].transpose(1, 2)  # (B, nk, L, d)
        v = qkv[:, :, nq + nk :].transpose(1, 2)
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx, kwargs=kwargs)
        segments = current_segments()
        if segments is not None:  # a packed batch: attention within each row, no padding mask
            if cache is not None or attention_mask is not None:
                raise ValueError("a packed batch takes no attention mask and no cache")
            out = segment_attention(q, k, v, segments, scaling=self.scaling)  # (1, L, nq, d)
            return self._o(out.reshape(bsz, q_len, -1)), None
        interface: Any = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        out, weights = interface(
            self,
            q,
            k,
            v,
            attention_mask,
            dropout=0.0 if not self.training else self.attention_dropout,
            scaling=self.scaling,
            sliding_window=self.sliding_window,
            position_ids=position_ids,
            **kwargs,
        )
        out = out.reshape(bsz, q_len, -1).contiguous()
        result: torch.Tensor = self._o(out)
        return result, weights


class FusedMLP(nn.Module):
    """A gated MLP (``down(act(gate(x)) · up(x))``) with gate/up as one fused projection (same children)."""

    def __init__(self, mlp: nn.Module) -> None:
        super().__init__()
        self.gate_proj, self.up_proj, self.down_proj = (
            mlp.get_submodule(n) for n in ("gate_proj", "up_proj", "down_proj")
        )
        self.act_fn = getattr(mlp, "act_fn")  # noqa: B009
        self._gate_up = FusedProjections([self.gate_proj, self.up_proj])
        self._down = FusedProjections([self.down_proj])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        width = self._gate_up.splits[0]
        gate_up = self._gate_up(x)  # (..., 2·I)
        act: torch.Tensor = self.act_fn(gate_up[..., :width])  # a new tensor: multiplied in place
        act.mul_(gate_up[..., width:])
        result: torch.Tensor = self._down(act)
        return result


def fuse_text_projections(language_model: nn.Module) -> int:
    """Swap :class:`FusedTextAttention` / :class:`FusedMLP` into every decoder layer in place; return how many."""
    count = 0
    for layer in getattr(language_model, "layers", []):
        attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
        if isinstance(attn, nn.Module) and not isinstance(attn, FusedTextAttention):
            layer.self_attn = FusedTextAttention(attn)
            count += 1
        if isinstance(mlp, nn.Module) and not isinstance(mlp, FusedMLP):
            layer.mlp = FusedMLP(mlp)
            count += 1
    return count


def fuse_projection(layer: nn.Module) -> None:
    """Make a single (LoRA) projection run as a :class:`FusedProjections` (its ``forward`` is replaced on the
    instance; the module tree is unchanged)."""
    if getattr(layer, "_jina_fused", False):
        return
    fused = FusedProjections([layer])
    layer.forward = fused.__call__


def fuse_vision_mlps(visual: nn.Module) -> int:
    """Swap :class:`FusedMLP` into every vision block (gate/up as one product); return how many."""
    count = 0
    for block in getattr(visual, "blocks", []):
        mlp = getattr(block, "mlp", None)
        if isinstance(mlp, nn.Module) and not isinstance(mlp, FusedMLP) and hasattr(mlp, "gate_proj"):
            block.mlp = FusedMLP(mlp)
            count += 1
    return count
