"""The one processor for every input kind: text prefixes, the image template, pixels, late-chunk joining.

Rules (the reference implementation's):

* Text: ``TaskSpec.prefix`` (``"Query: "`` / ``"Passage: "``; text-matching is always ``"Query: "``) + text,
  tokenized with no special tokens, right-truncated to ``max_length`` (or :class:`InputTooLongError` when
  ``truncate=False``). An empty text is allowed, as in the reference: it encodes the prefix alone.
* Image: ``<|im_start|>user\\n<|vision_start|>`` + N × ``<|image_pad|>`` + ``<|vision_end|>Describe the
  image.<|im_end|>\\n`` with N = (h/28)·(w/28) for the resized image, pixels from :mod:`model.pixels`.
  Images are never truncated (at most max_pixels/784 pads plus 11 template tokens).
* Late chunking: ``tokenize(prefix + texts[0]) + tokenize(texts[1]) + …``, each text tokenized on its own;
  span 0 includes the prefix, so one input late-chunked equals its plain encoding. Too long: with
  ``truncate=False`` :class:`LateChunkTooLongError`; with ``truncate=True`` the joined ids are cut on the
  right and an input left with no token at all is an error (it would have nothing to pool).

>>> from model.types import parse_task
>>> from model.testing_tokenizer import write_qwen2_tokenizer, write_preprocessor_config
>>> import tempfile; d = Path(tempfile.mkdtemp())
>>> write_qwen2_tokenizer(d); write_preprocessor_config(d)
>>> processor = Processor.from_pretrained(d)
>>> processor.prepare_text("What is the capital of France?", parse_task("retrieval.query")).input_ids.tolist()
[2859, 25, 3555, 374, 279, 6722, 315, 9625, 30]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from model.errors import (
    ConfigError,
    EmptyInputError,
    InputError,
    InputTooLongError,
    LateChunkTooLongError,
    MissingFileError,
)
from model.pixels import ImagePreprocessor, PixelConfig
from model.types import TaskSpec

if TYPE_CHECKING:
    import tokenizers
    from PIL import Image

__all__ = ["IMAGE_PROMPT_PREFIX", "IMAGE_PROMPT_SUFFIX", "LateChunkInput", "PreparedInput", "Processor"]

IMAGE_PROMPT_PREFIX = "<|im_start|>user\n<|vision_start|>"
IMAGE_PROMPT_SUFFIX = "<|vision_end|>Describe the image.<|im_end|>\n"
_IMAGE_PAD, _VISION_START, _VISION_END, _DEFAULT_PAD = (
    "<|image_pad|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|endoftext|>",
)


@dataclass(frozen=True, eq=False)
class PreparedInput:
    """One row, ready for the model (built on CPU).

    ``input_ids`` (L,) int64 — the exact sequence, prefix/template included and pads expanded.
    ``pixel_values`` (P, 1176) float32 and ``image_grid_thw`` (1, 3) int64 [t, h, w] — images only.
    ``image_span`` — [start, stop) positions of the ``<|image_pad|>`` tokens (images only).
    """

    input_ids: torch.Tensor
    spec: TaskSpec
    pixel_values: torch.Tensor | None = None
    image_grid_thw: torch.Tensor | None = None
    image_span: tuple[int, int] | None = None

    @property
    def num_tokens(self) -> int:
        """Sequence length L (what token budgets and ``usage`` count)."""
        return int(self.input_ids.shape[0])

    @property
    def is_image(self) -> bool:
        """True for an image row."""
        return self.pixel_values is not None


@dataclass(frozen=True, eq=False)
class LateChunkInput:
    """One joined text sequence and each input's [start, stop) token span in it (spans tile [0, L))."""

    prepared: PreparedInput
    spans: list[tuple[int, int]]


class Processor:
    """Tokenizer + image preprocessor of a checkpoint; stateless after loading (safe to share)."""

    def __init__(self, tokenizer: tokenizers.Tokenizer, pixels: PixelConfig, *, pad_token: str = _DEFAULT_PAD):
        self.tokenizer = tokenizer
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.image_preprocessor = ImagePreprocessor(pixels)
        self.image_token_id = self._token_id(_IMAGE_PAD)
        self.vision_start_token_id = self._token_id(_VISION_START)
        self.vision_end_token_id = self._token_id(_VISION_END)
        self.pad_token_id = self._token_id(pad_token)
        self.min_pixels = pixels.min_pixels
        self.max_pixels = pixels.max_pixels
        self._image_prefix_ids = self._encode(IMAGE_PROMPT_PREFIX)
        self._image_suffix_ids = self._encode(IMAGE_PROMPT_SUFFIX)
        if self._image_prefix_ids[-1] != self.vision_start_token_id or self._image_suffix_ids[0] != (
            self.vision_end_token_id
        ):
            raise ConfigError("tokenizer does not treat <|vision_start|>/<|vision_end|> as single tokens")

    @classmethod
    def from_pretrained(cls, directory: Path) -> Processor:
        """Load ``tokenizer.json`` (+ ``tokenizer_config.json``) and ``preprocessor_config.json``."""
        directory = Path(directory)
        pixels = PixelConfig.from_dict(_read_json(directory / "preprocessor_config.json"))
        tokenizer_config: dict[str, Any] = {}
        if (directory / "tokenizer_config.json").is_file():
            tokenizer_config = _read_json(directory / "tokenizer_config.json")
        pad = tokenizer_config.get("pad_token") or _DEFAULT_PAD
        pad = pad["content"] if isinstance(pad, dict) else str(pad)
        return cls(_load_tokenizer(directory), pixels, pad_token=pad)

    # -- text -------------------------------------------------------------------------------------------

    def prepare_text(
        self, text: str, spec: TaskSpec, *, max_length: int = 32768, truncate: bool = True, index: int = 0
    ) -> PreparedInput:
        """``spec.prefix + text`` tokenized (no special tokens), right-truncated to ``max_length``."""
        _check_max_length(max_length)
        ids = self._encode(spec.prefix + _check_text(text, index))
        return self._text_row(ids, spec, max_length, truncate, index)

    def prepare_texts(
        self, texts: Sequence[str], spec: TaskSpec, *, max_length: int = 32768, truncate: bool = True
    ) -> list[PreparedInput]:
        """:meth:`prepare_text` for many texts at once (tokenized in parallel by ``tokenizers``)."""
        _check_max_length(max_length)
        joined = [spec.prefix + _check_text(text, index) for index, text in enumerate(texts)]
        encodings = self.tokenizer.encode_batch(joined, add_special_tokens=False)
        return [
            self._text_row(encoding.ids, spec, max_length, truncate, index) for index, encoding in enumerate(encodings)
        ]

    def _text_row(self, ids: list[int], spec: TaskSpec, max_length: int, truncate: bool, index: int) -> PreparedInput:
        if len(ids) > max_length:
            if not truncate:
                raise InputTooLongError(index, len(ids), max_length)
            ids = ids[:max_length]
        return PreparedInput(torch.tensor(ids, dtype=torch.int64), spec)  # (L,)

    # -- images -----------------------------------------------------------------------------------------

    def prepare_image(self, image: Image.Image, spec: TaskSpec, *, max_pixels: int | None = None) -> PreparedInput:
        """The image template with its pads expanded, plus ``pixel_values`` and ``image_grid_thw``."""
        patches = self.image_preprocessor(image, max_pixels=max_pixels)
        start = len(self._image_prefix_ids)
        stop = start + patches.num_image_tokens
        ids = self._image_prefix_ids + [self.image_token_id] * patches.num_image_tokens + self._image_suffix_ids
        return PreparedInput(
            input_ids=torch.tensor(ids, dtype=torch.int64),  # (L,)
            spec=spec,
            pixel_values=patches.pixel_values,  # (P, 1176)
            image_grid_thw=torch.tensor([patches.grid_thw], dtype=torch.int64),  # (1, 3)
            image_span=(start, stop),
        )

    def num_image_tokens(self, width: int, height: int, *, max_pixels: int | None = None) -> int:
        """Sequence length an image of ``width`` × ``height`` pixels becomes (template included), without
        touching pixels: what token budgets need before decoding."""
        h, w = self.image_preprocessor.target_size(height, width, max_pixels)
        factor = self.image_preprocessor.config.factor
        return len(self._image_prefix_ids) + (h // factor) * (w // factor) + len(self._image_suffix_ids)

    # -- late chunking ----------------------------------------------------------------------------------

    def prepare_late_chunks(
        self, texts: Sequence[str], spec: TaskSpec, *, max_length: int = 32768, truncate: bool = False
    ) -> LateChunkInput:
        """Join ``texts`` into one sequence (prefix once, at the start) and record each one's token span."""
        _check_max_length(max_length)
        if not texts:
            raise EmptyInputError("late chunking needs at least one text, got none")
        pieces = [spec.prefix + _check_text(texts[0], 0)] + [_check_text(t, i) for i, t in enumerate(texts) if i]
        encodings = self.tokenizer.encode_batch(pieces, add_special_tokens=False)
        ids: list[int] = []
        spans: list[tuple[int, int]] = []
        for index, encoding in enumerate(encodings):
            if not encoding.ids:
                raise EmptyInputError(f"late-chunked input {index} has no tokens; expected a non-empty text")
            spans.append((len(ids), len(ids) + len(encoding.ids)))
            ids.extend(encoding.ids)
        if len(ids) > max_length:
            first_over = next(i for i, (_, stop) in enumerate(spans) if stop > max_length)
            if not truncate:
                raise LateChunkTooLongError(first_over, len(ids), max_length)
            fully_cut = next((i for i, (start, _) in enumerate(spans) if start >= max_length), None)
            if fully_cut is not None:  # an input with no token left would have nothing to pool
                raise LateChunkTooLongError(fully_cut, len(ids), max_length)
            ids = ids[:max_length]
            spans[-1] = (spans[-1][0], max_length)
        return LateChunkInput(PreparedInput(torch.tensor(ids, dtype=torch.int64), spec), spans)  # ids (L,)

    # -- helpers ----------------------------------------------------------------------------------------

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def _token_id(self, token: str) -> int:
        token_id = self.tokenizer.token_to_id(token)
        if token_id is None:
            raise ConfigError(f"tokenizer has no token {token!r}; expected the Qwen2 vocabulary")
        return int(token_id)


def _check_text(text: str, index: int) -> str:
    if not isinstance(text, str):
        raise InputError(f"input {index}: expected a str, got {type(text).__name__}")
    return text


def _check_max_length(max_length: int) -> None:
    if max_length < 1:
        raise InputError(f"max_length must be a positive number of tokens, got {max_length}")


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise MissingFileError(f"{path.name} not found in {path.parent}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: cannot read JSON: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _load_tokenizer(directory: Path) -> tokenizers.Tokenizer:
    import tokenizers

    path = directory / "tokenizer.json"
    if not path.is_file():
        raise MissingFileError(f"tokenizer.json not found in {directory}")
    try:
        return tokenizers.Tokenizer.from_file(str(path))
    except Exception as error:  # noqa: BLE001 - tokenizers raises a bare Exception for malformed files
        raise ConfigError(f"{path}: cannot load the tokenizer: {error}") from None
