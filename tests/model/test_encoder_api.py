"""The published API surface: return types, late chunking, PDFs, and a typed error for every bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import model
from model import errors
from model.encoder import Encoder


def test_exports() -> None:
    from model.options import ForwardOptions

    assert model.__all__ == ["Encoder", "ForwardOptions", "ModelInfo"]
    assert model.Encoder is Encoder
    assert model.ForwardOptions is ForwardOptions


def test_return_types(encoder: Encoder) -> None:
    single = encoder.encode_text("one", task="retrieval")
    assert isinstance(single, torch.Tensor)
    assert single.shape == (encoder.info.hidden_size,)
    listed = encoder.encode_text(["a", "b"], task="retrieval")
    assert isinstance(listed, list)
    assert len(listed) == 2
    arr = encoder.encode_text(["a", "b"], task="retrieval", return_numpy=True)
    assert isinstance(arr, np.ndarray)
    assert arr.shape == (2, encoder.info.hidden_size)
    np.testing.assert_allclose(np.linalg.norm(arr, axis=1), 1.0, rtol=1e-5)
    mv = encoder.encode_text(["a", "bb cc"], task="retrieval", return_multivector=True)
    assert [m.shape[1] for m in mv] == [128, 128]
    np.testing.assert_allclose(mv[1].norm(dim=-1).numpy(), 1.0, rtol=1e-5)


def test_api_task_names(encoder: Encoder) -> None:
    a = encoder.encode_text(["q"], task="retrieval.query", return_numpy=True)
    b = encoder.encode_text(["q"], task="retrieval", prompt_name="query", return_numpy=True)
    assert np.array_equal(a, b)


def test_late_chunking(encoder: Encoder) -> None:
    texts = ["First part of a document.", "Second part, which continues it.", "Third."]
    late = encoder.encode_text(texts, task="retrieval.passage", late_chunking=True, return_numpy=True)
    assert late.shape == (3, encoder.info.hidden_size)
    # one input late-chunked equals its plain encoding
    one = encoder.encode_text(texts[:1], task="retrieval.passage", late_chunking=True, return_numpy=True)
    plain = encoder.encode_text(texts[:1], task="retrieval.passage", return_numpy=True)
    np.testing.assert_allclose(one, plain, atol=1e-5)
    # later chunks see the earlier context, so they differ from encoding them alone
    alone = encoder.encode_text(texts[1:2], task="retrieval.passage", return_numpy=True)
    assert not np.allclose(late[1], alone[0], atol=1e-3)


def test_pdf_pages(encoder: Encoder, tmp_path: Path) -> None:
    import pymupdf

    doc = pymupdf.open()
    for i in range(3):
        page = doc.new_page(width=200, height=150)
        page.insert_text((20, 50), f"page {i + 1}")
    path = tmp_path / "doc.pdf"
    doc.save(str(path))
    doc.close()
    pages = encoder.encode_pdf(str(path), task="retrieval", pages="1,3", dpi=72, return_numpy=True)
    assert pages.shape == (2, encoder.info.hidden_size)
    assert not np.allclose(pages[0], pages[1])


def test_bad_inputs_raise_typed_errors(encoder: Encoder, tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidTaskError):
        encoder.encode_text(["x"], task="classification")
    with pytest.raises(errors.InvalidTaskError):
        encoder.encode_text(["x"], task="retrieval", prompt_name="document")
    with pytest.raises(errors.InvalidDimensionError):
        encoder.encode_text(["x"], task="retrieval", truncate_dim=100)
    with pytest.raises(errors.InputTooLongError) as info:
        encoder.encode_text(["short", "word " * 50], task="retrieval", max_length=20, truncate=False)
    assert info.value.index == 1
    assert info.value.num_tokens > 20
    with pytest.raises(errors.EmptyInputError):
        encoder.encode_text([], task="retrieval")
    with pytest.raises(errors.ImageError):
        encoder.encode_image([b"not an image"], task="retrieval")
    with pytest.raises(errors.PdfError):
        encoder.encode_pdf(b"not a pdf", task="retrieval")
    tall = Image.new("RGB", (2, 1000))
    with pytest.raises(errors.ImageError):
        encoder.encode_image([tall], task="retrieval")


@pytest.mark.parametrize(("native_bf16", "want"), [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_dtype_follows_the_gpu(monkeypatch: pytest.MonkeyPatch, native_bf16: bool, want: torch.dtype) -> None:
    from model.encoder import _pick_dtype

    asked: list[bool] = []

    def supported(including_emulation: bool = True) -> bool:
        asked.append(including_emulation)
        return native_bf16

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", supported)
    assert _pick_dtype("auto", torch.device("cuda")) == want
    assert _pick_dtype(None, torch.device("cuda")) == want
    assert asked == [False, False]  # emulated bfloat16 (a T4, a V100) does not count
    assert _pick_dtype("auto", torch.device("cpu")) == torch.float32
    assert _pick_dtype("float16", torch.device("cuda")) == torch.float16  # named: as asked
