"""The vision fast paths equal the stock transformers modules on the same weights."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from model import Encoder
from model.fastpath import (
    LinearPatchProjection,
    WindowBatchedVisionAttention,
    chunk_token_mlps,
    chunk_token_norms,
    speed_up_vision_tower,
    window_plan,
)
from model.lora import fuse_text_projections
from tests.model._modules import small_text_model


def _stock_tower() -> nn.Module:
    from transformers import Qwen2_5_VLConfig
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VisionTransformerPretrainedModel

    config = Qwen2_5_VLConfig(
        vision_config={
            "depth": 4,
            "hidden_size": 32,
            "num_heads": 2,
            "intermediate_size": 40,
            "out_hidden_size": 48,
            "fullatt_block_indexes": [1, 3],
        }
    ).vision_config
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    return Qwen2_5_VisionTransformerPretrainedModel(config).eval()


# Grids (t, h, w) in patches: windows of several sizes (8×8-patch windows cut at the edges), two images.
GRIDS = [[[1, 8, 8]], [[1, 10, 22]], [[1, 36, 18], [1, 6, 4]], [[1, 2, 2]]]


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("grids", GRIDS)
def test_fast_tower_equals_stock(grids: list[list[int]], device: str) -> None:
    stock = _stock_tower().to(device)
    fast = copy.deepcopy(stock)
    assert speed_up_vision_tower(fast) == 1 + 4
    assert isinstance(fast.patch_embed.proj, LinearPatchProjection)
    assert all(isinstance(b.attn, WindowBatchedVisionAttention) for b in fast.blocks)
    assert fast.state_dict().keys() == stock.state_dict().keys()
    grid = torch.tensor(grids, device=device)
    pixels = torch.randn(int(grid.prod(-1).sum()), 3 * 2 * 14 * 14, device=device)  # (P, 1176)
    with torch.inference_mode():
        want = stock(pixels, grid_thw=grid).pooler_output  # (P/4, 48)
        got = fast(pixels, grid_thw=grid).pooler_output
    tol = 1e-5 if device == "cpu" else 1e-4  # on a GPU the batched and per-window kernels sum in other orders
    torch.testing.assert_close(got, want, atol=tol, rtol=tol)


def test_window_plan_groups_segments_by_length() -> None:
    # windows of 4, 2, 4, 4 tokens, then two whole images of 6 tokens each
    windows = window_plan(torch.tensor([0, 4, 6, 10, 14]))
    assert [(g.length, g.count, g.start) for g in windows] == [(4, 3, 0), (2, 1, 4)]
    four, two = windows
    assert four.index is not None
    assert four.index.tolist() == [0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13]
    assert two.index is None  # alone: a view of tokens 4:6
    (images,) = window_plan(torch.tensor([0, 6, 12]))
    assert (images.length, images.count, images.start, images.index) == (6, 2, 0, None)  # end to end: no gather


def test_window_plan_is_made_once_per_cu_seqlens(monkeypatch: pytest.MonkeyPatch) -> None:
    import model.fastpath as fastpath

    made: list[list[int]] = []
    real = fastpath._plan
    monkeypatch.setattr(fastpath, "_plan", lambda bounds, device: made.append(bounds) or real(bounds, device))
    fast = _stock_tower()
    speed_up_vision_tower(fast)
    stock = _stock_tower()
    for grids in ([[1, 10, 22]], [[1, 36, 18], [1, 6, 4]]):  # one after the other: no stale plan
        grid = torch.tensor(grids)
        pixels = torch.randn(int(grid.prod(-1).sum()), 1176)
        made.clear()
        with torch.inference_mode():
            got = fast(pixels, grid_thw=grid).pooler_output
            want = stock(pixels, grid_thw=grid).pooler_output
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        # 4 blocks, 2 of them windowed: one plan for the windows and one for the whole images, not one per block
        assert len(made) == 2
        assert not fastpath._PLANS  # the forward's cu_seqlens are gone, and their plans with them
    replan = _stock_tower()
    speed_up_vision_tower(replan, plan_once=False)  # the bench's lever off: a plan in every block
    made.clear()
    with torch.inference_mode():
        torch.testing.assert_close(replan(pixels, grid_thw=grid).pooler_output, want, atol=1e-5, rtol=1e-5)
    assert len(made) == 4
    cu = torch.tensor([0, 4, 8])
    window_plan(cu)
    key = id(cu)
    assert key in fastpath._PLANS
    del cu
    assert key not in fastpath._PLANS  # the entry goes with its tensor


def test_fast_tower_bfloat16_close_to_stock() -> None:
    stock = _stock_tower().to(torch.bfloat16)
    fast = copy.deepcopy(stock)
    speed_up_vision_tower(fast)
    grid = torch.tensor([[1, 10, 22]])
    pixels = torch.randn(220, 1176).to(torch.bfloat16)
    with torch.inference_mode():
        want = stock(pixels, grid_thw=grid).pooler_output.float()
        got = fast(pixels, grid_thw=grid).pooler_output.float()
    cos = torch.nn.functional.cosine_similarity(got, want, dim=-1)
    assert cos.min() > 0.999


def test_linear_patch_projection_refuses_other_convolutions() -> None:
    with pytest.raises(ValueError, match="not a patchifying Conv3d"):
        LinearPatchProjection(nn.Conv3d(3, 8, kernel_size=(2, 14, 14), stride=(1, 14, 14), bias=False))


def test_chunked_mlps_equal_unchunked() -> None:
    stock = small_text_model()
    chunked = copy.deepcopy(stock)
    assert chunk_token_mlps(chunked, max_tokens=7) == 2
    assert chunk_token_mlps(chunked, max_tokens=7) == 0  # idempotent
    assert chunked.state_dict().keys() == stock.state_dict().keys()
    ids = torch.randint(0, 100, (2, 23))
    with torch.inference_mode():
        want = stock(input_ids=ids).last_hidden_state
        got = chunked(input_ids=ids).last_hidden_state
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="positive"):
        chunk_token_mlps(chunked, max_tokens=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_norms_in_slices_are_bit_identical(dtype: torch.dtype) -> None:
    stock = small_text_model().to(dtype)
    sliced = copy.deepcopy(stock)
    seen: list[int] = []  # the final norm's calls as the slicing makes them
    inner = sliced.norm.forward
    sliced.norm.forward = lambda x: (seen.append(x.shape[0]), inner(x))[1]
    # 5 tokens of width 32 per slice (plus a remainder): 46 tokens cut into 10 slices, the last one short
    assert chunk_token_norms(sliced, max_elements=5 * 32 + 3) == 2 * 2 + 1
    assert chunk_token_norms(sliced, max_elements=5 * 32 + 3) == 0  # idempotent
    assert sliced.state_dict().keys() == stock.state_dict().keys()
    ids = torch.randint(0, 100, (2, 23))
    with torch.inference_mode():
        want = stock(input_ids=ids).last_hidden_state
        got = sliced(input_ids=ids).last_hidden_state
    assert torch.equal(got, want)
    assert got.dtype == want.dtype == dtype
    assert seen == [5] * 9 + [1]
    short = torch.randn(4, 32, dtype=dtype)  # under one slice: the stock call itself
    assert torch.equal(sliced.norm(short), stock.norm(short))
    assert seen[-1] == 4
    with pytest.raises(ValueError, match="positive"):
        chunk_token_norms(sliced, max_elements=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rotary_in_token_slices_is_bit_identical(monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype) -> None:
    import model.elementwise as elementwise
    import model.lora as lora
    from model.forward import Layout, text_forward
    from model.routing import Routing

    whole_text = small_text_model().to(dtype)
    text = copy.deepcopy(whole_text)
    fuse_text_projections(whole_text)
    fuse_text_projections(text, slice_elements=200)
    whole_tower = _stock_tower().to(dtype)
    tower = copy.deepcopy(whole_tower)
    speed_up_vision_tower(whole_tower)
    speed_up_vision_tower(tower, slice_elements=200)
    ids = torch.randint(0, 100, (2, 23))
    grid = torch.tensor([[1, 10, 22]])
    pixels = torch.randn(220, 1176).to(dtype)
    positions = torch.arange(23)[None, None].expand(3, 2, -1)
    layout = Layout(Routing.by_rows(["retrieval", "retrieval"]))
    with torch.inference_mode():
        want_text = text_forward(whole_text, whole_text.embed_tokens(ids), positions, layout)
        want_vision = whole_tower(pixels, grid_thw=grid).pooler_output
        tokens: list[int] = []  # elements per rotary call
        stock_rotate = elementwise.rotate

        def spy(x: torch.Tensor, c: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
            tokens.append(x.numel())
            return stock_rotate(x, c, s)

        monkeypatch.setattr(lora, "rotate", spy)  # text
        monkeypatch.setattr(elementwise, "rotate", spy)  # vision, through rotate_in_float32
        got_text = text_forward(text, text.embed_tokens(ids), positions, layout)
        text_calls = len(tokens)
        got_vision = tower(pixels, grid_thw=grid).pooler_output
    assert torch.equal(got_text, want_text)
    assert torch.equal(got_vision, want_vision)
    # text q+k: 2 rows · 6 heads · 8 = 96 elements per token → 2 tokens per slice, 12 slices per layer, 2 layers
    assert text_calls == 2 * 12
    assert max(tokens) <= 200
    # vision q+k: 2 · 2 heads · 16 = 64 per patch → 3 patches per slice over 220 patches, 4 blocks
    assert len(tokens) - text_calls == 4 * 74


def test_encoder_slices_norms_on_cpu(encoder: Encoder) -> None:
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLRMSNorm

    norms = [m for m in encoder.network.module.modules() if isinstance(m, Qwen2_5_VLRMSNorm)]
    assert len(norms) > 2
    assert all(getattr(m, "_token_sliced", False) for m in norms)


def test_vision_norms_in_slices_are_bit_identical() -> None:
    fast = _stock_tower()
    speed_up_vision_tower(fast)
    sliced = copy.deepcopy(fast)
    assert chunk_token_norms(sliced, max_elements=3 * 32) == 4 * 2 + 1  # two per block and the merger's
    grid = torch.tensor([[1, 10, 22], [1, 6, 4]])
    pixels = torch.randn(int(grid.prod(-1).sum()), 3 * 2 * 14 * 14)
    with torch.inference_mode():
        assert torch.equal(sliced(pixels, grid_thw=grid).pooler_output, fast(pixels, grid_thw=grid).pooler_output)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rotate_equals_stock_rotary(dtype: torch.dtype) -> None:
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb

    from model.elementwise import rotate

    torch.manual_seed(0)
    q = torch.randn(2, 9, 5, 16).to(dtype)  # (B, L, heads, d)
    k = torch.randn(2, 9, 3, 16).to(dtype)
    angles = torch.randn(2, 9, 16)
    cos, sin = angles.cos().to(dtype), angles.sin().to(dtype)  # halves differ: nothing assumed about them
    want_q, want_k = apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=2)
    got = rotate(torch.cat([q, k], dim=2), cos[:, :, None], sin[:, :, None])
    tol = {"atol": 1e-6, "rtol": 1e-6} if dtype == torch.float32 else {"atol": 0.0, "rtol": 0.0}  # bf16: stock ops
    torch.testing.assert_close(got[:, :, :5], want_q, **tol)
    torch.testing.assert_close(got[:, :, 5:], want_k, **tol)
