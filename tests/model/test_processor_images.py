"""Processor, images: golden pixels bit for bit, the image prompt template, patch order and normalisation, modes,
sizes (``smart_resize`` against transformers') and the errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import tokenizers
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from model.errors import ImageAspectRatioError, ImageError, InputError
from model.pixels import smart_resize
from model.processor import IMAGE_PROMPT_PREFIX, IMAGE_PROMPT_SUFFIX, Processor
from model.testing_tokenizer import write_preprocessor_config
from model.types import parse_task
from tests.model.conftest import copy_tokenizer as _copy_tokenizer
from tests.model.conftest import token_ids as _ids

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
GOLDEN_IMAGES = ["a_257x181", "b_1200x900", "c_40x500"]
QUERY = parse_task("retrieval.query")
PASSAGE = parse_task("retrieval.passage")


# -- images ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", GOLDEN_IMAGES)
@pytest.mark.parametrize("max_pixels", [602112, 50176])
def test_golden_pixels_bit_for_bit(processor: Processor, name: str, max_pixels: int) -> None:
    expected = json.loads((GOLDEN / "pixels.json").read_text())[f"{name}_max{max_pixels}"]
    with Image.open(GOLDEN / f"{name}.png") as image:
        row = processor.prepare_image(image, PASSAGE, max_pixels=max_pixels)
    assert row.pixel_values is not None
    assert row.image_grid_thw is not None
    assert row.image_grid_thw.tolist() == [expected["grid_thw"]]
    assert row.pixel_values.dtype == torch.float32
    assert tuple(row.pixel_values.shape) == (expected["patches"], 1176)
    values = row.pixel_values.numpy()
    assert hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest() == expected["sha256_pixel_values_f32"]
    if expected["stored"]:
        stored = np.load(GOLDEN / "pixels.npz")[f"{name}_max{max_pixels}_pixel_values"]
        np.testing.assert_array_equal(values, stored)


def test_golden_through_the_config_max_pixels(checkpoint_dir: Path, tmp_path: Path) -> None:
    _copy_tokenizer(checkpoint_dir, tmp_path)
    write_preprocessor_config(tmp_path, max_pixels=50176)
    expected = json.loads((GOLDEN / "pixels.json").read_text())["b_1200x900_max50176"]
    with Image.open(GOLDEN / "b_1200x900.png") as image:
        row = Processor.from_pretrained(tmp_path).prepare_image(image, PASSAGE)
    assert row.pixel_values is not None
    digest = hashlib.sha256(row.pixel_values.numpy().tobytes()).hexdigest()
    assert digest == expected["sha256_pixel_values_f32"]


def test_image_template(processor: Processor, raw_tokenizer: tokenizers.Tokenizer) -> None:
    row = processor.prepare_image(Image.new("RGB", (252, 168), (200, 30, 90)), QUERY)
    n = (168 // 28) * (252 // 28)
    text = IMAGE_PROMPT_PREFIX + "<|image_pad|>" * n + IMAGE_PROMPT_SUFFIX
    assert text == (
        "<|im_start|>user\n<|vision_start|>" + "<|image_pad|>" * n + "<|vision_end|>Describe the image.<|im_end|>\n"
    )
    ids = row.input_ids.tolist()
    assert ids == _ids(raw_tokenizer, text)
    assert row.num_tokens == n + 11
    assert row.is_image
    assert row.image_span == (4, 4 + n)
    assert ids[3] == processor.vision_start_token_id
    assert ids[4 + n] == processor.vision_end_token_id
    assert ids.count(processor.image_token_id) == n
    assert row.image_grid_thw is not None
    assert row.image_grid_thw.dtype == torch.int64
    assert row.image_grid_thw.tolist() == [[1, 12, 18]]
    assert processor.num_image_tokens(252, 168) == row.num_tokens


def _reference_patches(pixels: np.ndarray) -> np.ndarray:
    """Patch rows by the definition, with loops: row (bh, bw, mh, mw), features (c, t, i, j)."""
    _, height, width = pixels.shape
    rows = []
    for bh in range(height // 28):
        for bw in range(width // 28):
            for mh in range(2):
                for mw in range(2):
                    y, x = (2 * bh + mh) * 14, (2 * bw + mw) * 14
                    patch = pixels[:, y : y + 14, x : x + 14]  # (3, 14, 14)
                    rows.append(np.stack([patch, patch], axis=1).reshape(-1))  # (3, 2, 14, 14)
    return np.stack(rows)


def test_patch_order_and_normalisation(processor: Processor) -> None:
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, size=(56, 84, 3), dtype=np.uint8)  # already a multiple of 28: no resize
    row = processor.prepare_image(Image.fromarray(array), QUERY)
    mean = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)[:, None, None] * np.float32(255)
    std = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)[:, None, None] * np.float32(255)
    normalized = (array.transpose(2, 0, 1).astype(np.float32) - mean) / std  # (3, 56, 84)
    assert row.pixel_values is not None
    np.testing.assert_allclose(row.pixel_values.numpy(), _reference_patches(normalized), rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "P", "CMYK", "1"])  # I;16 is refused (tests/model/test_images)
def test_non_rgb_modes_go_through_convert_rgb(processor: Processor, mode: str) -> None:
    rng = np.random.default_rng(1)
    base = Image.fromarray(rng.integers(0, 256, size=(60, 90, 4), dtype=np.uint8), mode="RGBA")
    image = base.convert(mode)
    row = processor.prepare_image(image, QUERY)
    expected = processor.prepare_image(image.convert("RGB"), QUERY)
    assert row.pixel_values is not None
    assert expected.pixel_values is not None
    assert torch.equal(row.pixel_values, expected.pixel_values)


@pytest.mark.parametrize(
    ("size", "grid"),
    [
        ((1, 1), [1, 4, 4]),  # upscaled to min_pixels: 56 x 56
        ((27, 27), [1, 4, 4]),
        ((13, 2000), [1, 2, 50]),  # 2000 wide, 13 high: upscaled to 700 x 28
        ((1000, 5), [1, 58, 2]),  # 5 wide, 1000 high (200:1): upscaled to 28 x 812
    ],
)
def test_tiny_images_are_upscaled(processor: Processor, size: tuple[int, int], grid: list[int]) -> None:
    height, width = size
    row = processor.prepare_image(Image.new("RGB", (width, height), (10, 20, 30)), QUERY)
    assert row.image_grid_thw is not None
    assert row.image_grid_thw.tolist() == [grid]
    assert grid[1] * grid[2] * 14 * 14 >= 3136
    # a constant image stays constant through resize + normalisation
    assert row.pixel_values is not None
    assert torch.unique(row.pixel_values[:, :392]).numel() == 1


def test_max_pixels_override(processor: Processor) -> None:
    image = Image.new("RGB", (1200, 900))
    assert processor.prepare_image(image, QUERY).num_tokens == 23 * 31 + 11
    assert processor.prepare_image(image, QUERY, max_pixels=50176).num_tokens == 6 * 9 + 11
    assert processor.num_image_tokens(1200, 900, max_pixels=50176) == 6 * 9 + 11
    with pytest.raises(InputError, match="max_pixels must be at least min_pixels=3136, got 100"):
        processor.prepare_image(image, QUERY, max_pixels=100)


def test_aspect_ratio_and_empty_images_are_refused(processor: Processor) -> None:
    with pytest.raises(ImageAspectRatioError, match="at most 200:1, got 4020x20"):
        processor.prepare_image(Image.new("RGB", (4020, 20)), QUERY)
    with pytest.raises(ImageAspectRatioError, match="no pixels"):
        processor.prepare_image(Image.new("RGB", (0, 10)), QUERY)
    assert processor.prepare_image(Image.new("RGB", (4000, 20)), QUERY).is_image  # exactly 200:1 is allowed


@settings(max_examples=300, deadline=None)
@given(
    height=st.integers(min_value=1, max_value=6000),
    width=st.integers(min_value=1, max_value=6000),
    max_pixels=st.sampled_from([3136, 50176, 602112, 12845056]),
)
def test_smart_resize_matches_transformers(height: int, width: int, max_pixels: int) -> None:
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as reference

    if max(height, width) / min(height, width) > 200:
        with pytest.raises(ImageAspectRatioError):
            smart_resize(height, width, factor=28, min_pixels=3136, max_pixels=max_pixels)
        return
    ours = smart_resize(height, width, factor=28, min_pixels=3136, max_pixels=max_pixels)
    assert ours == reference(height, width, factor=28, min_pixels=3136, max_pixels=max_pixels)
    assert ours[0] % 28 == 0
    assert ours[1] % 28 == 0


def test_lazy_and_truncated_images(processor: Processor, tmp_path: Path) -> None:
    array = np.random.default_rng(2).integers(0, 256, size=(60, 80, 3), dtype=np.uint8)
    path = tmp_path / "image.png"
    Image.fromarray(array).save(path)
    with Image.open(path) as lazy:  # not loaded yet: the processor decodes it
        row = processor.prepare_image(lazy, QUERY)
    expected = processor.prepare_image(Image.fromarray(array), QUERY)
    assert row.pixel_values is not None
    assert expected.pixel_values is not None
    assert torch.equal(row.pixel_values, expected.pixel_values)
    path.write_bytes(path.read_bytes()[:120])
    with Image.open(path) as truncated, pytest.raises(ImageError, match="cannot read image pixels"):
        processor.prepare_image(truncated, QUERY)
