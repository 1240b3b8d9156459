"""The bench FLOP counter against a hand count and torch's FlopCounterMode on stock Qwen2.5-VL."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.flops import (
    ModelDims,
    TextDims,
    VisionDims,
    image_flops,
    image_window_sizes,
    text_flops,
    text_input_flops,
    vision_flops,
)

TEXT = TextDims(hidden=64, heads=4, kv_heads=2, head_dim=16, intermediate=96, layers=2)
VISION = VisionDims(hidden=32, heads=2, intermediate=40, depth=3, out_hidden=64, fullatt_blocks=(1,))


def test_text_hand_count() -> None:
    # Per layer and token: q 64·64, k 64·32, v 64·32, o 64·64, gate/up 64·96, down 96·64 multiply-adds.
    macs = 64 * 64 + 64 * 32 + 64 * 32 + 64 * 64 + 96 * 64 * 3
    assert macs == 30720
    f = text_flops(TEXT, 10, causal=True)
    assert f.linear == 2 * 2 * 10 * 30720
    # Causal: 1 + 2 + … + 10 = 55 (query, key) pairs, QKᵀ and AV each 64 multiply-adds per pair.
    assert f.attention == 2 * 2 * 2 * 64 * 55
    assert text_flops(TEXT, 10, causal=False).attention == 2 * 2 * 2 * 64 * 100


def test_lora_and_projector_hand_count() -> None:
    dims = ModelDims(TEXT, None, projector_dim=8, lora_rank=4)
    f = text_input_flops(dims, 3)
    per_token_lora = 4 * (64 + 64) + 2 * 4 * (64 + 32) + 4 * (64 + 64) + 2 * 4 * (64 + 96) + 4 * (96 + 64)
    assert f.lora == 2 * 2 * 3 * per_token_lora + 2 * 3 * 4 * (64 + 8)
    assert f.linear == 2 * 2 * 3 * 30720 + 2 * 3 * 64 * 8
    assert f.total == f.linear + f.attention  # LoRA is reported, never in the total


def test_window_tiling_matches_qwen() -> None:
    from transformers.vision_utils import get_vision_window_index

    for grid in [(1, 8, 12), (1, 10, 12), (1, 36, 84), (1, 2, 2), (2, 16, 16)]:
        _, cu = get_vision_window_index(torch.tensor([grid]), spatial_merge_size=2, window_size=112, patch_size=14)
        assert image_window_sizes(VISION, grid) == torch.diff(cu).tolist()


def test_vision_hand_count() -> None:
    f = vision_flops(VISION, (1, 10, 12))  # 120 patches; merged 5x6 in windows of 4x4 merged units
    assert image_window_sizes(VISION, (1, 10, 12)) == [64, 32, 16, 8]
    embed = 2 * 1176 * 32 * 120
    blocks = 3 * 2 * (32 * 96 + 32 * 32 + 3 * 32 * 40) * 120
    merger = 2 * (128 * 128 + 128 * 64) * 30
    assert f.linear == embed + blocks + merger
    window_pairs = 64**2 + 32**2 + 16**2 + 8**2
    assert f.attention == 2 * 2 * 32 * (120**2 + 2 * window_pairs)


def _stock_model() -> torch.nn.Module:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLModel

    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 64,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "vocab_size": 512,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "rope_scaling": {"type": "default", "mrope_section": [2, 3, 3]},
        },
        vision_config={
            "depth": 3,
            "hidden_size": 32,
            "num_heads": 2,
            "intermediate_size": 40,
            "out_hidden_size": 64,
            "fullatt_block_indexes": [1],
        },
        image_token_id=500,
        video_token_id=501,
        vision_start_token_id=502,
        vision_end_token_id=503,
    )
    config._attn_implementation = "eager"  # plain matmuls, which FlopCounterMode counts (full squares)
    config.text_config._attn_implementation = "eager"
    config.vision_config._attn_implementation = "eager"
    torch.manual_seed(0)
    return Qwen2_5_VLModel(config).eval()


@pytest.mark.parametrize("grid", [(1, 10, 12), (1, 8, 4)])
def test_counter_matches_torch_flop_counter(grid: tuple[int, int, int]) -> None:
    model = _stock_model()
    dims = ModelDims(TEXT, VISION, projector_dim=8, lora_rank=0)
    merged = grid[1] * grid[2] // 4
    ids = [7, 8, 502] + [500] * merged + [503, 9, 10]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(
            input_ids=torch.tensor([ids]),
            pixel_values=torch.randn(grid[1] * grid[2], 1176),
            image_grid_thw=torch.tensor([grid]),
        )
    ours = image_flops(dims, grid, len(ids), causal=False)
    projector = 2 * 64 * 8 * len(ids)  # ours counts the multi-vector projector; the stock model has none
    assert counter.get_total_flops() == ours.total - projector
