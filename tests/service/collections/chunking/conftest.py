"""A real Qwen2 tokenizer (the tiny checkpoint's vocabulary) for chunk sizes in model tokens."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parents[3] / "data" / "code"


@pytest.fixture(scope="session")
def tokenizer(tiny_checkpoint: Path) -> Any:
    import tokenizers

    return tokenizers.Tokenizer.from_file(str(tiny_checkpoint / "tokenizer.json"))


@pytest.fixture(scope="session")
def offsets(tokenizer: Any) -> Callable[[str], list[tuple[int, int]]]:
    def run(text: str) -> list[tuple[int, int]]:
        return list(tokenizer.encode(text, add_special_tokens=False).offsets)

    return run
