"""The compiled path (``ForwardOptions(compile=True)``, ``model.compiled``) against the eager one on the tiny
checkpoint: every task, texts and images, mixed batches packed and padded; float32 ≤ 1e-5, bfloat16 cosine ≥ 0.9999;
new batch shapes do not recompile. Compiling takes a minute or more of CPU on a shared 2-core machine (cold: 819 s
at load average ~17 on an AVX2 host; this file ran in 2–2.5 min on an AVX-512 host at load ~8): the CPU tests are
marked slow; the CUDA one runs in ``scripts/gpu-check.sh``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from model.compiled import require_compiler
from model.encoder import Encoder
from model.errors import CompilerUnavailableError
from model.options import ForwardOptions
from model.types import parse_task

SPECS = ["retrieval.query", "retrieval.passage", "text-matching", "code.query", "code.passage"]


def _items(encoder: Encoder) -> list[Any]:
    rng = np.random.default_rng(11)
    p = encoder.processor
    texts = ["short", "a longer passage about compiled kernels " * 6, "x", "bonjour tout le monde"]
    items = [p.prepare_text(t, parse_task(SPECS[i % len(SPECS)])) for i, t in enumerate(texts)]
    for i, (h, w) in enumerate([(70, 150), (120, 50), (56, 56)]):
        image = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        items.append(p.prepare_image(image, parse_task(["retrieval", "code", "text-matching"][i])))
    return items


@pytest.fixture(scope="module")
def compiled(tiny_checkpoint: Path) -> Encoder:
    return Encoder.from_pretrained(tiny_checkpoint, options=ForwardOptions(compile=True))


@pytest.mark.slow
def test_compiled_float32_equals_eager(encoder: Encoder, compiled: Encoder) -> None:
    assert compiled.network.add_norm is not None
    assert any("torch.compile" in str(s) for s in compiled.substitutions)
    items = _items(encoder)
    batches = [items, items[:4], items[4:], [items[0], items[1]], [items[2]]]  # mixed packed, texts, images, one row
    for batch in batches:
        want = encoder.embed(batch, return_multivector=True)
        got = compiled.embed(batch, return_multivector=True)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g.dense, w.dense, atol=1e-5)
            assert g.multivector is not None
            assert w.multivector is not None
            np.testing.assert_allclose(g.multivector, w.multivector, atol=1e-5)


@pytest.mark.slow
def test_new_shapes_do_not_recompile(compiled: Encoder) -> None:
    import torch._dynamo.utils as dynamo_utils

    p = compiled.processor
    spec = parse_task("retrieval.passage")
    warm = [p.prepare_text("warm up", spec), p.prepare_image(Image.new("RGB", (64, 64)), spec)]  # the server's
    compiled.embed(warm)  # compiled (or cached) here
    before = dynamo_utils.counters["stats"]["unique_graphs"]
    for n in (5, 23, 61):
        rows = [p.prepare_text("word " * n, parse_task("code.query")), p.prepare_text("y", parse_task("retrieval"))]
        compiled.embed(rows)
    rng = np.random.default_rng(5)
    for h, w in [(90, 150), (200, 70), (28, 28)]:  # 16 patches at first: no size may be assumed equal to another
        image = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        compiled.embed([p.prepare_image(image, spec)])
        compiled.embed([p.prepare_text("with text", spec), p.prepare_image(image, spec)])
    assert dynamo_utils.counters["stats"]["unique_graphs"] == before


@pytest.mark.slow
def test_compiled_bfloat16_close_to_eager(tiny_checkpoint: Path) -> None:
    eager = Encoder.from_pretrained(tiny_checkpoint, dtype="bfloat16")
    fast = Encoder.from_pretrained(tiny_checkpoint, dtype="bfloat16", options=ForwardOptions(compile=True))
    items = _items(eager)
    for g, w in zip(
        fast.embed(items, return_multivector=True), eager.embed(items, return_multivector=True), strict=True
    ):
        assert float(np.dot(g.dense, w.dense)) >= 0.9999  # both unit length
        assert g.multivector is not None
        assert w.multivector is not None
        cos = torch.nn.functional.cosine_similarity(torch.from_numpy(g.multivector), torch.from_numpy(w.multivector))
        assert float(cos.min()) >= 0.999


def test_compile_needs_the_fused_layers() -> None:
    with pytest.raises(ValueError, match="compile needs fuse_text"):
        ForwardOptions(compile=True, fuse_text=False, pack_rows=False)


def test_a_missing_compiler_is_a_clear_error_at_load(tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without inductor's C++ compiler (CPU) or a C compiler for Triton (GPU), compiling fails when the model
    loads, naming the setting and what to install — not with inductor's traceback at the first batch."""
    from torch._inductor import config

    with (
        config.patch({"cpp.cxx": ("no-such-c++-compiler",)}),
        pytest.raises(CompilerUnavailableError, match=r"JEV4_COMPILE.*no C\+\+ compiler.*apt-get install g\+\+"),
    ):
        Encoder.from_pretrained(tiny_checkpoint, options=ForwardOptions(compile=True))
    Encoder.from_pretrained(tiny_checkpoint)  # eager needs no compiler
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(CompilerUnavailableError, match=r"JEV4_COMPILE.*Triton.*C compiler"):
        require_compiler(torch.device("cuda"))
    monkeypatch.setenv("CC", "cc")
    require_compiler(torch.device("cuda"))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_compiled_on_cuda(tiny_checkpoint: Path, dtype: str) -> None:
    """Inductor's Triton kernels on a GPU against the eager path on the same GPU."""
    eager = Encoder.from_pretrained(tiny_checkpoint, dtype=dtype, device="cuda")
    fast = Encoder.from_pretrained(tiny_checkpoint, dtype=dtype, device="cuda", options=ForwardOptions(compile=True))
    items = _items(eager)
    for g, w in zip(
        fast.embed(items, return_multivector=True), eager.embed(items, return_multivector=True), strict=True
    ):
        if dtype == "float32":
            np.testing.assert_allclose(g.dense, w.dense, atol=1e-5)
        else:
            assert float(np.dot(g.dense, w.dense)) >= 0.9999
