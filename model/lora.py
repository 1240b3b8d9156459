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

Rows are routed by a :class:`model.routing.Routing` passed as an argument: the batch rows are split into runs of
consecutive rows with the same task (``Encoder.embed`` orders a batch's rows by task first, so a mixed batch has one
run per task); a run's rows are a contiguous slice of the flattened input and output, so no gather or scatter is
needed at all. For a packed batch (``model.packing``: rows laid end to end as one ``(1, T)`` sequence) the runs are
in tokens instead, and :meth:`~model.routing.Routing.window` narrows them to a slice of the sequence (the MLPs run
long inputs in slices). With no routing every row gets the layers' active PEFT adapters, as PEFT itself would do.

:func:`fuse_text_projections` swaps fused attention and MLP modules into a loaded ``Qwen2_5_VLTextModel`` (and
:func:`fuse_vision_mlps` fuses the vision tower's gate/up) in place; parameter names are unchanged. The fused
weights are views of the parameters (no copies): fuse after the module is on its device (``.to`` would move the
parameters out of the shared storage).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from model import _internals
from model.compiled import Kernels
from model.elementwise import in_token_slices, rotate
from model.packing import Segments, masked_attention, padded_attention, segment_attention
from model.routing import Routing, TaskRun, TokenTasks

__all__ = [
    "FusedMLP",
    "FusedProjections",
    "FusedTextAttention",
    "fuse_projection",
    "fuse_text_projections",
    "fuse_vision_mlps",
    "fused_projection",
]


def _base(layer: nn.Module) -> nn.Linear:
    base = _internals.lora_base(layer)
    if not isinstance(base, nn.Linear):
        raise TypeError(f"expected a Linear projection, got {type(base).__name__}")
    return base


class FusedProjections:
    """Linear projections (PEFT ``lora.Linear`` or plain ``nn.Linear``) that read the same input, as one product.

    ``fused(x, routing)`` returns the projections' outputs concatenated along the last axis; ``splits`` gives their
    widths. Not a module: the layers stay where they are in the module tree, so that no parameter is registered twice.
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
        self.loras: list[Any] = [layer for layer in layers if _internals.is_lora_layer(layer)]  # PEFT lora.Linear
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
        adapters = [_internals.lora_adapters(layer) for layer in self.loras]
        tasks = [set(a) for a in adapters]
        if any(t != tasks[0] for t in tasks):
            raise ValueError(f"projections carry different adapters: {[sorted(t) for t in tasks]}")
        with torch.no_grad():
            for task in sorted(tasks[0]):
                self.lora_a[task] = self._concat_shared([a[task][0].weight for a in adapters])  # (n·r, I)
                parts, rank_at, out_at = [], 0, 0
                for a, width in zip(adapters, self.splits, strict=True):
                    _, lora_b, scaling = a[task]
                    b = lora_b.weight  # (O, r): the parameter itself, no copy
                    r = b.shape[1]
                    parts.append((slice(rank_at, rank_at + r), slice(out_at, out_at + width), b, scaling))
                    rank_at, out_at = rank_at + r, out_at + width
                self.lora_b[task] = parts
            at = 0
            for task, a_cat in self.lora_a.items():
                self.task_ranks[task] = slice(at, at + a_cat.shape[0])
                at += a_cat.shape[0]
            self.lora_a_all = torch.cat(list(self.lora_a.values()))  # (tasks·n·r, I)

    def _runs(self, x: torch.Tensor, flat_rows: int, routing: Routing | None) -> tuple[tuple[TaskRun, ...], int]:
        """The task runs for input ``x`` and how many flattened rows one unit of a run covers."""
        if routing is not None and routing.tokens:  # packed: a run's units are the flattened rows themselves
            units, per_unit = flat_rows, 1
        else:
            units = x.shape[0] if x.dim() > 1 else 1
            per_unit = flat_rows // max(units, 1)
        if routing is None:
            active = _internals.active_adapters(self.loras[0])
            return tuple(TaskRun(task, 0, units) for task in active), per_unit
        if routing.runs and routing.runs[-1].stop != units:
            kind = "tokens" if routing.tokens else "rows"
            raise RuntimeError(f"task routing covers {routing.runs[-1].stop} {kind}, the input has {units}")
        return routing.runs, per_unit

    def __call__(self, x: torch.Tensor, routing: Routing | TokenTasks | None = None) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)  # (N, I), rows of batch row b at [b·per_row, (b+1)·per_row)
        # (N, ΣO); addmm with the bias, as F.linear does
        out = flat @ self.weight.t() if self.bias is None else torch.addmm(self.bias, flat, self.weight.t())
        if isinstance(routing, TokenTasks):
            if self.loras:
                self._add_token_routed(flat, out, routing)
        elif self.loras:
            all_runs, per_row = self._runs(x, flat.shape[0], routing)
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

    def _add_token_routed(self, flat: torch.Tensor, out: torch.Tensor, routing: TokenTasks) -> None:
        """``out += s · (x Aᵀ ⊙ w_task) Bᵀ`` for every task: each token's adapter chosen by its weight column, with
        launches and shapes that do not depend on which token has which task (:class:`~model.routing.TokenTasks`)."""
        weights = routing.weights  # (N, tasks)
        if weights.shape[0] != flat.shape[0]:
            raise RuntimeError(f"task weights cover {weights.shape[0]} tokens, the input has {flat.shape[0]}")
        assert self.lora_a_all is not None
        h_all = flat @ self.lora_a_all.t()  # (N, Σ tasks·k·r): every task's A in one product
        for j, task in enumerate(routing.tasks):
            if task not in self.lora_a:
                continue  # PEFT skips unknown adapters
            h = h_all[:, self.task_ranks[task]] * weights[:, j : j + 1]  # (N, k·r), zero at other tasks' tokens
            for ranks, cols, b, scaling in self.lora_b[task]:
                out[:, cols].addmm_(h[:, ranks], b.t(), alpha=scaling)


class FusedTextAttention(nn.Module):
    """``Qwen2_5_VLAttention`` with q/k/v as one fused projection (same children), called by ``model.forward``
    with the routing and the packed segments as arguments. Attention is sdpa: per packed row
    (:func:`~model.packing.segment_attention`) or over the padded batch (:func:`~model.packing.padded_attention`)."""

    def __init__(
        self,
        attn: nn.Module,
        slice_elements: int | None = None,
        rotate_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (
            attn.get_submodule(n) for n in ("q_proj", "k_proj", "v_proj", "o_proj")
        )
        attrs = _internals.attention_attributes(attn, _internals.TEXT_ATTENTION_ATTRIBUTES)
        self.head_dim = int(attrs["head_dim"])
        self.scaling = float(attrs["scaling"])
        self.layer_idx: int | None = attrs["layer_idx"]
        if not attrs["is_causal"]:
            raise ValueError("the fused text attention is causal; this attention module is not")
        self.slice_elements = slice_elements
        self.rotate_fn = rotate_fn  # None: model.elementwise.rotate (a compiled one: model.compiled)
        self._qkv = FusedProjections([self.q_proj, self.k_proj, self.v_proj])
        self._o = FusedProjections([self.o_proj])

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        routing: Routing | TokenTasks | None = None,
        segments: Segments | None = None,
        key_mask: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, L, D) → (B, L, D). ``segments``: the input is packed ``(1, T)`` rows; ``key_mask`` (B, L) bool: the
        real tokens of a right-padded batch (None: every token is real); ``attn_mask`` (1, 1, T, T) bool: which
        tokens each token attends, causal already (a packed batch as a CUDA graph replays it: ``model.graphs``)."""
        bsz, q_len, _ = hidden_states.shape
        d = self.head_dim
        nq, nk, _nv = (s // d for s in self._qkv.splits)
        qkv = self._qkv(hidden_states, routing).view(bsz, q_len, -1, d)  # (B, L, nq+2·nk, d)
        cos, sin = position_embeddings  # (B, L, d), in the model's dtype as in the stock rotary
        # q and k heads at once, over cache-sized token slices on CPU
        qk = in_token_slices(
            self.rotate_fn or rotate,
            qkv[:, :, : nq + nk],
            cos[:, :, None],
            sin[:, :, None],
            dim=1,
            max_elements=self.slice_elements,
        )
        q = qk[:, :, :nq].transpose(1, 2)  # (B, nq, L, d)
        k = qk[:, :, nq:].transpose(1, 2)  # (B, nk, L, d)
        v = qkv[:, :, nq + nk :].transpose(1, 2)
        if attn_mask is not None:  # the whole mask given (rows told apart by it): one call of fixed shape
            if segments is not None or key_mask is not None:
                raise ValueError("an attention mask comes without segments or a padding mask")
            out = masked_attention(q, k, v, attn_mask, scaling=self.scaling)  # (B, L, nq, d)
        elif segments is not None:  # a packed batch: attention within each row, no padding mask
            if key_mask is not None:
                raise ValueError("a packed batch takes no padding mask")
            out = segment_attention(q, k, v, segments, scaling=self.scaling)  # (1, L, nq, d)
        else:
            out = padded_attention(q, k, v, key_mask, scaling=self.scaling)  # (B, L, nq, d)
        return self._o(out.reshape(bsz, q_len, -1), routing)


class FusedMLP(nn.Module):
    """A gated MLP (``down(act(gate(x)) · up(x))``) with gate/up as one fused projection (same children), over at
    most ``chunk_tokens`` tokens at a time (an MLP mixes no tokens: a long input's activations stay bounded)."""

    def __init__(
        self,
        mlp: nn.Module,
        chunk_tokens: int | None = None,
        silu_mul: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        if chunk_tokens is not None and chunk_tokens < 1:
            raise ValueError(f"chunk_tokens must be positive, got {chunk_tokens}")
        self.gate_proj, self.up_proj, self.down_proj = (
            mlp.get_submodule(n) for n in ("gate_proj", "up_proj", "down_proj")
        )
        self.act_fn = getattr(mlp, "act_fn")  # noqa: B009
        self.chunk_tokens = chunk_tokens
        # a fused silu·up (model.compiled), for a SiLU MLP only; None: the activation, then the product in place
        self.silu_mul = silu_mul if _internals.is_silu(self.act_fn) else None
        self._gate_up = FusedProjections([self.gate_proj, self.up_proj])
        self._down = FusedProjections([self.down_proj])

    def _mlp(self, x: torch.Tensor, routing: Routing | TokenTasks | None) -> torch.Tensor:
        width = self._gate_up.splits[0]
        gate_up = self._gate_up(x, routing)  # (..., 2·I)
        if self.silu_mul is not None:
            return self._down(self.silu_mul(gate_up, width), routing)
        act: torch.Tensor = self.act_fn(gate_up[..., :width])  # a new tensor: multiplied in place
        act.mul_(gate_up[..., width:])
        return self._down(act, routing)

    def forward(self, x: torch.Tensor, routing: Routing | TokenTasks | None = None) -> torch.Tensor:
        # x: (B, S, H); chunks run along the sequence axis and keep the batch axis (routing by rows still applies;
        # a packed routing is narrowed to each chunk's tokens)
        if self.chunk_tokens is None or x.dim() != 3:
            return self._mlp(x, routing)
        rows, length = x.shape[0], x.shape[1]
        step = max(1, self.chunk_tokens // max(1, rows))
        if length <= step:
            return self._mlp(x, routing)
        parts = []
        for i in range(0, length, step):
            stop = min(i + step, length)
            # contiguous slices: a strided (B, step, H) view sends oneDNN's matmul down a far slower path (×2)
            part_routing = None if routing is None else routing.window(i, stop)
            parts.append(self._mlp(x[:, i:stop].contiguous(), part_routing))  # (B, ≤step, H)
        return torch.cat(parts, dim=1)  # (B, S, H)


def fuse_text_projections(
    language_model: nn.Module,
    *,
    slice_elements: int | None = None,
    mlp_chunk_tokens: int | None = None,
    kernels: Kernels | None = None,
) -> int:
    """Swap :class:`FusedTextAttention` / :class:`FusedMLP` into every decoder layer in place; return how many.
    The layers are then run by :func:`model.forward.text_forward` (their call signature is not the stock one)."""
    count = 0
    for layer in getattr(language_model, "layers", []):
        attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
        if isinstance(attn, nn.Module) and not isinstance(attn, FusedTextAttention):
            layer.self_attn = FusedTextAttention(attn, slice_elements, None if kernels is None else kernels.rotate)
            count += 1
        if isinstance(mlp, nn.Module) and not isinstance(mlp, FusedMLP):
            layer.mlp = FusedMLP(mlp, mlp_chunk_tokens, None if kernels is None else kernels.silu_mul)
            count += 1
    return count


def fuse_projection(layer: nn.Module) -> FusedProjections:
    """Make a single (LoRA) projection run as a :class:`FusedProjections`: calling ``layer(x)`` applies its active
    adapter, ``fused_projection(layer)(x, routing)`` routes rows (the module tree is unchanged)."""
    existing = fused_projection(layer)
    if existing is not None:
        return existing
    fused = FusedProjections([layer])
    layer.forward = fused.__call__
    object.__setattr__(layer, "_jina_projection", fused)
    return fused


def fused_projection(layer: nn.Module) -> FusedProjections | None:
    """The :class:`FusedProjections` :func:`fuse_projection` made of ``layer``, if any."""
    fused = getattr(layer, "_jina_projection", None)
    return fused if isinstance(fused, FusedProjections) else None


def fuse_vision_mlps(visual: nn.Module, kernels: Kernels | None = None) -> int:
    """Swap :class:`FusedMLP` into every vision block (gate/up as one product); return how many."""
    count = 0
    for block in getattr(visual, "blocks", []):
        mlp = getattr(block, "mlp", None)
        if isinstance(mlp, nn.Module) and not isinstance(mlp, FusedMLP) and hasattr(mlp, "gate_proj"):
            block.mlp = FusedMLP(mlp, None, None if kernels is None else kernels.silu_mul)
            count += 1
    return count
