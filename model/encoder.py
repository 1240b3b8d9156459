"""The encoder: ``Encoder.from_pretrained(...)`` then ``encode_text`` / ``encode_image`` / ``encode_pdf``, with the
published model's argument names, plus the low-level ``embed`` the service's batcher calls.

``embed`` runs exactly one forward pass over the rows it is given (they may mix texts, images and tasks); the
``encode_*`` methods plan length-sorted batches (``model.batching``) and restore input order.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from model import _internals
from model.adapters import load_adapters
from model.batching import plan_batches
from model.checkpoint import JinaConfig, JinaV4Backbone, load_base_weights, read_config, resolve_checkpoint
from model.errors import EmptyInputError, InputError
from model.images import ImageSource, load_image
from model.layout import PageLayout
from model.network import Network
from model.options import ForwardOptions
from model.pooling import dense_mask, l2_normalize, masked_mean, truncate
from model.processor import LateChunkInput, PreparedInput, Processor
from model.speedups import Substitution, apply_speedups
from model.types import EmbeddingOutput, TaskSpec, parse_task

__all__ = ["Encoder", "ModelInfo"]

MAX_TOKENS = 32768


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """Static facts about the loaded model."""

    name: str
    hidden_size: int
    multivector_dim: int
    matryoshka_dims: tuple[int, ...]
    task_names: tuple[str, ...]
    max_tokens: int
    dtype: torch.dtype
    device: torch.device
    test_checkpoint: bool = False  # the random test checkpoint (model.testing): its vectors mean nothing


def _pick_dtype(dtype: torch.dtype | str | None, device: torch.device) -> torch.dtype:
    """``auto``: bfloat16 on a GPU that computes it natively (compute capability ≥ 8.0), else float32 — a T4 or V100
    would emulate bfloat16 slowly, and float16 risks overflow in Qwen2.5-VL's activations (ask for it by name)."""
    if dtype is None or dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False):
            return torch.bfloat16
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
    }
    if dtype not in names:
        raise InputError(f"unknown dtype {dtype!r}; expected one of {sorted(names)}")
    return names[dtype]


def _pick_attention(requested: str | None, device: torch.device) -> str:
    if requested:
        return requested
    if device.type == "cuda":
        try:
            import flash_attn  # noqa: F401
        except ImportError:
            return "sdpa"
        return "flash_attention_2"
    return "sdpa"


class Encoder:
    """jina-embeddings-v4 on stock ``Qwen2_5_VLModel`` + PEFT (three task adapters, routed per row)."""

    def __init__(
        self,
        network: Network,
        processor: Processor,
        config: JinaConfig,
        info: ModelInfo,
        substitutions: tuple[Substitution, ...] = (),
    ):
        self.network = network
        self.processor = processor
        self.config = config
        self.info = info
        self.substitutions = substitutions  # the fast paths model.speedups swapped in

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str],
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        local_files_only: bool | None = None,
        dtype: torch.dtype | str | None = None,
        device: str | torch.device | None = None,
        attn_implementation: str | None = None,
        options: ForwardOptions | None = None,
    ) -> Encoder:
        """Load a checkpoint in the published layout from a local directory or a hub id; ``options`` chooses the
        forward path's speed substitutions (``model.options``; default: all of them)."""
        directory = resolve_checkpoint(
            name_or_path, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only
        )
        config = read_config(directory)
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        dt = _pick_dtype(dtype, dev)
        opts = options or ForwardOptions()
        # every parameter is overwritten by load_base_weights (which checks that none is missing), so the random
        # init is skipped: at full size it costs minutes of CPU time for weights that are thrown away
        with _internals.no_init_weights():
            module = JinaV4Backbone(config, _pick_attention(attn_implementation, dev)).to(dt)
        load_base_weights(module, directory)
        load_adapters(module, directory, config.task_names, dt)
        module.to(dev)
        substitutions = apply_speedups(module, opts)  # after loading and moving: fusion keeps views of the weights
        processor = Processor.from_pretrained(directory)
        network = Network(
            module, pad_token_id=processor.pad_token_id, image_token_id=config.image_token_id, device=dev, options=opts
        )
        info = ModelInfo(
            str(name_or_path),
            config.hidden_size,
            config.multivector_dim,
            config.matryoshka_dims,
            config.task_names,
            MAX_TOKENS,
            dt,
            dev,
            config.test_checkpoint,
        )
        return cls(network, processor, config, info, substitutions)

    # -- low level (one forward pass) ---------------------------------------------------------------------

    def capture_graphs(self) -> int:
        """Capture the CUDA graphs of every token bucket now, when ``ForwardOptions.cuda_graphs`` is on and the
        model is on a GPU (``model.graphs``; else nothing); returns how many were captured. Without this call each
        bucket is captured on its first batch."""
        return self.network.capture_graphs()

    def batch_cost(self, lengths: Sequence[int]) -> int:
        """Tokens one :meth:`embed` call over rows of these lengths runs (summed when packed, padded otherwise);
        the service's batcher budgets with it."""
        return self.network.batch_cost(lengths)

    def embed(self, items: Sequence[PreparedInput], *, return_multivector: bool = False) -> list[EmbeddingOutput]:
        """Embed prepared rows in ONE forward pass (rows may mix texts, images and tasks)."""
        if not items:
            return []
        for item in items:
            if item.spec.task.value not in self.info.task_names:
                raise InputError(f"task {item.spec.task.value!r} is not in this checkpoint's {self.info.task_names}")
        # rows grouped by task (stable): each task's LoRA then applies to one contiguous slice of the batch
        order = sorted(range(len(items)), key=lambda i: items[i].spec.task.value)
        if order != list(range(len(items))):
            ordered = self.embed([items[i] for i in order], return_multivector=return_multivector)
            outputs: list[EmbeddingOutput | None] = [None] * len(items)
            for i, out in zip(order, ordered, strict=True):
                outputs[i] = out
            return [out for out in outputs if out is not None]
        batch = self.network.collate(items)
        hidden = self.network.hidden_states(batch)  # (B, L, H)
        mask = dense_mask(
            batch.input_ids, batch.attention_mask, self.config.vision_start_token_id, self.config.vision_end_token_id
        ).to(hidden.device)  # (B, L)
        dense = l2_normalize(masked_mean(hidden, mask)).cpu().numpy()  # (B, H)
        multi = self._multivectors(hidden, batch.tasks, batch.lengths) if return_multivector else None
        result = []
        for row, item in enumerate(items):
            grid = None
            if item.image_grid_thw is not None:
                grid = PageLayout.from_grid_thw(item.image_grid_thw[0]).grid
            result.append(
                EmbeddingOutput(
                    dense[row], None if multi is None else multi[row], item.num_tokens, item.image_span, grid
                )
            )
        return result

    def _multivectors(self, hidden: torch.Tensor, tasks: Sequence[str], lengths: Sequence[int]) -> list[np.ndarray]:
        projected = l2_normalize(self.network.project(hidden, tasks)).cpu().numpy()  # (B, L, 128)
        return [projected[row, :n] for row, n in enumerate(lengths)]

    def embed_late_chunks(self, item: LateChunkInput, *, return_multivector: bool = False) -> list[EmbeddingOutput]:
        """Encode the joined sequence once; each input's single vector is the mean over its own token span
        (its multi-vector: its own tokens' rows)."""
        batch = self.network.collate([item.prepared])
        hidden = self.network.hidden_states(batch)[0]  # (L, H)
        multi = self._multivectors(hidden[None], batch.tasks, batch.lengths)[0] if return_multivector else None
        outputs = []
        for start, stop in item.spans:
            mean = l2_normalize(hidden[start:stop].to(torch.float32).mean(dim=0)).cpu().numpy()  # (H,)
            outputs.append(EmbeddingOutput(mean, None if multi is None else multi[start:stop], stop - start))
        return outputs

    # -- high level (the published model's methods) -------------------------------------------------------

    def encode_text(
        self,
        texts: str | Sequence[str],
        *,
        task: str | TaskSpec = "retrieval",
        prompt_name: str | None = None,
        truncate_dim: int | None = None,
        return_multivector: bool = False,
        max_length: int | None = None,
        batch_size: int = 8,
        late_chunking: bool = False,
        truncate: bool = True,
        return_numpy: bool = False,
    ) -> Any:
        """Texts → vectors. ``truncate=False`` makes an over-long text an error instead of cutting it."""
        single = isinstance(texts, str)
        batch = [texts] if isinstance(texts, str) else list(texts)
        if not batch:
            raise EmptyInputError("encode_text needs at least one text")
        spec = parse_task(task, prompt_name)
        limit = min(max_length or MAX_TOKENS, MAX_TOKENS)
        if late_chunking:
            chunks = self.processor.prepare_late_chunks(batch, spec, max_length=limit, truncate=truncate)
            outputs = self.embed_late_chunks(chunks, return_multivector=return_multivector)
        else:
            rows = self.processor.prepare_texts(batch, spec, max_length=limit, truncate=truncate)
            outputs = self._embed_all(rows, return_multivector, batch_size)
        return self._format(outputs, single, truncate_dim, return_multivector, return_numpy)

    def encode_image(
        self,
        images: ImageSource | Sequence[ImageSource],
        *,
        task: str | TaskSpec = "retrieval",
        truncate_dim: int | None = None,
        return_multivector: bool = False,
        batch_size: int = 8,
        max_pixels: int | None = None,
        return_numpy: bool = False,
    ) -> Any:
        """Images (PIL, path or bytes) → vectors, one per image."""
        single = not isinstance(images, list | tuple)
        batch: list[ImageSource] = [images] if single else list(images)  # type: ignore[list-item,arg-type]
        if not batch:
            raise EmptyInputError("encode_image needs at least one image")
        spec = parse_task(task)
        rows = [self.processor.prepare_image(load_image(img), spec, max_pixels=max_pixels) for img in batch]
        outputs = self._embed_all(rows, return_multivector, batch_size)
        return self._format(outputs, single, truncate_dim, return_multivector, return_numpy)

    def encode_pdf(
        self,
        pdf: bytes | str | os.PathLike[str],
        *,
        task: str | TaskSpec = "retrieval",
        pages: str | Sequence[int] | None = None,
        dpi: float | None = None,
        max_pages: int | None = None,
        truncate_dim: int | None = None,
        return_multivector: bool = False,
        batch_size: int = 8,
        max_pixels: int | None = None,
        return_numpy: bool = False,
    ) -> Any:
        """A PDF's pages (selection like ``"1-3,7"``) rendered with pymupdf → one embedding per page."""
        from model import pdf as pdf_mod

        kwargs: dict[str, Any] = {"pages": pages}
        if dpi is not None:
            kwargs["dpi"] = dpi
        if max_pages is not None:
            kwargs["max_pages"] = max_pages
        rendered = pdf_mod.render_pages(pdf, **kwargs)
        return self.encode_image(
            [p.image for p in rendered],
            task=task,
            truncate_dim=truncate_dim,
            return_multivector=return_multivector,
            batch_size=batch_size,
            max_pixels=max_pixels,
            return_numpy=return_numpy,
        )

    def _embed_all(self, rows: Sequence[PreparedInput], multivector: bool, batch_size: int) -> list[EmbeddingOutput]:
        if batch_size < 1:
            raise InputError(f"batch_size must be ≥ 1, got {batch_size}")
        lengths = [row.num_tokens for row in rows]
        budget = max(max(lengths), batch_size * max(lengths))
        outputs: list[EmbeddingOutput | None] = [None] * len(rows)
        for group in plan_batches(lengths, max_tokens=budget, max_rows=batch_size):
            for index, out in zip(
                group, self.embed([rows[i] for i in group], return_multivector=multivector), strict=True
            ):
                outputs[index] = out
        return [out for out in outputs if out is not None]

    def _format(
        self,
        outputs: list[EmbeddingOutput],
        single: bool,
        truncate_dim: int | None,
        multivector: bool,
        return_numpy: bool,
    ) -> Any:
        dim = truncate_dim if truncate_dim is not None else self.config.truncate_dim
        if multivector:
            arrays = [o.multivector for o in outputs]
        else:
            dense = np.stack([o.dense for o in outputs])  # (N, H)
            if dim is not None:
                dense = truncate(dense, dim, self.info.matryoshka_dims)
            arrays = list(dense)
        if return_numpy:
            result: Any = arrays if multivector and not single else np.stack(arrays)  # type: ignore[arg-type]
            return result[0] if single else result
        tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
        return tensors[0] if single else tensors
