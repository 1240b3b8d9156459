"""``model.speedups.apply_speedups``: one function swaps in the fast paths per ``ForwardOptions`` and reports them;
the stock path (every substitution off) gives the same vectors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.encoder import Encoder
from model.options import ForwardOptions
from model.types import parse_task


def test_substitutions_are_reported(encoder: Encoder) -> None:
    what = {s.what: s.count for s in encoder.substitutions}
    assert what["patch Conv3d → one matmul"] == 1
    assert what["vision attention, equal windows in one call"] == len(encoder.network.module.model.visual.blocks)
    assert what["text q/k/v and gate/up fused, task-grouped LoRA"] == 2 * len(
        encoder.network.module.model.language_model.layers
    )
    assert what["projector LoRA fused"] == 1
    assert "RMSNorm in cache-sized token slices (CPU)" in what
    assert encoder.network.fused
    assert encoder.network.pack_rows


def test_options_validate() -> None:
    with pytest.raises(ValueError, match=r"ForwardOptions\.group_tokens must be positive"):
        ForwardOptions(group_tokens=0)
    with pytest.raises(ValueError, match="pack_rows needs fuse_text"):
        ForwardOptions(fuse_text=False)
    assert ForwardOptions().replace(pack_rows=False).pack_rows is False


def test_stock_path_equals_the_fast_one(
    encoder: Encoder, tiny_checkpoint: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="model.speedups"):
        stock = Encoder.from_pretrained(tiny_checkpoint, options=ForwardOptions.stock())
    assert stock.substitutions == ()
    assert not stock.network.fused
    assert not [r for r in caplog.records if r.name == "model.speedups"]
    with caplog.at_level(logging.INFO, logger="model.speedups"):
        Encoder.from_pretrained(tiny_checkpoint)
    assert any("forward path: text q/k/v" in r.getMessage() for r in caplog.records)
    rng = np.random.default_rng(3)
    p = encoder.processor
    items = [
        p.prepare_text("a query", parse_task("retrieval.query")),
        p.prepare_image(Image.fromarray(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)), parse_task("code")),
        p.prepare_text("a longer passage, with more tokens in it " * 3, parse_task("text-matching")),
    ]
    fast_out, stock_out = encoder.embed(items, return_multivector=True), stock.embed(items, return_multivector=True)
    for got, want in zip(fast_out, stock_out, strict=True):
        np.testing.assert_allclose(got.dense, want.dense, atol=1e-5)
        assert got.multivector is not None
        assert want.multivector is not None
        np.testing.assert_allclose(got.multivector, want.multivector, atol=1e-5)
