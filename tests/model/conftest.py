"""Model test fixtures: the encoder on the session's tiny checkpoint, loaded once."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.encoder import Encoder


@pytest.fixture(scope="session")
def encoder(tiny_checkpoint: Path) -> Encoder:
    return Encoder.from_pretrained(tiny_checkpoint)
