"""Each transformers / PEFT internal that ``model/_internals.py`` relies on still exists and behaves as the forward
path assumes. An upgrade that breaks one fails here with a message naming the versions, the internal and the file
to update (rather than as a wrong vector or an AttributeError deep in a forward pass)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import peft
import pytest
import torch
import transformers
from torch import nn

from model import _internals
from model.encoder import Encoder
from model.types import parse_task
from tests.model._modules import TASKS, small_text_model, with_adapters

VERSIONS = f"transformers {transformers.__version__} / peft {peft.__version__}"


@contextlib.contextmanager
def internal(what: str) -> Iterator[None]:
    """Turn any breakage inside the block into one clear failure."""
    try:
        yield
    except (ImportError, AttributeError, TypeError, KeyError, ValueError, AssertionError) as exc:
        pytest.fail(
            f"{VERSIONS}: {what} no longer works as model/_internals.py assumes ({type(exc).__name__}: {exc}). "
            "Update model/_internals.py (and its callers) for this version, or pin the previous one.",
            pytrace=False,
        )


def test_no_init_weights_and_attention_implementation() -> None:
    from transformers import Qwen2_5_VLConfig

    with internal("transformers.initialization.no_init_weights / config._attn_implementation"):
        config = Qwen2_5_VLConfig(text_config={"hidden_size": 32, "num_attention_heads": 4, "num_hidden_layers": 1})
        _internals.set_attention_implementation(config, "sdpa")
        assert config.text_config._attn_implementation == "sdpa"
        assert config.vision_config._attn_implementation == "sdpa"
        with _internals.no_init_weights():
            nn.Linear(4, 4)


def test_text_model_layout() -> None:
    """The names ``model.forward`` runs the text decoder by, and the stock RMSNorm class the slicing wraps."""
    model = small_text_model()
    with internal("Qwen2_5_VLTextModel's layout (embed_tokens, rotary_emb, layers, norm; layer children)"):
        for name in ("embed_tokens", "rotary_emb", "layers", "norm"):
            model.get_submodule(name)
        layer = model.get_submodule("layers.0")
        for name in ("input_layernorm", "self_attn", "post_attention_layernorm", "mlp"):
            layer.get_submodule(name)
        assert isinstance(model.get_submodule("norm"), _internals.rms_norm_type())
        attrs = _internals.attention_attributes(layer.get_submodule("self_attn"), _internals.TEXT_ATTENTION_ATTRIBUTES)
        assert attrs["is_causal"] is True
        cos, sin = model.get_submodule("rotary_emb")(torch.zeros(1, 3, 32), torch.zeros(3, 1, 3, dtype=torch.long))
        assert cos.shape == sin.shape == (1, 3, 8)


def test_vision_attention_gets_one_cu_seqlens_per_forward() -> None:
    """``fastpath.window_plan`` caches a plan per ``cu_seqlens`` tensor: the tower must hand every block the same
    tensor object (one for windowed blocks, one for full-attention blocks)."""
    from transformers import Qwen2_5_VLConfig
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VisionTransformerPretrainedModel

    vision = {"depth": 4, "hidden_size": 32, "num_heads": 2, "intermediate_size": 40, "out_hidden_size": 48}
    config = Qwen2_5_VLConfig(vision_config=vision | {"fullatt_block_indexes": [1, 3]}).vision_config
    config._attn_implementation = "sdpa"
    tower = Qwen2_5_VisionTransformerPretrainedModel(config).eval()
    seen: list[int] = []

    def spy(_mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        seen.append(id(kwargs["cu_seqlens"]))

    with internal("Qwen2_5_VLVisionAttention (class, children qkv/proj, num_heads/scaling, cu_seqlens keyword)"):
        for block in tower.blocks:
            attn = block.attn
            assert isinstance(attn, _internals.vision_attention_type())
            attn.get_submodule("qkv"), attn.get_submodule("proj"), int(attn.num_heads), float(attn.scaling)
            attn.register_forward_pre_hook(spy, with_kwargs=True)
        with torch.inference_mode():
            tower(torch.randn(220, 1176), grid_thw=torch.tensor([[1, 10, 22]]))
        assert len(seen) == 4
        assert seen[0] == seen[2]
        assert seen[1] == seen[3]


def test_image_features_and_rope_index(encoder: Encoder) -> None:
    from PIL import Image

    model = encoder.network.module.model
    item = encoder.processor.prepare_image(Image.new("RGB", (60, 90), "white"), parse_task("retrieval"))
    assert item.pixel_values is not None
    assert item.image_grid_thw is not None
    ids = item.input_ids[None]
    with (
        internal("Qwen2_5_VLModel.get_image_features(return_dict=True).pooler_output / get_rope_index"),
        torch.no_grad(),
    ):
        features = _internals.image_features(model, item.pixel_values, item.image_grid_thw)
        assert features.shape == (int((ids == encoder.config.image_token_id).sum()), encoder.info.hidden_size)
        types = (ids == encoder.config.image_token_id).to(torch.int32)
        positions = _internals.rope_index(model, ids, types, item.image_grid_thw, torch.ones_like(ids))
        assert positions.shape == (3, 1, ids.shape[1])


def test_peft_lora_layer_internals() -> None:
    holder = nn.Module()
    holder.proj = nn.Linear(8, 6)
    module = with_adapters(holder, ["proj"])
    layer = module.get_submodule("proj")
    x = torch.randn(2, 8)
    with internal("peft LoraLayer (lora_A/lora_B/scaling, get_base_layer, active_adapters, _active_adapter)"):
        assert _internals.is_lora_layer(layer)
        assert not _internals.is_lora_layer(nn.Linear(2, 2))
        assert isinstance(_internals.lora_base(layer), nn.Linear)
        adapters = _internals.lora_adapters(layer)
        assert sorted(adapters) == sorted(TASKS)
        for task in TASKS:
            a, b, scaling = adapters[task]
            previous = _internals.set_active_adapter(layer, task)
            assert _internals.active_adapters(layer) == (task,)
            with torch.no_grad():
                want = layer(x)
                base = _internals.lora_base(layer)(x)
                torch.testing.assert_close(want, base + b(a(x)) * scaling)
            _internals.set_active_adapter(layer, previous)
