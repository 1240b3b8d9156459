"""Processor: text and image rules of the reference, golden pixels bit for bit, late chunking, errors."""

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

from model.errors import (
    ConfigError,
    EmptyInputError,
    ImageAspectRatioError,
    ImageError,
    InputError,
    InputTooLongError,
    LateChunkTooLongError,
    MissingFileError,
)
from model.pixels import smart_resize
from model.processor import IMAGE_PROMPT_PREFIX, IMAGE_PROMPT_SUFFIX, Processor
from model.testing_tokenizer import write_preprocessor_config, write_qwen2_tokenizer
from model.types import PromptType, Task, TaskSpec, parse_task

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
GOLDEN_IMAGES = ["a_257x181", "b_1200x900", "c_40x500"]
QUERY = parse_task("retrieval.query")
PASSAGE = parse_task("retrieval.passage")


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("processor")
    write_qwen2_tokenizer(directory)
    write_preprocessor_config(directory)
    return directory


@pytest.fixture(scope="module")
def processor(checkpoint_dir: Path) -> Processor:
    return Processor.from_pretrained(checkpoint_dir)


@pytest.fixture(scope="module")
def raw_tokenizer(checkpoint_dir: Path) -> tokenizers.Tokenizer:
    return tokenizers.Tokenizer.from_file(str(checkpoint_dir / "tokenizer.json"))


def _ids(tokenizer: tokenizers.Tokenizer, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False).ids)


# -- loading -----------------------------------------------------------------------------------------------


def test_loaded_values(processor: Processor) -> None:
    assert processor.image_token_id == 151655
    assert processor.vision_start_token_id == 151652
    assert processor.vision_end_token_id == 151653
    assert processor.pad_token_id == 151643
    assert (processor.min_pixels, processor.max_pixels) == (3136, 602112)


def _copy_tokenizer(source: Path, target: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (target / name).write_bytes((source / name).read_bytes())


def test_missing_files_are_named(checkpoint_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match=r"preprocessor_config\.json"):
        Processor.from_pretrained(tmp_path)
    write_preprocessor_config(tmp_path)
    with pytest.raises(MissingFileError, match=r"tokenizer\.json"):
        Processor.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"do_normalize": False}, "do_normalize must be true"),
        ({"max_pixels": 1000}, "max_pixels 1000 < min_pixels 3136"),
        ({"patch_size": 0}, "sizes must be positive"),
        ({"image_std": [0.2, 0.0, 0.2]}, "must be positive"),
        ({"image_mean": "abc"}, "bad image-processor value"),
        ({"rescale_factor": None}, r"missing image-processor keys \['rescale_factor'\]"),
    ],
)
def test_bad_preprocessor_config(
    checkpoint_dir: Path, tmp_path: Path, overrides: dict[str, object], message: str
) -> None:
    _copy_tokenizer(checkpoint_dir, tmp_path)
    write_preprocessor_config(tmp_path, **overrides)
    with pytest.raises(ConfigError, match=message):
        Processor.from_pretrained(tmp_path)


def test_size_dict_form_and_malformed_json(checkpoint_dir: Path, tmp_path: Path) -> None:
    _copy_tokenizer(checkpoint_dir, tmp_path)
    write_preprocessor_config(
        tmp_path, min_pixels=None, max_pixels=None, size={"shortest_edge": 3136, "longest_edge": 50176}
    )
    assert Processor.from_pretrained(tmp_path).max_pixels == 50176
    (tmp_path / "preprocessor_config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read JSON"):
        Processor.from_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        Processor.from_pretrained(tmp_path)


def test_bad_tokenizer_files(checkpoint_dir: Path, tmp_path: Path) -> None:
    write_preprocessor_config(tmp_path)
    (tmp_path / "tokenizer.json").write_text('{"model": 3}')
    with pytest.raises(ConfigError, match="cannot load the tokenizer"):
        Processor.from_pretrained(tmp_path)
    wrong = tokenizers.Tokenizer(tokenizers.models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    wrong.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(ConfigError, match=r"no token '<\|image_pad\|>'"):
        Processor.from_pretrained(tmp_path)


# -- text --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "prefix"),
    [
        (TaskSpec(Task.RETRIEVAL, PromptType.QUERY), "Query: "),
        (TaskSpec(Task.RETRIEVAL, PromptType.PASSAGE), "Passage: "),
        (TaskSpec(Task.CODE, PromptType.QUERY), "Query: "),
        (TaskSpec(Task.CODE, PromptType.PASSAGE), "Passage: "),
        (TaskSpec(Task.TEXT_MATCHING, PromptType.QUERY), "Query: "),
        (TaskSpec(Task.TEXT_MATCHING, PromptType.PASSAGE), "Query: "),  # text-matching: always Query
    ],
)
def test_text_prefix(processor: Processor, raw_tokenizer: tokenizers.Tokenizer, spec: TaskSpec, prefix: str) -> None:
    row = processor.prepare_text("def add(a, b): return a + b", spec)
    assert row.input_ids.tolist() == _ids(raw_tokenizer, prefix + "def add(a, b): return a + b")
    assert row.input_ids.dtype == torch.int64
    assert row.spec == spec
    assert not row.is_image
    assert row.pixel_values is None
    assert row.image_grid_thw is None


def test_published_query_ids(processor: Processor) -> None:
    row = processor.prepare_text("What is the capital of France?", QUERY)
    assert row.input_ids.tolist() == [2859, 25, 3555, 374, 279, 6722, 315, 9625, 30]
    assert row.num_tokens == 9


def test_no_special_tokens_and_empty_text(processor: Processor, raw_tokenizer: tokenizers.Tokenizer) -> None:
    row = processor.prepare_text("", PASSAGE)  # the prefix alone, as the reference encodes it
    assert row.input_ids.tolist() == _ids(raw_tokenizer, "Passage: ") == [12187, 424, 25, 220]
    ids = processor.prepare_text("hello", QUERY).input_ids.tolist()
    assert 151643 not in ids
    assert 151645 not in ids


def test_special_token_text_is_tokenized_as_the_reference_does(
    processor: Processor, raw_tokenizer: tokenizers.Tokenizer
) -> None:
    # The reference passes user text straight to the tokenizer: a literal "<|im_end|>" is one token there too.
    row = processor.prepare_text("a<|im_end|>b", QUERY)
    assert row.input_ids.tolist() == _ids(raw_tokenizer, "Query: a<|im_end|>b")
    assert 151645 in row.input_ids.tolist()


def test_right_truncation(processor: Processor, raw_tokenizer: tokenizers.Tokenizer) -> None:
    text = " ".join(f"word{i}" for i in range(200))
    full = _ids(raw_tokenizer, "Query: " + text)
    assert len(full) > 50
    assert processor.prepare_text(text, QUERY, max_length=50).input_ids.tolist() == full[:50]
    assert processor.prepare_text(text, QUERY, max_length=len(full), truncate=False).num_tokens == len(full)


def test_too_long_without_truncation_names_index_and_count(
    processor: Processor, raw_tokenizer: tokenizers.Tokenizer
) -> None:
    text = "one two three four five six"
    n = len(_ids(raw_tokenizer, "Query: " + text))
    with pytest.raises(InputTooLongError) as caught:
        processor.prepare_text(text, QUERY, max_length=n - 1, truncate=False, index=7)
    assert (caught.value.index, caught.value.num_tokens, caught.value.limit) == (7, n, n - 1)
    assert f"input 7 has {n} tokens" in str(caught.value)


def test_bad_text_arguments(processor: Processor) -> None:
    with pytest.raises(InputError, match="max_length must be a positive"):
        processor.prepare_text("x", QUERY, max_length=0)
    with pytest.raises(InputError, match="input 3: expected a str, got bytes"):
        processor.prepare_text(b"x", QUERY, index=3)  # type: ignore[arg-type]


def test_prepare_texts_equals_one_by_one(processor: Processor) -> None:
    texts = ["alpha", "", "a much longer text with several words in it", "日本語"]
    rows = processor.prepare_texts(texts, PASSAGE, max_length=6)
    for text, row in zip(texts, rows, strict=True):
        assert row.input_ids.tolist() == processor.prepare_text(text, PASSAGE, max_length=6).input_ids.tolist()
    with pytest.raises(InputTooLongError) as caught:
        processor.prepare_texts(texts, PASSAGE, max_length=6, truncate=False)
    assert caught.value.index == 2


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


# -- late chunking -----------------------------------------------------------------------------------------


def test_one_late_chunk_equals_plain_encoding(processor: Processor) -> None:
    chunked = processor.prepare_late_chunks(["What is the capital of France?"], QUERY)
    plain = processor.prepare_text("What is the capital of France?", QUERY)
    assert chunked.prepared.input_ids.tolist() == plain.input_ids.tolist()
    assert chunked.spans == [(0, 9)]


def test_late_chunks_join_and_spans(processor: Processor, raw_tokenizer: tokenizers.Tokenizer) -> None:
    texts = ["First part.", " Second part follows.", "Third!"]
    chunked = processor.prepare_late_chunks(texts, PASSAGE)
    expected = [_ids(raw_tokenizer, "Passage: First part."), *(_ids(raw_tokenizer, t) for t in texts[1:])]
    ids = chunked.prepared.input_ids.tolist()
    assert ids == [token for piece in expected for token in piece]
    assert chunked.spans[0][0] == 0
    assert chunked.spans[-1][1] == len(ids)
    for (start, stop), piece in zip(chunked.spans, expected, strict=True):
        assert ids[start:stop] == piece
    assert all(a[1] == b[0] for a, b in zip(chunked.spans, chunked.spans[1:], strict=False))
    assert chunked.prepared.spec == PASSAGE


def test_late_chunks_too_long(processor: Processor) -> None:
    texts = ["aaa bbb ccc", "ddd eee fff", "ggg hhh iii"]
    spans = processor.prepare_late_chunks(texts, QUERY).spans
    total = spans[-1][1]
    with pytest.raises(LateChunkTooLongError) as caught:
        processor.prepare_late_chunks(texts, QUERY, max_length=spans[1][1] - 1)
    assert (caught.value.index, caught.value.num_tokens) == (1, total)
    assert isinstance(caught.value, InputTooLongError)
    # truncate=True cuts the last input on the right
    cut = processor.prepare_late_chunks(texts, QUERY, max_length=total - 1, truncate=True)
    assert cut.spans == [*spans[:-1], (spans[-1][0], total - 1)]
    assert cut.prepared.num_tokens == total - 1
    # ...but an input that would lose every token is an error even then
    with pytest.raises(LateChunkTooLongError) as caught:
        processor.prepare_late_chunks(texts, QUERY, max_length=spans[1][1], truncate=True)
    assert caught.value.index == 2


def test_late_chunks_empty_inputs(processor: Processor) -> None:
    with pytest.raises(EmptyInputError, match="at least one text"):
        processor.prepare_late_chunks([], QUERY)
    with pytest.raises(EmptyInputError, match="input 1 has no tokens"):
        processor.prepare_late_chunks(["a", ""], QUERY)
    only_prefix = processor.prepare_late_chunks([""], QUERY)  # the prefix alone, like prepare_text
    assert only_prefix.spans == [(0, processor.prepare_text("", QUERY).num_tokens)]


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
