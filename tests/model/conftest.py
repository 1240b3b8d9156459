"""Model test fixtures: the encoder on the session's tiny checkpoint, loaded once; a processor (tokenizer and
preprocessor files only) per test module."""

from __future__ import annotations

from pathlib import Path

import pytest
import tokenizers

from model.encoder import Encoder
from model.processor import Processor
from model.testing_tokenizer import write_preprocessor_config, write_qwen2_tokenizer


@pytest.fixture(scope="session")
def encoder(tiny_checkpoint: Path) -> Encoder:
    return Encoder.from_pretrained(tiny_checkpoint)


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


def token_ids(tokenizer: tokenizers.Tokenizer, text: str) -> list[int]:
    """The ids of ``text`` without special tokens, straight from the tokenizer file."""
    return list(tokenizer.encode(text, add_special_tokens=False).ids)


def copy_tokenizer(source: Path, target: Path) -> None:
    """The tokenizer files of ``source`` into ``target`` (to pair them with another preprocessor config)."""
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (target / name).write_bytes((source / name).read_bytes())
