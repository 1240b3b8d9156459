"""Loading: the published layout loads; every broken file, key, shape or config is a typed error naming it;
hub ids resolve through the HF cache offline and fail clearly when nothing is cached."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from model import errors
from model.encoder import Encoder
from model.testing import build_tiny_checkpoint


@pytest.fixture
def ckpt(tiny_checkpoint: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_checkpoint, tmp_path / "ckpt"))


def test_published_layout(tiny_checkpoint: Path) -> None:
    index = json.loads((tiny_checkpoint / "model.safetensors.index.json").read_text())
    keys = set(index["weight_map"])
    assert len(set(index["weight_map"].values())) == 2  # sharded
    assert "model.embed_tokens.weight" in keys
    assert "model.norm.weight" in keys
    assert any(k.startswith("visual.blocks.") for k in keys)
    assert {"multi_vector_projector.weight", "multi_vector_projector.bias"} <= keys
    assert not any(k.startswith("lm_head") for k in keys)
    adapters = load_file(str(tiny_checkpoint / "adapters" / "adapter_model.safetensors"))
    assert "base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.retrieval.weight" in adapters
    assert "base_model.model.multi_vector_projector.lora_B.code.weight" in adapters
    assert not any("visual" in k for k in adapters)
    assert all(v.abs().sum() > 0 for k, v in adapters.items() if ".lora_B." in k)
    cfg = json.loads((tiny_checkpoint / "adapters" / "adapter_config.json").read_text())
    assert cfg["lora_alpha"] != cfg["r"]


def test_missing_file(ckpt: Path) -> None:
    (ckpt / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(errors.MissingFileError, match="model-00002-of-00002"):
        Encoder.from_pretrained(ckpt)


def test_missing_adapter_file(ckpt: Path) -> None:
    (ckpt / "adapters" / "adapter_model.safetensors").unlink()
    with pytest.raises(errors.MissingFileError, match="adapter_model"):
        Encoder.from_pretrained(ckpt)


def _edit_shard(ckpt: Path, edit: str) -> None:
    shard = ckpt / "model-00001-of-00002.safetensors"
    tensors = load_file(str(shard))
    key = sorted(tensors)[0]
    if edit == "shape":
        tensors[key] = torch.zeros(*[s + 1 for s in tensors[key].shape])
    else:
        tensors["model.layers.99.extra.weight"] = tensors.pop(key)
    save_file(tensors, str(shard))


def test_wrong_shape_names_key(ckpt: Path) -> None:
    _edit_shard(ckpt, "shape")
    with pytest.raises(errors.ShapeMismatchError, match="model-00001-of-00002"):
        Encoder.from_pretrained(ckpt)


def test_wrong_key_names_key(ckpt: Path) -> None:
    _edit_shard(ckpt, "key")
    with pytest.raises(errors.KeyMismatchError, match="lacks key"):
        Encoder.from_pretrained(ckpt)


def test_missing_lora_weight(ckpt: Path) -> None:
    path = ckpt / "adapters" / "adapter_model.safetensors"
    tensors = load_file(str(path))
    tensors.pop("base_model.model.multi_vector_projector.lora_B.code.weight")
    save_file(tensors, str(path))
    with pytest.raises(errors.KeyMismatchError, match="multi_vector_projector"):
        Encoder.from_pretrained(ckpt)


@pytest.mark.parametrize("key", ["task_names", "matryoshka_dims", "truncate_dim"])
def test_config_without_jina_keys(ckpt: Path, key: str) -> None:
    cfg = json.loads((ckpt / "config.json").read_text())
    del cfg[key]
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(errors.ConfigError, match=key):
        Encoder.from_pretrained(ckpt)


def test_hub_id_offline_without_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(errors.CheckpointNotFoundError, match=r"local copy|--local-dir"):
        Encoder.from_pretrained("jinaai/jina-embeddings-v4", cache_dir=str(tmp_path / "empty"), local_files_only=True)


def test_hub_id_resolves_from_cache_offline(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """A checkpoint in the HF cache layout (models--org--name/snapshots/<rev>, refs/main) loads by hub id."""
    repo = tmp_path / "hub" / "models--jinaai--jina-embeddings-v4"
    revision = "0" * 40
    shutil.copytree(tiny_checkpoint, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    enc = Encoder.from_pretrained("jinaai/jina-embeddings-v4", cache_dir=str(tmp_path / "hub"), local_files_only=True)
    local = Encoder.from_pretrained(tiny_checkpoint)
    a = enc.encode_text(["cache"], task="retrieval", return_numpy=True)
    b = local.encode_text(["cache"], task="retrieval", return_numpy=True)
    assert (a == b).all()


def test_bfloat16_option(tiny_checkpoint: Path) -> None:
    fp32 = Encoder.from_pretrained(tiny_checkpoint)
    bf16 = Encoder.from_pretrained(tiny_checkpoint, dtype="bfloat16")
    assert bf16.info.dtype == torch.bfloat16
    a = fp32.encode_text(["precision"], task="retrieval", return_numpy=True)[0]
    b = bf16.encode_text(["precision"], task="retrieval", return_numpy=True)[0]
    assert float(a @ b) > 0.99


def test_overrides_build_wider_models(tmp_path: Path) -> None:
    path = build_tiny_checkpoint(tmp_path / "w", text_config={"hidden_size": 128, "num_hidden_layers": 1}, shards=1)
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["text_config"]["hidden_size"] == 128
    assert cfg["matryoshka_dims"] == [16, 32, 64, 128]
