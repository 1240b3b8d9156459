"""Packed batches (``model.packing``): the attention plan, per-segment attention against a float64 loop, token
routing of the fused LoRA projections through chunked MLPs, and the encoder's packed path against its padded one."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from model import network as network_mod
from model.adapters import route_rows
from model.encoder import Encoder
from model.forward import Layout, text_forward
from model.lora import fuse_text_projections
from model.packing import Segments, segment_attention
from model.routing import Routing, TaskRun
from model.types import parse_task
from tests.model._modules import TEXT_TARGETS, small_text_model, with_adapters


def test_plan_groups_short_segments_and_gives_long_ones_their_own_call() -> None:
    segments = Segments((3, 2, 10, 4, 4, 4), group_tokens=8)
    calls = segments.plan(torch.device("cpu"))
    assert [(c.start, c.stop) for c in calls] == [(0, 5), (5, 15), (15, 23), (23, 27)]
    assert calls[1].mask is None
    assert calls[3].mask is None
    first = calls[0].mask
    assert first is not None
    assert first.shape == (1, 1, 5, 5)
    want = torch.zeros(5, 5, dtype=torch.bool)
    want[:3, :3] = torch.ones(3, 3, dtype=torch.bool).tril()
    want[3:, 3:] = torch.ones(2, 2, dtype=torch.bool).tril()
    assert torch.equal(first[0, 0], want)
    assert calls[2].mask is not None
    assert calls[2].mask.shape == (1, 1, 8, 8)
    assert segments.plan(torch.device("cpu")) is calls  # planned once per device
    with pytest.raises(ValueError, match="positive"):
        Segments((3, 0))


def _attention_float64(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scaling: float) -> torch.Tensor:
    """Causal softmax attention of one row, written out: (H, n, d) q, (Hkv, n, d) k/v → (n, H, d)."""
    groups = q.shape[0] // k.shape[0]
    k, v = k.double().repeat_interleave(groups, 0), v.double().repeat_interleave(groups, 0)
    scores = q.double() @ k.transpose(1, 2) * scaling  # (H, n, n)
    n = q.shape[1]
    scores = scores.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf"))
    return (scores.softmax(-1) @ v).transpose(0, 1)  # (n, H, d)


@pytest.mark.parametrize("fused_gqa", [True, False])
@pytest.mark.parametrize("group_tokens", [1, 16, 1000])
def test_segment_attention_equals_each_row_alone(
    group_tokens: int, fused_gqa: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import model.packing

    # False: what a GPU without a fused GQA kernel for these inputs gets (float32, a T4): KV heads repeated
    monkeypatch.setattr(model.packing, "_fused_gqa", lambda q, k, v: fused_gqa)
    kv_heads_seen: list[int] = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        kv_heads_seen.append(k.shape[1] if not kwargs.get("enable_gqa") else -k.shape[1])  # negative: enable_gqa
        return sdpa(q, k, v, **kwargs)

    monkeypatch.setattr(model.packing.F, "scaled_dot_product_attention", spy)
    torch.manual_seed(0)
    lengths = (5, 1, 19, 7, 7, 30, 2)
    total, heads, kv_heads, d = sum(lengths), 4, 2, 8
    q = torch.randn(1, heads, total, d)
    k, v = torch.randn(1, kv_heads, total, d), torch.randn(1, kv_heads, total, d)
    segments = Segments(lengths, group_tokens)
    got = segment_attention(q, k, v, segments, scaling=0.3)  # (1, T, H, d)
    unmasked = sum(c.mask is None for c in segments.plan(q.device))
    if fused_gqa:
        assert kv_heads_seen.count(-kv_heads) == unmasked  # causal calls take the 2 KV heads as they are
    else:
        assert kv_heads_seen == [heads] * len(kv_heads_seen)  # every call gets the KV heads repeated to 4
    at = 0
    for n in lengths:
        rows = slice(at, at + n)
        want = _attention_float64(q[0, :, rows], k[0, :, rows], v[0, :, rows], 0.3)
        torch.testing.assert_close(got[0, rows].double(), want, atol=1e-5, rtol=1e-5)
        at += n
    with pytest.raises(ValueError, match="expects"):
        segment_attention(q[:, :, :-1], k, v, segments, scaling=0.3)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_segment_attention_on_cuda(dtype: torch.dtype) -> None:
    from model.packing import _fused_gqa

    torch.manual_seed(0)
    lengths = (5, 1, 19, 700, 7, 30, 600)  # short rows grouped under a mask, long ones causal alone
    total, heads, kv_heads, d = sum(lengths), 4, 2, 64
    q = torch.randn(1, heads, total, d, device="cuda", dtype=dtype)
    k = torch.randn(1, kv_heads, total, d, device="cuda", dtype=dtype)
    v = torch.randn(1, kv_heads, total, d, device="cuda", dtype=dtype)
    fused = _fused_gqa(q, k, v)
    if dtype == torch.float32:
        assert not fused  # only the flash kernel takes fewer KV heads, and it has no float32
    elif torch.cuda.get_device_capability() >= (8, 0):
        assert fused
    got = segment_attention(q, k, v, Segments(lengths), scaling=0.125).cpu()  # (1, T, H, d)
    tol = 1e-4 if dtype == torch.float32 else 2e-2
    at = 0
    for n in lengths:
        rows = slice(at, at + n)
        want = _attention_float64(q[0, :, rows].cpu(), k[0, :, rows].cpu(), v[0, :, rows].cpu(), 0.125)
        torch.testing.assert_close(got[0, rows].double(), want, atol=tol, rtol=tol)
        at += n


def test_gqa_is_fused_on_cpu() -> None:
    from model.packing import _fused_gqa

    q, kv = torch.randn(1, 4, 3, 8), torch.randn(1, 2, 3, 8)
    assert _fused_gqa(q, kv, kv)


def test_window_narrows_a_packed_routing_only() -> None:
    routing = Routing.packed(["a", "a", "b"], [3, 2, 4])
    assert routing == Routing((TaskRun("a", 0, 5), TaskRun("b", 5, 9)), True)
    assert routing.window(4, 7) == Routing((TaskRun("a", 0, 1), TaskRun("b", 1, 3)), True)
    by_rows = Routing.by_rows(["a", "b"])  # by rows: a slice along the sequence keeps every row
    assert by_rows.window(0, 1) is by_rows
    with pytest.raises(ValueError, match="3 task names for 2 packed rows"):
        Routing.packed(["a", "b", "c"], [1, 2])


@pytest.mark.parametrize("chunk", [None, 5])
def test_packed_text_model_equals_rows_alone(chunk: int | None) -> None:
    """A fused text model run packed (mixed tasks, MLPs in token slices that cut through rows) gives each row
    what plain PEFT gives it alone."""
    stock = with_adapters(small_text_model(), TEXT_TARGETS)
    fused = copy.deepcopy(stock)
    assert fuse_text_projections(fused, mlp_chunk_tokens=chunk) == 4
    tasks, lengths = ["code", "code", "retrieval", "text-matching"], [6, 3, 11, 4]
    torch.manual_seed(2)
    rows = [torch.randint(0, 100, (n,)) for n in lengths]
    ids = torch.cat(rows)[None]  # (1, T)
    positions = torch.cat([torch.arange(n) for n in lengths])[None, None].expand(3, 1, -1)  # (3, 1, T)
    layout = Layout(Routing.packed(tasks, lengths), segments=Segments(tuple(lengths)))
    with torch.inference_mode():
        got = text_forward(fused, fused.embed_tokens(ids), positions, layout)[0]
        at = 0
        for row, task in zip(rows, tasks, strict=True):
            with route_rows(stock, [task]):
                alone = stock(input_ids=row[None]).last_hidden_state[0]
            torch.testing.assert_close(got[at : at + len(row)], alone, atol=1e-5, rtol=1e-5)
            at += len(row)


def test_packed_mixed_tasks_need_fused_layers() -> None:
    stock = with_adapters(small_text_model(), TEXT_TARGETS)
    with pytest.raises(ValueError, match="needs every LoRA layer fused"), route_rows(stock, ["code", "a"], [2, 3]):
        pass


def _mixed_items(encoder: Encoder) -> list[Any]:
    rng = np.random.default_rng(5)
    p = encoder.processor
    return [
        p.prepare_text("short", parse_task("retrieval.query")),
        p.prepare_image(Image.fromarray(rng.integers(0, 256, (70, 150, 3), dtype=np.uint8)), parse_task("retrieval")),
        p.prepare_text("a longer passage about packing rows " * 9, parse_task("code.passage")),
        p.prepare_image(Image.fromarray(rng.integers(0, 256, (120, 50, 3), dtype=np.uint8)), parse_task("code")),
        p.prepare_text("bonjour tout le monde", parse_task("text-matching")),
    ]


def test_encoder_packs_uneven_batches_and_equals_its_padded_path(
    encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert encoder.network.pack_rows
    seen: list[tuple[int, ...]] = []
    real_segments = network_mod.Segments

    def spy(lengths: Any, *args: Any) -> Any:
        seen.append(tuple(lengths))
        return real_segments(lengths, *args)

    monkeypatch.setattr(network_mod, "Segments", spy)
    items = _mixed_items(encoder)
    got = encoder.embed(items, return_multivector=True)
    assert len(seen) == 1
    assert len(set(seen[0])) > 1
    monkeypatch.setattr(encoder.network, "pack_rows", False)
    want = encoder.embed(items, return_multivector=True)
    assert len(seen) == 1  # the padded path packs nothing
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.dense, w.dense, atol=1e-5)
        assert g.multivector is not None
        assert w.multivector is not None
        np.testing.assert_allclose(g.multivector, w.multivector, atol=1e-5)


def test_equal_lengths_run_padded(encoder: Encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("packed a batch without padding")

    monkeypatch.setattr(network_mod, "Segments", refuse)
    p = encoder.processor
    items = [p.prepare_text(t, parse_task("retrieval.query")) for t in ("one two", "six ten")]
    assert items[0].num_tokens == items[1].num_tokens
    encoder.embed(items)
    encoder.embed(items[:1])
