"""CUDA graphs for short text batches (``model.graphs``).

On CPU: the bucketed, padded forward (every fact of the batch a tensor: segment mask, per-token adapter weights)
against the plain eager forward, float32 ≤ 1e-5 — every task, dense and multi-vector, batches of several sizes,
one exactly at a bucket's edge and one longer than the largest bucket (the ordinary path); the runner's buffers
with the capture replaced by a plain call (``EagerCapture``): its own result for each batch, no aliasing, one
capture per bucket. On CUDA (``gpu``, run by ``scripts/gpu-check.sh``): real graphs against eager, float32 ≤ 1e-5
and bfloat16 cosine ≥ 0.9999, captures, and the launches per batch counted with ``torch.profiler``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from model.encoder import Encoder
from model.graphs import (
    EagerCapture,
    GraphRunner,
    buckets_up_to,
    pack_for_bucket,
)
from model.options import ForwardOptions
from model.packing import segment_mask
from model.processor import PreparedInput
from model.types import parse_task

SPECS = ["retrieval.query", "retrieval.passage", "text-matching", "code.query", "code.passage"]
MAX_TOKENS = 128  # buckets 64, 128 in the CPU tests


def _text(encoder: Encoder, tokens: int, spec: str, word: str = "word") -> PreparedInput:
    """A prepared text of exactly ``tokens`` tokens (prefix included): a long text cut to that length."""
    item = encoder.processor.prepare_text(" ".join([word] * 4 * tokens), parse_task(spec), max_length=tokens)
    assert item.num_tokens == tokens
    return item


def _rows(encoder: Encoder, lengths: list[int], salt: str = "") -> list[PreparedInput]:
    words = ["word", "graph", "bonjour", "x", "passage"]
    return [
        _text(encoder, n, SPECS[i % len(SPECS)], words[(i + len(salt)) % len(words)]) for i, n in enumerate(lengths)
    ]


def _assert_equal_outputs(got: list[Any], want: list[Any], atol: float = 1e-5) -> None:
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.dense, w.dense, atol=atol)
        assert g.multivector is not None
        assert w.multivector is not None
        assert g.multivector.shape == w.multivector.shape
        np.testing.assert_allclose(g.multivector, w.multivector, atol=atol)


class _Counting:
    """Wraps a runner's ``run``: how many batches went through a graph."""

    def __init__(self, runner: GraphRunner) -> None:
        self.calls = 0
        self._run = runner.run
        runner.run = self  # type: ignore[method-assign]

    def __call__(self, static: torch.Tensor, tokens: int) -> torch.Tensor:
        self.calls += 1
        return self._run(static, tokens)


@pytest.fixture(scope="module")
def graphed(tiny_checkpoint: Path) -> Encoder:
    encoder = Encoder.from_pretrained(tiny_checkpoint, options=ForwardOptions(graph_max_tokens=MAX_TOKENS))
    encoder.network.enable_graphs(EagerCapture())
    return encoder


# ---- device-independent pieces ------------------------------------------------------------------------------


def test_buckets() -> None:
    assert buckets_up_to(2048) == (64, 128, 256, 512, 1024, 2048)
    assert buckets_up_to(64) == (64,)
    assert buckets_up_to(65) == (64, 65)
    with pytest.raises(ValueError, match="positive"):
        buckets_up_to(0)
    runner = GraphRunner(
        lambda s: s, (128, 64), torch.device("cpu"), pad_token_id=0, task_names=(), capture=EagerCapture()
    )
    assert runner.buckets == (64, 128)
    assert [runner.bucket_for(n) for n in (1, 64, 65, 128, 129)] == [64, 64, 128, 128, None]


def test_pack_for_bucket() -> None:
    ids = torch.tensor([[5, 6, 7], [8, 9, 0], [4, 0, 0]])
    static = pack_for_bucket(ids, [3, 2, 1], ["a", "zz", "b"], 8, pad_token_id=1, task_names=["a", "b"])
    assert static.tolist() == [
        [5, 6, 7, 8, 9, 4, 1, 1],  # ids, then padding
        [0, 1, 2, 0, 1, 0, 0, 0],  # positions within each row
        [0, 0, 0, 1, 1, 2, -1, -1],  # segments: the row; padding its own
        [0, 0, 0, -1, -1, 1, -1, -1],  # task index; "zz" has no adapter, padding none
    ]
    exact = pack_for_bucket(ids, [3, 2, 1], ["a", "a", "a"], 6, pad_token_id=1, task_names=["a"])
    assert exact[2].tolist() == [0, 0, 0, 1, 1, 2]  # a full bucket: no padding segment
    with pytest.raises(ValueError, match="do not fit"):
        pack_for_bucket(ids, [3, 2, 1], ["a", "a", "a"], 5, pad_token_id=1, task_names=["a"])


def test_segment_mask_is_causal_within_segments() -> None:
    seg = torch.tensor([0, 0, 1, 1, 1, -1, -1])
    mask = segment_mask(seg)[0, 0]
    for i in range(7):
        for j in range(7):
            assert bool(mask[i, j]) == (j <= i and int(seg[i]) == int(seg[j]))


def _fake_runner(capture: EagerCapture | None = None) -> GraphRunner:
    """A runner over a forward that makes each output position depend on every row of the static input."""

    def forward(static: torch.Tensor) -> torch.Tensor:
        x = static.to(torch.float32)  # (4, bucket)
        return torch.stack([x.sum(0), x[0] * 10 + x[1]], dim=-1)[None]  # (1, bucket, 2)

    return GraphRunner(
        forward, (8, 16), torch.device("cpu"), pad_token_id=0, task_names=("a",), capture=capture or EagerCapture()
    )


def test_runner_returns_each_batch_its_own_result() -> None:
    runner = _fake_runner()
    first_in = runner.pack(torch.tensor([[3, 4, 5, 6, 7]]), [5], ["a"], 8)
    second_in = runner.pack(torch.tensor([[9, 2]]), [2], ["a"], 8)  # same bucket, shorter, other content
    first = runner.run(first_in, 5)
    second = runner.run(second_in, 2)
    assert torch.equal(second, runner.forward(second_in)[0, :2])  # not the first batch's stale inputs
    assert torch.equal(first, runner.forward(first_in)[0, :5])  # the second replay did not overwrite it
    assert first.data_ptr() != second.data_ptr()
    # padding beyond the shorter batch: exactly the padding of a fresh pack, nothing left of the longer one
    assert torch.equal(runner._graphs[8].static_in, second_in)
    again = runner.run(first_in, 5)
    assert torch.equal(again, first)


def test_runner_captures_once_per_bucket() -> None:
    captured: list[int] = []

    class Recording(EagerCapture):
        def __call__(self, fn: Any, pool: Any) -> Any:
            captured.append(len(captured))
            return super().__call__(fn, pool)

    runner = _fake_runner(Recording())
    for tokens in (3, 8, 5, 1, 12, 16, 9):
        bucket = runner.bucket_for(tokens)
        assert bucket is not None
        runner.run(runner.pack(torch.arange(1, tokens + 1)[None], [tokens], ["a"], bucket), tokens)
    assert runner.captures == len(captured) == 2
    assert runner.captured == (8, 16)
    assert runner.capture_all() == 0  # nothing left to capture
    fresh = _fake_runner()
    assert fresh.capture_all() == 2
    assert fresh.captured == (8, 16)


def test_options() -> None:
    with pytest.raises(ValueError, match="cuda_graphs needs fuse_text"):
        ForwardOptions(cuda_graphs=True, fuse_text=False, pack_rows=False)
    with pytest.raises(ValueError, match="graph_max_tokens must be positive"):
        ForwardOptions(graph_max_tokens=0)


def test_asking_for_graphs_on_cpu_says_so(tiny_checkpoint: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="jev4.model"):
        encoder = Encoder.from_pretrained(tiny_checkpoint, device="cpu", options=ForwardOptions(cuda_graphs=True))
    assert encoder.network.graphs is None
    assert encoder.capture_graphs() == 0
    assert any("CUDA graphs" in r.getMessage() and "cpu" in r.getMessage() for r in caplog.records)


# ---- the tiny model, bucketed and padded, against eager -----------------------------------------------------


@pytest.mark.parametrize(
    "lengths",
    [
        [9],  # one row: eager runs it unpacked
        [5, 5, 5],  # equal lengths: eager runs them padded, without a mask
        [3, 17, 4, 9, 6],  # uneven: eager packs them
        [20, 20, 24],  # exactly 64: the edge of the first bucket, no padding segment
        [20, 20, 25],  # 65: the next bucket
        [4, 30, 7, 11, 5, 3, 13, 8],  # 81 tokens, 8 rows
    ],
)
def test_graphed_float32_equals_eager(encoder: Encoder, graphed: Encoder, lengths: list[int]) -> None:
    assert graphed.network.graphs is not None
    counting = _Counting(graphed.network.graphs)
    rows = _rows(encoder, lengths)
    assert [r.num_tokens for r in rows] == lengths
    assert {r.spec.task.value for r in rows} <= set(graphed.network.graphs.task_names)
    _assert_equal_outputs(graphed.embed(rows, return_multivector=True), encoder.embed(rows, return_multivector=True))
    assert counting.calls == 1  # through a graph (as many as one forward: one per batch)
    graphed.network.graphs.run = counting._run  # type: ignore[method-assign]


def test_every_task_in_one_graphed_batch(encoder: Encoder, graphed: Encoder) -> None:
    rows = _rows(encoder, [4, 6, 8, 10, 12, 5, 7])  # every spec, three adapters, mixed in one batch
    assert {r.spec.task.value for r in rows} == {"retrieval", "text-matching", "code"}
    _assert_equal_outputs(graphed.embed(rows, return_multivector=True), encoder.embed(rows, return_multivector=True))


def test_longer_than_the_largest_bucket_runs_eager(encoder: Encoder, graphed: Encoder) -> None:
    assert graphed.network.graphs is not None
    counting = _Counting(graphed.network.graphs)
    rows = _rows(encoder, [60, 50, 19])  # 129 > 128
    _assert_equal_outputs(graphed.embed(rows, return_multivector=True), encoder.embed(rows, return_multivector=True))
    image = encoder.processor.prepare_image(Image.new("RGB", (56, 56), (9, 80, 200)), parse_task("retrieval"))
    mixed = [rows[2], image]
    _assert_equal_outputs(graphed.embed(mixed, return_multivector=True), encoder.embed(mixed, return_multivector=True))
    assert counting.calls == 0
    graphed.network.graphs.run = counting._run  # type: ignore[method-assign]


def test_consecutive_batches_in_one_bucket(encoder: Encoder, graphed: Encoder) -> None:
    """Two batches of different content in the same bucket, then the first again: each its own result."""
    a = _rows(encoder, [10, 20, 12])
    b = _rows(encoder, [30, 3], salt="b")
    want_a = encoder.embed(a, return_multivector=True)
    want_b = encoder.embed(b, return_multivector=True)
    got_a = graphed.embed(a, return_multivector=True)
    got_b = graphed.embed(b, return_multivector=True)
    _assert_equal_outputs(got_a, want_a)
    _assert_equal_outputs(got_b, want_b)
    _assert_equal_outputs(graphed.embed(a, return_multivector=True), want_a)
    assert graphed.network.graphs is not None
    assert graphed.network.graphs.captures == len(graphed.network.graphs.captured)


def test_graphed_bfloat16_close_to_eager(tiny_checkpoint: Path) -> None:
    eager = Encoder.from_pretrained(tiny_checkpoint, dtype="bfloat16")
    fast = Encoder.from_pretrained(
        tiny_checkpoint, dtype="bfloat16", options=ForwardOptions(graph_max_tokens=MAX_TOKENS)
    )
    fast.network.enable_graphs(EagerCapture())
    rows = _rows(eager, [3, 17, 4, 9, 6])
    for g, w in zip(fast.embed(rows, return_multivector=True), eager.embed(rows, return_multivector=True), strict=True):
        assert float(np.dot(g.dense, w.dense)) >= 0.9999
        cos = torch.nn.functional.cosine_similarity(
            torch.from_numpy(g.multivector),
            torch.from_numpy(w.multivector),  # type: ignore[arg-type]
        )
        assert float(cos.min()) >= 0.999


# ---- CUDA ---------------------------------------------------------------------------------------------------


def _launches(fn: Any) -> int:
    """Kernel and graph launches (CUDA runtime/driver calls) made by one call of ``fn``."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    names = ("LaunchKernel", "GraphLaunch")
    return sum(e.count for e in prof.key_averages() if any(n in e.key for n in names))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_cuda_graphs_on_cuda(tiny_checkpoint: Path, dtype: str) -> None:
    """Real CUDA graphs against the eager path on the same GPU; captures once per bucket, in the warm-up."""
    eager = Encoder.from_pretrained(tiny_checkpoint, dtype=dtype, device="cuda")
    options = ForwardOptions(cuda_graphs=True, graph_max_tokens=MAX_TOKENS)
    fast = Encoder.from_pretrained(tiny_checkpoint, dtype=dtype, device="cuda", options=options)
    runner = fast.network.graphs
    assert runner is not None
    assert fast.capture_graphs() == len(runner.buckets) == 2
    batches = [_rows(eager, n) for n in ([9], [3, 17, 4, 9, 6], [20, 20, 24], [20, 20, 25], [4, 30, 7, 11, 5, 3])]
    batches.append(_rows(eager, [30, 3], salt="b"))
    for rows in [*batches, batches[1]]:
        got = fast.embed(rows, return_multivector=True)
        want = eager.embed(rows, return_multivector=True)
        if dtype == "float32":
            _assert_equal_outputs(got, want)
        else:
            for g, w in zip(got, want, strict=True):
                assert float(np.dot(g.dense, w.dense)) >= 0.9999
    assert runner.captures == 2  # nothing captured after the warm-up


@pytest.mark.gpu
def test_cuda_graphs_launch_a_handful_of_kernels(tiny_checkpoint: Path) -> None:
    eager = Encoder.from_pretrained(tiny_checkpoint, device="cuda")
    fast = Encoder.from_pretrained(tiny_checkpoint, device="cuda", options=ForwardOptions(cuda_graphs=True))
    fast.capture_graphs()
    rows = _rows(eager, [3, 17, 4, 9, 6, 12, 8, 5])
    batch_eager, batch_fast = eager.network.collate(rows), fast.network.collate(rows)
    n_eager = _launches(lambda: eager.network.hidden_states(batch_eager))
    n_fast = _launches(lambda: fast.network.hidden_states(batch_fast))
    n_embed = _launches(lambda: fast.embed(rows, return_multivector=True))
    print(f"launches per forward: eager {n_eager}, CUDA graph {n_fast} (whole embed with pooling: {n_embed})")
    assert n_fast <= 8  # the replay, the clone, the scatter back to rows
    assert n_eager >= 5 * n_fast
