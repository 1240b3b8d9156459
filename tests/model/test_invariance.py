"""A row's vectors do not depend on its batch: alone vs a batch mixing texts, images and tasks."""

from __future__ import annotations

import numpy as np
from PIL import Image

from model.encoder import Encoder
from model.types import parse_task


def test_mixed_batch_equals_rows_alone(encoder: Encoder) -> None:
    rng = np.random.default_rng(3)
    img_a = Image.fromarray(rng.integers(0, 256, (80, 120, 3), dtype=np.uint8))
    img_b = Image.fromarray(rng.integers(0, 256, (200, 60, 3), dtype=np.uint8))
    p = encoder.processor
    items = [
        p.prepare_text("a short query", parse_task("retrieval.query")),
        p.prepare_image(img_a, parse_task("retrieval")),
        p.prepare_text("a much longer passage about something " * 5, parse_task("code.passage")),
        p.prepare_image(img_b, parse_task("code")),
        p.prepare_text("bonjour", parse_task("text-matching")),
    ]
    mixed = encoder.embed(items, return_multivector=True)
    for item, got in zip(items, mixed, strict=True):
        alone = encoder.embed([item], return_multivector=True)[0]
        np.testing.assert_allclose(got.dense, alone.dense, atol=1e-5)
        assert got.multivector is not None
        assert alone.multivector is not None
        np.testing.assert_allclose(got.multivector, alone.multivector, atol=1e-5)
        assert got.num_tokens == item.num_tokens == got.multivector.shape[0]
    assert mixed[1].image_span is not None
    assert mixed[1].image_grid is not None
    start, stop = mixed[1].image_span
    rows, cols = mixed[1].image_grid
    assert stop - start == rows * cols
    assert mixed[0].image_span is None


def test_batch_size_does_not_change_vectors(encoder: Encoder) -> None:
    texts = [f"text number {i} " * (i + 1) for i in range(7)]
    one = encoder.encode_text(texts, task="retrieval", batch_size=1, return_numpy=True)
    many = encoder.encode_text(texts, task="retrieval", batch_size=7, return_numpy=True)
    np.testing.assert_allclose(one, many, atol=1e-5)
