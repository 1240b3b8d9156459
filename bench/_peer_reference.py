"""Peer 2 — the REFERENCE-STYLE path, written here as a baseline (not the published code, its behaviour).

What the published jina-embeddings-v4 inference does, on stock transformers + PEFT:

- ``Qwen2_5_VLForConditionalGeneration`` (the LM head tied to the embeddings) called with
  ``output_hidden_states=True``: it computes the logits over the whole vocabulary for every position and keeps
  every layer's hidden states;
- inputs in the caller's order, ``batch_size`` at a time, right-padded to the longest row of the batch;
- one task at a time: the three LoRA adapters are PEFT adapters and ``set_adapter(task)`` switches them, so a
  mixed-task request is run as one pass per task;
- dense vector = mean of ``hidden_states[-1]`` over the mask (texts) or vision_start..vision_end (images);
  multi-vector = ``multi_vector_projector`` (with its LoRA) on every token, L2-normalised, padding dropped.

Unlike the published code it runs the requested dtype throughout (no bf16 autocast under float32), and it
uses our ``model.processor`` for tokenisation and pixels, so its inputs are bit-identical to ours and the
difference measured is the model path alone. Run as ``python -m bench._peer_reference`` (``.venv``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from bench._convert import adapter_state_dicts, base_state_dict, hf_config, lora_config, read_config
from bench._worker import ContestantArgs, Output, serve
from bench.workloads import TextRow

__all__ = ["ReferenceStyle"]

_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)|multi_vector_projector"


def build_reference_model(checkpoint: Any, dtype: torch.dtype) -> tuple[Any, list[str]]:
    """The PEFT-wrapped ``Qwen2_5_VLForConditionalGeneration`` + projector with the three task adapters."""
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from transformers import Qwen2_5_VLForConditionalGeneration
    from transformers.initialization import no_init_weights

    config = hf_config(checkpoint)
    config._attn_implementation = "sdpa"  # what the reference forces when flash-attn is absent
    backbone, projector = base_state_dict(checkpoint)
    with no_init_weights():  # every weight is loaded below (checked): skip the random init (minutes at full size)
        model = Qwen2_5_VLForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(backbone, strict=False)
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise KeyError(f"reference-style load: missing {missing}, unexpected {unexpected}")
    model.lm_head.weight = model.model.language_model.embed_tokens.weight  # tied, as in the checkpoint
    model.multi_vector_projector = torch.nn.Linear(projector["weight"].shape[1], projector["weight"].shape[0])
    model.multi_vector_projector.load_state_dict(projector)
    model = model.to(dtype).eval()
    lcfg = lora_config(checkpoint)
    tasks = list(read_config(checkpoint)["task_names"])
    peft_config = LoraConfig(r=lcfg["r"], lora_alpha=lcfg["lora_alpha"], target_modules=_TARGETS, lora_dropout=0.0)
    peft_model = get_peft_model(model, peft_config, adapter_name=tasks[0], autocast_adapter_dtype=False)
    for task in tasks[1:]:
        peft_model.add_adapter(task, peft_config)
    for task, state in adapter_state_dicts(checkpoint).items():
        result = set_peft_model_state_dict(peft_model, state, adapter_name=task)
        if result.unexpected_keys:
            raise KeyError(f"adapter {task}: unexpected {result.unexpected_keys[:3]}")
    return peft_model.to(dtype).eval(), tasks


class ReferenceStyle:
    name = "reference-style"

    def __init__(self, args: ContestantArgs) -> None:
        from model.processor import Processor
        from model.types import parse_task

        self.dtype = getattr(torch, args.dtype)
        self.device = torch.device(args.device)
        self.model, self.tasks = build_reference_model(args.checkpoint, self.dtype)
        self.model.to(self.device)
        self.processor = Processor.from_pretrained(args.checkpoint)
        self.parse_task = parse_task
        self.batch_size = args.batch_size
        self.pad_id = self.processor.pad_token_id
        self.vs_id, self.ve_id = self.processor.vision_start_token_id, self.processor.vision_end_token_id

    # --- one forward, reference style ----------------------------------------------------------------------
    def _forward(self, prepared: Sequence[Any], *, images: bool) -> tuple[list[np.ndarray], list[np.ndarray]]:
        longest = max(p.num_tokens for p in prepared)
        ids = torch.full((len(prepared), longest), self.pad_id, dtype=torch.long)  # (B, L)
        mask = torch.zeros(len(prepared), longest, dtype=torch.long)  # (B, L)
        for i, p in enumerate(prepared):
            ids[i, : p.num_tokens] = p.input_ids
            mask[i, : p.num_tokens] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "output_hidden_states": True}
        if images:
            pixels = torch.cat([p.pixel_values for p in prepared])  # (ΣP, 1176)
            kwargs["pixel_values"] = pixels.to(self.device, self.dtype)
            kwargs["image_grid_thw"] = torch.cat([p.image_grid_thw for p in prepared]).to(self.device)  # (B, 3)
            # transformers 5 computes M-RoPE positions only when told which tokens are image tokens
            kwargs["mm_token_type_ids"] = (ids == self.processor.image_token_id).int()  # (B, L)
        with torch.no_grad():
            out = self.model(**kwargs)
            hidden = out.hidden_states[-1]  # (B, L, H), after the final norm
            if images:  # pool over vision_start .. vision_end
                pos = torch.arange(longest, device=self.device)
                start = (ids == self.vs_id).int().argmax(1, keepdim=True)  # (B, 1)
                stop = (ids == self.ve_id).int().argmax(1, keepdim=True)  # (B, 1)
                pool = ((pos >= start) & (pos <= stop)).to(hidden.dtype)  # (B, L)
            else:
                pool = mask.to(hidden.dtype)  # (B, L)
            dense = (hidden * pool[..., None]).sum(1) / pool.sum(1, keepdim=True)  # (B, H)
            dense = torch.nn.functional.normalize(dense.float(), dim=-1)  # (B, H)
            mv = self.model.base_model.model.multi_vector_projector(hidden)  # (B, L, 128)
            mv = torch.nn.functional.normalize(mv.float(), dim=-1)  # (B, L, 128)
        dense, mv = dense.cpu(), mv.cpu()
        return list(dense.numpy()), [mv[i, : p.num_tokens].numpy() for i, p in enumerate(prepared)]

    def _batches(self, rows: list[Any], *, images: bool) -> tuple[list[np.ndarray], list[np.ndarray]]:
        dense: list[np.ndarray] = []
        mvs: list[np.ndarray] = []
        for i in range(0, len(rows), self.batch_size):
            d, m = self._forward(rows[i : i + self.batch_size], images=images)
            dense += d
            mvs += m
        return dense, mvs

    def texts(self, rows: list[TextRow], workload: str) -> Output:
        order: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            order.setdefault(row.task, []).append(i)
        dense: list[np.ndarray] = [np.empty(0)] * len(rows)
        mvs: list[np.ndarray] = [np.empty(0)] * len(rows)
        tokens = 0
        for task, idx in order.items():  # one task at a time
            self.model.set_adapter(task)
            prepared = [
                self.processor.prepare_text(rows[i].text, self.parse_task(rows[i].task, rows[i].prompt)) for i in idx
            ]
            tokens += sum(p.num_tokens for p in prepared)
            d, m = self._batches(prepared, images=False)
            for j, i in enumerate(idx):
                dense[i], mvs[i] = d[j], m[j]
        return Output(np.stack(dense), mvs, tokens)

    def pages(self, images: list[Image.Image]) -> Output:
        self.model.set_adapter("retrieval")
        spec = self.parse_task("retrieval", "passage")
        prepared = [self.processor.prepare_image(im, spec) for im in images]
        dense, mvs = self._batches(prepared, images=True)
        return Output(np.stack(dense), mvs, sum(p.num_tokens for p in prepared))

    def memory_probe(self, n_tokens: int) -> int:
        self.model.set_adapter("retrieval")
        prepared = self.processor.prepare_text(
            long_text(n_tokens), self.parse_task("retrieval", "passage"), max_length=n_tokens
        )
        self._forward([prepared], images=False)
        return int(prepared.num_tokens)


def long_text(n_tokens: int) -> str:
    """A text of about ``n_tokens`` tokens (truncated to the limit by the processor)."""
    from bench.workloads import make_workloads

    passages = make_workloads(1)[1]
    text = " ".join(p.text for p in passages)
    while len(text.split()) < n_tokens:
        text = text + " " + text
    return text


if __name__ == "__main__":
    serve(ReferenceStyle)
