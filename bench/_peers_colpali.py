"""Peer 1 — colpali-engine's ``ColQwen2_5`` on the same random weights (run in ``.bench-venv``).

``python -m bench._peers_colpali`` (from the repository root, with ``.bench-venv/bin/python``; colpali-engine
needs torchvision, which ``.venv`` lacks).

The model is ``ColQwen2_5(Qwen2_5_VLConfig)`` loaded with our checkpoint's weights (keys remapped to its
layout) with the **retrieval LoRA merged into the base weights** (ColQwen has no per-task adapters; merging
makes its forward cheaper than ours by the LoRA's share, so the comparison errs in its favour); its 128-d
``custom_text_proj`` is our ``multi_vector_projector`` (LoRA merged too). Its output is multi-vector only.

Inputs go through its own ``ColQwen2_5_Processor`` (built from our checkpoint's tokenizer and
``max_pixels``), as its users run it: pages through ``process_images`` (its template, left padding, padded
``pixel_values``), texts through ``process_texts`` with our prefix (``"Query: "`` / ``"Passage: "``), so the
text token ids are the same as ours. Timings include its preprocessing, as ours include our processor's.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch
from PIL import Image

from bench._convert import adapter_state_dicts, base_state_dict, hf_config, lora_config, merged_weights
from bench._worker import ContestantArgs, Output, serve
from bench.workloads import TextRow

__all__ = ["ColQwenPeer"]

_PREFIX = {"query": "Query: ", "passage": "Passage: "}


def build_processor(checkpoint: Any) -> Any:
    """colpali's processor with our tokenizer files and the checkpoint's ``max_pixels``."""
    from colpali_engine.models import ColQwen2_5_Processor
    from transformers import AutoTokenizer
    from transformers.models.qwen2_vl import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    pre = json.loads((checkpoint / "preprocessor_config.json").read_text())
    min_pixels, max_pixels = int(pre.get("min_pixels", 3136)), int(pre.get("max_pixels", 602112))
    image_processor = Qwen2VLImageProcessor(
        size={"shortest_edge": min_pixels, "longest_edge": max_pixels},
        min_pixels=min_pixels,
        max_pixels=max_pixels,
    )
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    video_processor = Qwen2VLVideoProcessor()  # required by the constructor, unused
    return ColQwen2_5_Processor(image_processor=image_processor, tokenizer=tokenizer, video_processor=video_processor)


def build_colqwen(checkpoint: Any, dtype: torch.dtype) -> Any:
    from colpali_engine.models import ColQwen2_5
    from transformers.initialization import no_init_weights

    config = hf_config(checkpoint)
    config._attn_implementation = "sdpa"
    backbone, projector = base_state_dict(checkpoint)
    scaling = lora_config(checkpoint)["lora_alpha"] / lora_config(checkpoint)["r"]
    backbone, projector = merged_weights(backbone, projector, adapter_state_dicts(checkpoint)["retrieval"], scaling)
    with no_init_weights():  # load_state_dict(strict=True) below sets every weight
        model = ColQwen2_5(config)
    state = {k.removeprefix("model."): v for k, v in backbone.items()}
    state |= {f"custom_text_proj.{k}": v for k, v in projector.items()}
    model.load_state_dict(state, strict=True)
    return model.to(dtype).eval()


class ColQwenPeer:
    name = "colqwen2.5"

    def __init__(self, args: ContestantArgs) -> None:
        self.dtype = getattr(torch, args.dtype)
        self.device = torch.device(args.device)
        self.model = build_colqwen(args.checkpoint, self.dtype).to(self.device)
        self.processor = build_processor(args.checkpoint)
        self.batch_size = args.batch_size

    def _forward(self, batch: Any) -> tuple[list[np.ndarray], int]:
        dev, dt = self.device, self.dtype
        batch = {k: (v.to(dev, dt) if k == "pixel_values" else v.to(dev)) for k, v in batch.items()}
        with torch.no_grad():
            proj = self.model(**batch)  # (B, L, 128), L2-normalised, zeroed at padding
        mask = batch["attention_mask"].bool()  # (B, L)
        proj, mask = proj.float().cpu(), mask.cpu()
        rows = [proj[i][mask[i]].numpy() for i in range(len(proj))]
        return rows, int(mask.sum())

    def _run(self, items: list[Any], process: Any) -> Output:
        mvs: list[np.ndarray] = []
        tokens = 0
        for i in range(0, len(items), self.batch_size):
            rows, n = self._forward(process(items[i : i + self.batch_size]))
            mvs += rows
            tokens += n
        return Output(None, mvs, tokens)

    def pages(self, images: list[Image.Image]) -> Output:
        return self._run(images, self.processor.process_images)

    def texts(self, rows: list[TextRow], workload: str) -> Output:
        # One model for every task (the retrieval LoRA is merged): a mixed batch is just a batch.
        return self._run([_PREFIX[r.prompt] + r.text for r in rows], self.processor.process_texts)

    def memory_probe(self, n_tokens: int) -> int:
        raise NotImplementedError("the 32k-token memory probe compares ours with the reference-style path only")


if __name__ == "__main__":
    serve(ColQwenPeer)
