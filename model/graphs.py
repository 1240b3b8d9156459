"""CUDA graphs for short text batches (``ForwardOptions(cuda_graphs=True)``, server ``JEV4_CUDA_GRAPHS=1``).

A query batch is a few hundred tokens: on a GPU its forward is bound by launching ~1,700 kernels one by one from
Python (bench/README.md: 704 ms of CPU launching vs 152 ms of GPU work per 256 queries on an H100), not by the
GPU. A CUDA graph records those launches once and replays them with one call. A graph replays fixed kernels on
fixed memory, so every batch it serves must have the same shapes and the same python-side decisions. Hence:

**Buckets.** A text-only batch whose total (packed) token count fits a bucket — powers of two from 64 up to
``graph_max_tokens`` and that value itself (:func:`buckets_up_to`) — is packed into exactly ``bucket`` tokens:
its rows end to end, then padding. The padding is one more segment that attends only to itself; its outputs are
dropped. (Placed after every real token, it is already out of their causal attention; its own segment keeps
its values independent of the batch, and no softmax row is empty.) The number of rows needs no bucket: rows
are told apart by segment ids in a tensor, not by the shape. A longer batch, or one with an image, runs the
ordinary eager path.

**Nothing batch-dependent in python.** The eager packed path decides with python integers taken from the batch:
the attention plan (``Segments``: one sdpa call per group of rows, its mask built from the lengths), the LoRA
routing (``Routing.packed``: slices at token offsets) and the scatter back to rows. Captured, those would be
frozen at the first batch's values. Here every such fact is a tensor in one static input (:func:`pack_for_bucket`,
``(4, bucket)`` int64: token ids, positions, segment ids, task index), and the captured function derives from it
the attention mask (:func:`model.packing.segment_mask`, one masked sdpa call per layer) and the per-token adapter
weights (:class:`model.routing.TokenTasks`). Real tokens' outputs equal the eager packed path's: a pad token is
in no real row's segment (masked out of their attention), gets no adapter, and the decoder mixes tokens only in
attention.

Host synchronisations found on the forward path and kept out of the captured region (each would fail a capture
or freeze a value): ``embed_inputs``' ``int(at.sum())`` image-token check and the vision windows'
``cu_seqlens.tolist()`` (images: not graphed); ``Segments``' python lengths and per-group masks, and
``Routing.packed``'s token offsets (replaced as above); ``Network.hidden_states``' scatter ``padded[real] = …``
(a boolean index: ``nonzero``, a device sync; the graph path scatters with an index computed on the host);
``_fused_gqa``'s kernel check (host-only, and not reached: the masked call repeats the KV heads); transformers'
``dynamic_rope_update`` (``torch.max(position_ids)`` for dynamic/longrope RoPE; this model's rope type is
``default``, refused otherwise). Pooling, the multi-vector projection and ``.cpu()`` run after the replay, eager.

**Runner.** :class:`GraphRunner` keeps per bucket a static input buffer, the captured graph and its static output;
it captures a bucket once (after warm-up passes on a side stream, as PyTorch's CUDA-graph docs require; every
bucket in one shared memory pool, largest first), and a batch is: one host→device copy into the static input,
one replay, one clone of the real tokens' outputs (the next replay overwrites the static output). The capture
step is injected (:class:`CudaCapture` on a GPU; :class:`EagerCapture`, a plain call into the same fixed output
memory, lets the tests check the buffer and replay logic on CPU).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from model.forward import AddNorm, Layout, text_forward
from model.packing import segment_mask
from model.routing import TokenTasks

__all__ = [
    "MIN_BUCKET",
    "CudaCapture",
    "EagerCapture",
    "GraphCapture",
    "GraphRunner",
    "bucket_forward",
    "buckets_up_to",
    "pack_for_bucket",
]

_LOG = logging.getLogger("jev4.model.graphs")

MIN_BUCKET = 64
WARMUP_PASSES = 3  # before a capture, on a side stream (PyTorch's docs: lazy init, cuBLAS workspaces, autotuning)

IDS, POSITIONS, SEGMENTS, TASKS = range(4)  # rows of the static input
PAD_SEGMENT = -1
NO_TASK = -1


def buckets_up_to(max_tokens: int, smallest: int = MIN_BUCKET) -> tuple[int, ...]:
    """Powers of two from ``smallest`` below ``max_tokens``, then ``max_tokens`` itself.

    >>> buckets_up_to(2048), buckets_up_to(1000), buckets_up_to(40)
    ((64, 128, 256, 512, 1024, 2048), (64, 128, 256, 512, 1000), (40,))
    """
    if max_tokens < 1:
        raise ValueError(f"the largest CUDA-graph bucket must be positive, got {max_tokens}")
    sizes = []
    size = smallest
    while size < max_tokens:
        sizes.append(size)
        size *= 2
    return (*sizes, max_tokens)


def pack_for_bucket(
    input_ids: torch.Tensor,
    lengths: Sequence[int],
    tasks: Sequence[str],
    bucket: int,
    *,
    pad_token_id: int,
    task_names: Sequence[str],
) -> torch.Tensor:
    """The ``(4, bucket)`` int64 static input of a right-padded text batch ``input_ids`` (B, L) (CPU): the real
    tokens end to end, then padding. Rows: token ids (padding: ``pad_token_id``), positions (0… within each row;
    padding: 0 — it attends only itself, any position will do), segment ids (the row; padding: -1) and task index
    into ``task_names`` (padding, or a task without an adapter: -1, no adapter).

    >>> pack_for_bucket(torch.tensor([[5, 6, 7], [8, 0, 0]]), [3, 1], ["a", "b"], 6, pad_token_id=0,
    ...                 task_names=["a", "b"]).tolist()
    [[5, 6, 7, 8, 0, 0], [0, 1, 2, 0, 0, 0], [0, 0, 0, 1, -1, -1], [0, 0, 0, 1, -1, -1]]
    """
    total = sum(lengths)
    if total > bucket:
        raise ValueError(f"{total} tokens do not fit a bucket of {bucket}")
    if len(lengths) != len(tasks) or len(lengths) != input_ids.shape[0]:
        raise ValueError(f"{input_ids.shape[0]} rows, {len(lengths)} lengths and {len(tasks)} tasks")
    index = {name: i for i, name in enumerate(task_names)}
    out = torch.empty((4, bucket), dtype=torch.int64)
    out[IDS] = pad_token_id
    out[POSITIONS] = 0
    out[SEGMENTS] = PAD_SEGMENT
    out[TASKS] = NO_TASK
    at = 0
    for row, (n, task) in enumerate(zip(lengths, tasks, strict=True)):
        out[IDS, at : at + n] = input_ids[row, :n]
        out[POSITIONS, at : at + n] = torch.arange(n)
        out[SEGMENTS, at : at + n] = row
        out[TASKS, at : at + n] = index.get(task, NO_TASK)
        at += n
    return out


def bucket_forward(
    language_model: nn.Module,
    embed_tokens: nn.Module,
    task_names: tuple[str, ...],
    add_norm: AddNorm | None,
    static: torch.Tensor,
) -> torch.Tensor:
    """(1, bucket, H) last hidden states of the packed batch in ``static`` (:func:`pack_for_bucket`, on the model's
    device): the fused decoder (``model.forward.text_forward``) with the attention mask and the adapter weights
    computed from tensors, so that every python value here depends on the bucket only (the captured region)."""
    ids, positions, segments, tasks = static.unbind(0)  # each (bucket,)
    embeds: torch.Tensor = embed_tokens(ids[None])  # (1, bucket, H)
    pos = positions[None, None].expand(3, 1, -1)  # (3, 1, bucket): text positions, the same on t/h/w
    choices = torch.arange(len(task_names), device=static.device)
    weights = (tasks[:, None] == choices[None, :]).to(embeds.dtype)  # (bucket, tasks): one-hot, zero at padding
    layout = Layout(TokenTasks(task_names, weights), attn_mask=segment_mask(segments))
    return text_forward(language_model, embeds, pos, layout, add_norm)


class GraphCapture(Protocol):
    """How a bucket's forward is recorded: ``capture(fn, pool)`` → ``(replay, out)``, where ``out`` is the tensor
    ``fn`` returned and each ``replay()`` recomputes it in place from the current content of ``fn``'s inputs."""

    def new_pool(self) -> Any: ...

    def __call__(self, fn: Callable[[], torch.Tensor], pool: Any) -> tuple[Callable[[], Any], torch.Tensor]: ...


class CudaCapture:
    """``torch.cuda.CUDAGraph``: ``WARMUP_PASSES`` passes on a side stream, then the capture into ``pool`` (one pool
    shared by every bucket: they never replay at the same time, and capturing the largest first sizes it once)."""

    def new_pool(self) -> Any:
        return torch.cuda.graph_pool_handle()

    def __call__(self, fn: Callable[[], torch.Tensor], pool: Any) -> tuple[Callable[[], Any], torch.Tensor]:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(WARMUP_PASSES):
                fn()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool):
            out = fn()
        return graph.replay, out


class EagerCapture:
    """A stand-in for tests (any device): "replay" runs ``fn`` again and copies its result into the first call's
    output tensor — the same contract as a graph (fixed output memory, recomputed from the static inputs), so that
    the runner's buffer logic (copying inputs in, cloning outputs out, one capture per bucket) is testable on CPU."""

    def new_pool(self) -> Any:
        return None

    def __call__(self, fn: Callable[[], torch.Tensor], pool: Any) -> tuple[Callable[[], Any], torch.Tensor]:
        out = fn()
        return (lambda: out.copy_(fn())), out


@dataclass(slots=True)
class _Graph:
    static_in: torch.Tensor  # (4, bucket) on the device
    replay: Callable[[], Any]
    out: torch.Tensor  # (1, bucket, H): overwritten by every replay


class GraphRunner:
    """One captured forward per bucket, over the static inputs of :func:`pack_for_bucket`; owned by one thread
    at a time (as ``model.network.Network`` is)."""

    def __init__(
        self,
        forward: Callable[[torch.Tensor], torch.Tensor],
        buckets: Sequence[int],
        device: torch.device,
        *,
        pad_token_id: int,
        task_names: tuple[str, ...],
        capture: GraphCapture,
    ) -> None:
        if not buckets or any(b < 1 for b in buckets):
            raise ValueError(f"CUDA-graph buckets must be positive token counts, got {tuple(buckets)}")
        self.forward = forward
        self.buckets = tuple(sorted(set(buckets)))
        self.device = device
        self.pad_token_id = pad_token_id
        self.task_names = task_names
        self._capture = capture
        self._pool: Any = None
        self._graphs: dict[int, _Graph] = {}
        self.captures = 0  # how many captures ran (one per bucket, ever)
        self.capture_seconds = 0.0

    @classmethod
    def for_model(
        cls,
        language_model: nn.Module,
        embed_tokens: nn.Module,
        *,
        buckets: Sequence[int],
        device: torch.device,
        pad_token_id: int,
        task_names: Sequence[str],
        add_norm: AddNorm | None,
        capture: GraphCapture,
    ) -> GraphRunner:
        """A runner of :func:`bucket_forward` over a fused text decoder (``model.forward``)."""
        rotary = language_model.get_submodule("rotary_emb")
        rope_type = getattr(rotary, "rope_type", "default")
        if rope_type != "default":  # dynamic / longrope RoPE read max(position) on the host in every forward
            raise ValueError(f"CUDA graphs need the default rotary embedding; this model's is {rope_type!r}")
        names = tuple(task_names)
        forward = functools.partial(bucket_forward, language_model, embed_tokens, names, add_norm)
        return cls(forward, buckets, device, pad_token_id=pad_token_id, task_names=names, capture=capture)

    @property
    def captured(self) -> tuple[int, ...]:
        return tuple(sorted(self._graphs))

    def bucket_for(self, tokens: int) -> int | None:
        """The smallest bucket that holds ``tokens``; None beyond the largest (the ordinary path runs it)."""
        return next((b for b in self.buckets if tokens <= b), None)

    def pack(self, input_ids: torch.Tensor, lengths: Sequence[int], tasks: Sequence[str], bucket: int) -> torch.Tensor:
        return pack_for_bucket(
            input_ids, lengths, tasks, bucket, pad_token_id=self.pad_token_id, task_names=self.task_names
        )

    def capture(self, bucket: int) -> None:
        """Record ``bucket``'s forward (once; later calls do nothing)."""
        if bucket in self._graphs:
            return
        if bucket not in self.buckets:
            raise ValueError(f"{bucket} is not one of the buckets {self.buckets}")
        start = time.perf_counter()
        if self._pool is None:
            self._pool = self._capture.new_pool()
        static_in = self.pack(torch.empty((0, 0), dtype=torch.int64), [], [], bucket).to(self.device)  # padding
        replay, out = self._capture(lambda: self.forward(static_in), self._pool)
        self._graphs[bucket] = _Graph(static_in, replay, out)
        self.captures += 1
        seconds = time.perf_counter() - start
        self.capture_seconds += seconds
        _LOG.debug("captured the CUDA graph of bucket %d in %.2f s", bucket, seconds)

    def capture_all(self) -> int:
        """Capture every bucket not captured yet, largest first; returns how many were captured now."""
        before = self.captures
        for bucket in reversed(self.buckets):
            self.capture(bucket)
        return self.captures - before

    def run(self, static: torch.Tensor, tokens: int) -> torch.Tensor:
        """(tokens, H): the first ``tokens`` outputs of the bucket's forward over ``static`` ((4, bucket) on the host;
        :meth:`pack`), a copy of its own (the next replay overwrites the static output). Captures on first use."""
        bucket = static.shape[1]
        self.capture(bucket)
        graph = self._graphs[bucket]
        graph.static_in.copy_(static)  # every element: nothing of the previous batch stays
        graph.replay()
        return graph.out[0, :tokens].clone()
