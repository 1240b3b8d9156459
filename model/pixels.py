"""Image → ``pixel_values`` exactly as the reference's torchvision-backed Qwen2-VL image processor does it.

Steps (shapes for one image of H×W pixels):

1. RGB uint8 ``(3, H, W)`` from the PIL image (``Image.convert("RGB")`` for other modes, like the reference).
2. ``smart_resize`` to (h, w), both multiples of ``patch_size * merge_size`` (28), h·w within
   [min_pixels, max_pixels] as Qwen2-VL rounds it.
3. Resize the **uint8** tensor with ``interpolate(mode="bicubic", antialias=True)`` (what torchvision does for
   uint8 input; result uint8). A same-size resize is skipped, as torchvision skips it.
4. Rescale and normalise in one float32 step: ``(x - mean·255) / (std·255)`` (transformers fuses 1/255 into
   the CLIP mean/std the same way).
5. Patchify into ``(grid_h·grid_w, 3·2·14·14)`` rows ordered (h/2, w/2, 2, 2) with features
   (channel, temporal, 14, 14); the still image is repeated over the 2 temporal frames.

This reproduces the reference bit for bit (``tests/data/golden``). Tiny images follow transformers 5's
``smart_resize``: a side under 28 px is upscaled (the whole image grows to at least ``min_pixels``); the 4.52
processor refused them. The aspect-ratio limit (long side > 200 × short side) is kept and raises
:class:`~model.errors.ImageAspectRatioError`.

>>> smart_resize(181, 257, factor=28, min_pixels=3136, max_pixels=602112)
(168, 252)
>>> smart_resize(900, 1200, factor=28, min_pixels=3136, max_pixels=50176)
(168, 252)
>>> smart_resize(1, 1, factor=28, min_pixels=3136, max_pixels=602112)
(56, 56)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from model.errors import ConfigError, ImageAspectRatioError, ImageError, InputError
from model.images import to_rgb

__all__ = [
    "MAX_ASPECT_RATIO",
    "ImagePreprocessor",
    "PixelConfig",
    "PixelPatches",
    "patchify",
    "smart_resize",
]

MAX_ASPECT_RATIO = 200


@dataclass(frozen=True, slots=True)
class PixelConfig:
    """The image-processor settings of ``preprocessor_config.json`` that change pixels."""

    min_pixels: int = 3136
    max_pixels: int = 602112
    patch_size: int = 14
    merge_size: int = 2
    temporal_patch_size: int = 2
    image_mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    image_std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
    rescale_factor: float = 1 / 255

    @property
    def factor(self) -> int:
        """Side lengths are multiples of this (28): one merged token covers factor × factor pixels."""
        return self.patch_size * self.merge_size

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "preprocessor_config.json") -> PixelConfig:
        """Read the published keys (``min_pixels``/``max_pixels``, or transformers 5's ``size`` dict with
        ``shortest_edge``/``longest_edge``). Every key is required: transformers' own defaults differ from the
        published values (max_pixels 12845056), so a silent default would change embeddings."""
        for flag in ("do_resize", "do_rescale", "do_normalize", "do_convert_rgb"):
            if data.get(flag, True) is not True:
                raise ConfigError(f"{source}: {flag} must be true (the model was trained with it), got {data[flag]!r}")
        values = dict(data)
        size = data.get("size") or {}
        for key, size_key in (("min_pixels", "shortest_edge"), ("max_pixels", "longest_edge")):
            if values.get(key) is None:
                values[key] = size.get(size_key)
        keys = ("min_pixels", "max_pixels", "patch_size", "merge_size", "temporal_patch_size")
        missing = [k for k in (*keys, "image_mean", "image_std", "rescale_factor") if values.get(k) is None]
        if missing:
            raise ConfigError(f"{source}: missing image-processor keys {missing}")
        try:
            config = cls(
                min_pixels=int(values["min_pixels"]),
                max_pixels=int(values["max_pixels"]),
                patch_size=int(values["patch_size"]),
                merge_size=int(values["merge_size"]),
                temporal_patch_size=int(values["temporal_patch_size"]),
                image_mean=_triple(values["image_mean"]),
                image_std=_triple(values["image_std"]),
                rescale_factor=float(values["rescale_factor"]),
            )
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{source}: bad image-processor value: {error}") from None
        if min(config.patch_size, config.merge_size, config.temporal_patch_size, config.min_pixels) < 1:
            raise ConfigError(f"{source}: sizes must be positive, got {config}")
        if config.max_pixels < config.min_pixels:
            raise ConfigError(f"{source}: max_pixels {config.max_pixels} < min_pixels {config.min_pixels}")
        if min(config.image_std) <= 0 or config.rescale_factor <= 0:
            raise ConfigError(f"{source}: image_std and rescale_factor must be positive, got {config}")
        return config


def _triple(values: Any) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in values)
    return (a, b, c)


@dataclass(frozen=True, slots=True)
class PixelPatches:
    """``pixel_values`` (grid_t·grid_h·grid_w, 1176) float32 and ``grid_thw`` (t, h, w) in 14-px patches."""

    pixel_values: torch.Tensor
    grid_thw: tuple[int, int, int]
    merge_size: int = 2

    @property
    def num_image_tokens(self) -> int:
        """``<|image_pad|>`` tokens after the merge_size × merge_size merge (grid_h·grid_w / 4)."""
        t, h, w = self.grid_thw
        return t * h * w // (self.merge_size * self.merge_size)


def smart_resize(height: int, width: int, *, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Qwen2-VL's target size: sides multiples of ``factor``, area within [min_pixels, max_pixels] (rounded as
    the reference rounds: a 1-D extreme aspect can exceed max_pixels slightly, as it does there)."""
    if height < 1 or width < 1:
        raise ImageAspectRatioError(f"image has no pixels: expected width and height >= 1, got {width}x{height}")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ImageAspectRatioError(
            f"image aspect ratio must be at most {MAX_ASPECT_RATIO}:1, got {width}x{height} "
            f"({max(height, width) / min(height, width):.1f}:1)"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def patchify(pixels: torch.Tensor, *, patch_size: int, merge_size: int, temporal_patch_size: int) -> torch.Tensor:
    """(C, H, W) float → (H/p · W/p, C·T·p·p) rows in Qwen2-VL order (merge windows contiguous)."""
    channels, height, width = pixels.shape
    grid_h, grid_w = height // patch_size, width // patch_size
    blocks = pixels.reshape(
        channels, grid_h // merge_size, merge_size, patch_size, grid_w // merge_size, merge_size, patch_size
    )  # (C, gh/m, m, p, gw/m, m, p)
    blocks = blocks.permute(1, 4, 2, 5, 0, 3, 6)  # (gh/m, gw/m, m, m, C, p, p)
    frames = blocks.unsqueeze(5).expand(-1, -1, -1, -1, -1, temporal_patch_size, -1, -1)  # (…, C, T, p, p)
    return frames.reshape(grid_h * grid_w, channels * temporal_patch_size * patch_size * patch_size)


class ImagePreprocessor:
    """Turns a PIL image into :class:`PixelPatches`; stateless after construction (thread-safe)."""

    def __init__(self, config: PixelConfig) -> None:
        self.config = config
        scale = 1.0 / config.rescale_factor
        # Fused rescale + normalise, computed exactly as transformers does (float32 tensor × python float).
        self._mean = (torch.tensor(config.image_mean, dtype=torch.float32) * scale).reshape(3, 1, 1)  # (3, 1, 1)
        self._std = (torch.tensor(config.image_std, dtype=torch.float32) * scale).reshape(3, 1, 1)  # (3, 1, 1)

    def target_size(self, height: int, width: int, max_pixels: int | None = None) -> tuple[int, int]:
        """The resized (height, width) for an image of ``height`` × ``width`` pixels."""
        limit = self.config.max_pixels if max_pixels is None else max_pixels
        if limit < self.config.min_pixels:
            raise InputError(f"max_pixels must be at least min_pixels={self.config.min_pixels}, got {limit}")
        return smart_resize(
            height, width, factor=self.config.factor, min_pixels=self.config.min_pixels, max_pixels=limit
        )

    def __call__(self, image: Image.Image, *, max_pixels: int | None = None) -> PixelPatches:
        width, height = image.size
        target = self.target_size(height, width, max_pixels)
        pixels = _rgb_uint8(image)  # (3, H, W) uint8
        if (height, width) != target:
            pixels = torch.nn.functional.interpolate(
                pixels.unsqueeze(0), size=target, mode="bicubic", antialias=True
            ).squeeze(0)  # (3, h, w) uint8
        normalized = (pixels.to(torch.float32) - self._mean) / self._std  # (3, h, w) float32
        cfg = self.config
        rows = patchify(
            normalized,
            patch_size=cfg.patch_size,
            merge_size=cfg.merge_size,
            temporal_patch_size=cfg.temporal_patch_size,
        )  # (gh·gw, 3·T·p·p)
        grid = (1, target[0] // cfg.patch_size, target[1] // cfg.patch_size)
        return PixelPatches(rows, grid, cfg.merge_size)


def _rgb_uint8(image: Image.Image) -> torch.Tensor:
    """(3, H, W) uint8 view of an RGB copy of ``image`` (other modes go through ``convert("RGB")``, see
    :func:`model.images.to_rgb`)."""
    try:
        rgb = to_rgb(image)
        array = np.array(rgb, dtype=np.uint8)  # (H, W, 3), a writable copy
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageError(f"cannot read image pixels: {error}") from error
    if array.ndim != 3 or array.shape[2] != 3:
        raise ImageError(f"expected an RGB image of shape (H, W, 3), got array shape {array.shape}")
    return torch.from_numpy(array).permute(2, 0, 1)  # (3, H, W)
