"""Parity: the encoder equals an independent, straightforward computation on the same checkpoint.

The reference path here shares only tokenization/preprocessing (``model.processor``, checked bit for bit against
the reference's goldens in test_processor.py). Everything else is written out plainly: stock
``Qwen2_5_VLModel`` with the legacy keys renamed by hand, ONE task's LoRA loaded the plain PEFT way
(``PeftModel.from_pretrained`` on a single-adapter directory written here), the stock forward computing its own
M-RoPE positions, one row at a time, and the pooling rules of the published code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

from model.encoder import Encoder
from model.processor import PreparedInput
from model.types import parse_task

TOL = 1e-5
TEXTS = ["What is the capital of France?", "Late interaction scores every query token.", "x"]
SPECS = ["retrieval.query", "retrieval.passage", "text-matching", "code.query", "code.passage"]


def _images() -> list[Image.Image]:
    rng = np.random.default_rng(7)
    sizes = [(90, 60), (40, 500), (300, 200), (56, 56)]  # (w, h): small, tall strip, landscape, tiny square
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]


class Reference(nn.Module):
    def __init__(self, backbone: nn.Module, projector: nn.Linear):
        super().__init__()
        self.model = backbone
        self.multi_vector_projector = projector


def _single_task_adapter(checkpoint: Path, task: str, out: Path) -> Path:
    weights = load_file(str(checkpoint / "adapters" / "adapter_model.safetensors"))
    tag = f".{task}.weight"
    single = {k.replace(tag, ".weight"): v for k, v in weights.items() if k.endswith(tag)}
    out.mkdir(parents=True, exist_ok=True)
    save_file(single, str(out / "adapter_model.safetensors"))
    cfg = json.loads((checkpoint / "adapters" / "adapter_config.json").read_text())
    (out / "adapter_config.json").write_text(json.dumps(cfg))
    return out


def _reference_model(checkpoint: Path, task: str, tmp: Path) -> Any:
    from peft import PeftModel
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLModel

    raw = json.loads((checkpoint / "config.json").read_text())
    cfg = Qwen2_5_VLConfig(**{k: v for k, v in raw.items() if k not in ("architectures", "model_type")})
    backbone = Qwen2_5_VLModel(cfg)
    projector = nn.Linear(raw["text_config"]["hidden_size"], raw["multi_vector_projector_dim"])
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(checkpoint.glob("model-*.safetensors")):
        state |= load_file(str(shard))
    proj = {k.split(".", 1)[1]: state.pop(k) for k in list(state) if k.startswith("multi_vector_projector.")}
    renamed = {("language_model." + k[len("model.") :] if k.startswith("model.") else k): v for k, v in state.items()}
    missing, unexpected = backbone.load_state_dict(renamed, strict=False)
    assert not unexpected
    assert not missing
    projector.load_state_dict(proj)
    adapter_dir = _single_task_adapter(checkpoint, task, tmp / f"adapter-{task}")
    return PeftModel.from_pretrained(Reference(backbone, projector), str(adapter_dir)).eval()


def _reference_row(ref: Any, item: PreparedInput, vision_start: int, vision_end: int) -> tuple[np.ndarray, np.ndarray]:
    ids = item.input_ids[None]  # (1, L)
    kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "use_cache": False}
    if item.pixel_values is not None:
        kwargs |= {
            "pixel_values": item.pixel_values,
            "image_grid_thw": item.image_grid_thw,
            "mm_token_type_ids": (ids == 151655).int(),
        }
    with torch.no_grad():
        hidden = ref.base_model.model.model(**kwargs).last_hidden_state[0]  # (L, H)
        multi = ref.base_model.model.multi_vector_projector(hidden)  # (L, 128)
    tokens = item.input_ids.tolist()
    if vision_start in tokens:
        start, end = tokens.index(vision_start), tokens.index(vision_end)
        pooled = hidden[start : end + 1].mean(0)
    else:
        pooled = hidden.mean(0)
    dense = (pooled / pooled.norm()).numpy()
    multi = multi / multi.norm(dim=-1, keepdim=True)
    return dense, multi.numpy()


@pytest.fixture(scope="module", params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def on_device(request: pytest.FixtureRequest, encoder: Encoder, tiny_checkpoint: Path) -> tuple[Encoder, float]:
    """The encoder on each device (float32; on CUDA loaded there) and its tolerance against the CPU reference: on a
    GPU the same float32 sums run in another order."""
    if request.param == "cpu":
        return encoder, TOL
    return Encoder.from_pretrained(tiny_checkpoint, dtype="float32", device="cuda"), 1e-4


@pytest.fixture(scope="module")
def references(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("refs")
    return {task: _reference_model(tiny_checkpoint, task, tmp) for task in ("retrieval", "text-matching", "code")}


@pytest.mark.parametrize("task", SPECS)
def test_text_parity_every_task_and_dimension(
    on_device: tuple[Encoder, float], references: dict[str, Any], task: str
) -> None:
    encoder, tol = on_device
    spec = parse_task(task)
    rows = [encoder.processor.prepare_text(t, spec) for t in TEXTS]
    want = [_reference_row(references[spec.task.value], r, 151652, 151653) for r in rows]
    got = encoder.encode_text(TEXTS, task=task, return_numpy=True)  # (N, H), batched with padding
    np.testing.assert_allclose(got, np.stack([w[0] for w in want]), atol=tol)
    for dim in encoder.info.matryoshka_dims:
        trunc = encoder.encode_text(TEXTS, task=task, truncate_dim=dim, return_numpy=True)
        ref = np.stack([w[0][:dim] / np.linalg.norm(w[0][:dim]) for w in want])
        np.testing.assert_allclose(trunc, ref, atol=tol)
    multi = encoder.encode_text(TEXTS, task=task, return_multivector=True)
    for m, w in zip(multi, want, strict=True):
        assert m.shape == w[1].shape  # every non-pad token kept, prefix included
        np.testing.assert_allclose(m.numpy(), w[1], atol=tol)


@pytest.mark.parametrize("task", ["retrieval", "text-matching", "code"])
def test_image_parity(on_device: tuple[Encoder, float], references: dict[str, Any], task: str) -> None:
    encoder, tol = on_device
    images = _images()
    spec = parse_task(task)
    want = [
        _reference_row(references[task], encoder.processor.prepare_image(im, spec), 151652, 151653) for im in images
    ]
    dense = encoder.encode_image(images, task=task, return_numpy=True)
    np.testing.assert_allclose(dense, np.stack([w[0] for w in want]), atol=tol)
    multi = encoder.encode_image(images, task=task, return_multivector=True, batch_size=3)
    for m, w in zip(multi, want, strict=True):
        np.testing.assert_allclose(m.numpy(), w[1], atol=tol)


def test_text_matching_always_uses_query_prefix(encoder: Encoder) -> None:
    a = encoder.encode_text(["same"], task="text-matching", prompt_name="passage", return_numpy=True)
    b = encoder.encode_text(["same"], task="text-matching", prompt_name="query", return_numpy=True)
    c = encoder.encode_text(["same"], task="retrieval", prompt_name="passage", return_numpy=True)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_adapters_matter(encoder: Encoder) -> None:
    """Each task's LoRA changes the output (so a missing adapter or a wrong scaling could not go unnoticed)."""
    outs = [encoder.encode_text(["adapter check"], task=t, return_numpy=True) for t in ("retrieval", "code")]
    assert np.abs(outs[0] - outs[1]).max() > 1e-3
