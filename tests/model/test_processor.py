"""Processor: loading, the text rules of the reference, late chunking, errors (images: test_processor_images.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import tokenizers
import torch

from model.errors import (
    ConfigError,
    EmptyInputError,
    InputError,
    InputTooLongError,
    LateChunkTooLongError,
    MissingFileError,
)
from model.processor import Processor
from model.testing_tokenizer import write_preprocessor_config
from model.types import PromptType, Task, TaskSpec, parse_task
from tests.model.conftest import copy_tokenizer as _copy_tokenizer
from tests.model.conftest import token_ids as _ids

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
GOLDEN_IMAGES = ["a_257x181", "b_1200x900", "c_40x500"]
QUERY = parse_task("retrieval.query")
PASSAGE = parse_task("retrieval.passage")


# -- loading -----------------------------------------------------------------------------------------------


def test_loaded_values(processor: Processor) -> None:
    assert processor.image_token_id == 151655
    assert processor.vision_start_token_id == 151652
    assert processor.vision_end_token_id == 151653
    assert processor.pad_token_id == 151643
    assert (processor.min_pixels, processor.max_pixels) == (3136, 602112)


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
