"""The fused projections (``model.lora``) equal PEFT's LoRA layers on the same weights, per task and mixed."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from model.adapters import route_rows
from model.lora import (
    FusedMLP,
    FusedProjections,
    FusedTextAttention,
    fuse_projection,
    fuse_text_projections,
    fuse_vision_mlps,
    fused_projection,
)
from model.routing import Routing, TaskRun, task_runs
from tests.model._modules import TASKS, TEXT_TARGETS, run_fused, small_text_model, with_adapters


def test_task_runs() -> None:
    assert task_runs(["a", "a", "b", "a"]) == (TaskRun("a", 0, 2), TaskRun("b", 2, 3), TaskRun("a", 3, 4))
    assert task_runs([]) == ()


@pytest.mark.parametrize(
    "tasks",
    [
        ["retrieval"] * 3,
        ["code", "code", "code"],
        ["retrieval", "retrieval", "code"],
        ["code", "retrieval", "text-matching"],
        ["text-matching", "retrieval", "text-matching"],  # runs not grouped: still exact
    ],
)
def test_fused_text_model_equals_peft(tasks: list[str]) -> None:
    stock = with_adapters(small_text_model(), TEXT_TARGETS)
    fused = copy.deepcopy(stock)
    assert fuse_text_projections(fused) == 4
    assert fuse_text_projections(fused) == 0  # idempotent
    assert all(isinstance(layer.self_attn, FusedTextAttention) for layer in fused.layers)
    assert all(isinstance(layer.mlp, FusedMLP) for layer in fused.layers)
    assert fused.state_dict().keys() == stock.state_dict().keys()
    ids = torch.randint(0, 100, (len(tasks), 11))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0  # right padding on one row
    with torch.inference_mode():
        with route_rows(stock, tasks):
            want = stock(input_ids=ids, attention_mask=mask).last_hidden_state
        got = run_fused(fused, ids, tasks, mask)
        for row, task in enumerate(tasks):  # each row as PEFT's plain single-task path gives it
            with route_rows(stock, [task]):
                alone = stock(input_ids=ids[row : row + 1], attention_mask=mask[row : row + 1]).last_hidden_state
            n = int(mask[row].sum())  # real tokens (padded positions are not outputs)
            torch.testing.assert_close(got[row : row + 1, :n], alone[:, :n], atol=1e-5, rtol=1e-5)
    real = mask.bool()
    torch.testing.assert_close(got[real], want[real], atol=1e-5, rtol=1e-5)


def test_fused_weights_are_views_of_the_parameters() -> None:
    fused = with_adapters(small_text_model(), TEXT_TARGETS)
    before = sum(p.numel() for p in fused.parameters())
    fuse_text_projections(fused)
    assert sum(p.numel() for p in fused.parameters()) == before
    attn = fused.layers[0].self_attn
    q = attn.q_proj.base_layer.weight
    assert q.data_ptr() == attn._qkv.weight.data_ptr()  # the parameter lives inside the concatenation
    with torch.no_grad():
        attn.k_proj.base_layer.weight.add_(1.0)
    torch.testing.assert_close(attn._qkv.weight[q.shape[0] : q.shape[0] + 16], attn.k_proj.base_layer.weight)


def test_fused_text_model_bfloat16_close_to_peft() -> None:
    stock = with_adapters(small_text_model(), TEXT_TARGETS).to(torch.bfloat16)
    fused = copy.deepcopy(stock)
    fuse_text_projections(fused)
    tasks = ["code", "retrieval", "retrieval", "text-matching"]
    ids = torch.randint(0, 100, (4, 13))
    with torch.inference_mode():
        with route_rows(stock, tasks):
            want = stock(input_ids=ids).last_hidden_state.float()
        got = run_fused(fused, ids, tasks).float()
    cos = torch.nn.functional.cosine_similarity(got, want, dim=-1)
    assert cos.min() > 0.999


def test_single_projection_and_active_adapter_outside_routing() -> None:
    holder = nn.Module()
    holder.proj = nn.Linear(32, 8, bias=True)
    stock = with_adapters(holder, ["proj"])
    fused = copy.deepcopy(stock)
    projection = fuse_projection(fused.proj)
    assert fuse_projection(fused.proj) is projection is fused_projection(fused.proj)  # once
    x = torch.randn(3, 5, 32)
    with torch.inference_mode():
        torch.testing.assert_close(fused.proj(x), stock.proj(x), atol=1e-6, rtol=1e-6)  # active adapter: the first
        for task in TASKS:
            with route_rows(stock, [task] * 3):
                want = stock.proj(x)
            torch.testing.assert_close(projection(x, Routing.by_rows([task] * 3)), want, atol=1e-6, rtol=1e-6)
        tasks = ["code", "retrieval", "code"]
        with route_rows(stock, tasks):
            want = stock.proj(x)
        torch.testing.assert_close(projection(x, Routing.by_rows(tasks)), want, atol=1e-6, rtol=1e-6)
        with pytest.raises(RuntimeError, match="covers 2 rows, the input has 3"):
            projection(x, Routing.by_rows(["code", "code"]))


def test_fusion_refuses_mismatched_projections() -> None:
    with pytest.raises(ValueError, match="only some have a bias"):
        FusedProjections([nn.Linear(4, 4, bias=True), nn.Linear(4, 4, bias=False)])
    with pytest.raises(ValueError, match="different widths"):
        FusedProjections([nn.Linear(4, 4), nn.Linear(5, 4)])


def test_fused_vision_mlps_equal_stock() -> None:
    from transformers import Qwen2_5_VLConfig
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VisionTransformerPretrainedModel

    config = Qwen2_5_VLConfig(
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "num_heads": 2,
            "intermediate_size": 40,
            "out_hidden_size": 48,
            "fullatt_block_indexes": [1],
        }
    ).vision_config
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    stock = Qwen2_5_VisionTransformerPretrainedModel(config).eval()
    fused = copy.deepcopy(stock)
    assert fuse_vision_mlps(fused) == 2
    assert fused.state_dict().keys() == stock.state_dict().keys()
    grid = torch.tensor([[1, 10, 22]])
    pixels = torch.randn(220, 1176)
    with torch.inference_mode():
        want = stock(pixels, grid_thw=grid).pooler_output
        got = fused(pixels, grid_thw=grid).pooler_output
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
